"""The scrub API under load, started as a user starts it: requests/s and latency.

A throwaway state folder with its own embedded PostgreSQL; ``veilflow db upgrade``, then
``veilflow api token issue`` (as the embedded admin login) and ``veilflow serve`` in a child
process (one worker process per core by default), each as a user runs them. Then
``--clients`` concurrent clients (one asyncio task each, one request at a time, keep-alive)
post ~90-character texts, one per request, to ``POST /scrub`` for ``--seconds``, after a
warm-up. Texts: pieces of the heldout split of ``veilflow.corpus`` (seed 20261205), the
same pieces ``detection_generalization.py`` times the scanner on.

Reference in the same run: the same texts through the same operator in this process, in
batches of ``--clients`` (no HTTP, no database): what one core does without the service.
The clients run on the same two cores as the service, so their CPU is reported too.

Target (issue 18): >= 500 requests/s, p99 <= 50 ms, 16 clients, 2 cores.

    .venv/bin/python benchmarks/scrub_api.py [--clients 16 --seconds 20 --workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
from _home import fresh_home, remove_home

ROOT = Path(__file__).resolve().parents[1]
VEILFLOW = str(Path(sys.executable).with_name("veilflow"))


def texts(n: int) -> list[str]:
    from detection_generalization import short_texts

    from veilflow.corpus import generate

    return short_texts(generate("heldout", n, 20261205))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reference(pieces: list[str], batch: int) -> float:
    """Texts/s of the operator itself in this process (batches of ``batch``)."""
    import pandas as pd

    from veilflow.pipeline.plan import plan_policy
    from veilflow.policy import load_policy
    from veilflow.transform.base import STRING, ChunkContext
    from veilflow.transform.keys import LocalKeyProvider

    plan = plan_policy(
        load_policy(ROOT / "policies" / "customers.yaml"), LocalKeyProvider(bytes(32))
    )
    (op,) = [c.operator for c in plan.columns if c.name == "note"]
    assert op is not None

    def run(part: list[str]) -> None:
        s = pd.Series(pd.array(part, dtype=STRING))
        op.apply(s, ChunkContext(frame=pd.DataFrame({"note": s}), key_column="note"))

    run(pieces[:batch])
    t = time.perf_counter()
    for i in range(0, len(pieces), batch):
        run(pieces[i : i + batch])
    return len(pieces) / (time.perf_counter() - t)


async def load(
    url: str, token: str, pieces: list[str], clients: int, warm: float, seconds: float
) -> tuple[list[float], int, int]:
    """Latencies (s) of the requests that ended inside the measured window, errors, and the
    requests sent."""
    latencies: list[float] = []
    errors = sent = 0
    start = time.perf_counter()
    measure_from, stop_at = start + warm, start + warm + seconds
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(k: int, http: httpx.AsyncClient) -> None:
        nonlocal errors, sent
        i = k
        while True:
            t0 = time.perf_counter()
            if t0 >= stop_at:
                return
            r = await http.post("/scrub", json={"text": pieces[i % len(pieces)]}, headers=headers)
            t1 = time.perf_counter()
            sent += 1
            i += clients
            if t0 >= measure_from:
                if r.status_code == 200:
                    latencies.append(t1 - t0)
                else:
                    errors += 1

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as http:
        await asyncio.gather(*(client(k, http) for k in range(clients)))
    return latencies, errors, sent


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warm", type=float, default=3.0)
    ap.add_argument("--workers", type=int, default=0, help="service processes (0: one per core)")
    args = ap.parse_args()

    pieces = texts(1500)
    print(
        f"data: {len(pieces)} pieces of the heldout split (seed 20261205), "
        f"{sum(map(len, pieces)) / len(pieces):.0f} characters on average"
    )
    home = fresh_home("veilflow-bench-api-")
    env = dict(os.environ)
    server: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run([VEILFLOW, "db", "upgrade"], env=env, check=True, capture_output=True)
        token_file = home / "token"
        subprocess.run(
            [VEILFLOW, "api", "token", "issue", "bench", "--dataset", "customers",
             "--rate", "100000", "--out", str(token_file)],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
        token = token_file.read_text().strip()
        port = free_port()
        cmd = [VEILFLOW, "serve", "--port", str(port), "--audit-seconds", "3600"]
        if args.workers:
            cmd += ["--workers", str(args.workers)]
        t = time.perf_counter()
        server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        url = f"http://127.0.0.1:{port}"
        while True:
            if server.poll() is not None:
                raise SystemExit(f"veilflow serve exited: {server.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        print(f"service up in {time.perf_counter() - t:.1f} s (until /health answers)")
        # Every worker process must have loaded its models before the clock starts.
        asyncio.run(load(url, token, pieces, args.clients, 0, 3.0))

        cpu0 = time.process_time()
        latencies, errors, _sent = asyncio.run(
            load(url, token, pieces, args.clients, args.warm, args.seconds)
        )
        client_cpu = time.process_time() - cpu0
        proc = psutil.Process(server.pid)
        rss = sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20
        n = len(latencies)
        print(
            f"{args.clients} clients, {args.seconds:.0f} s: {n / args.seconds:,.0f} requests/s"
            f" ({n} ok, {errors} errors); latency p50 {pct(latencies, 50) * 1000:.1f} ms,"
            f" p95 {pct(latencies, 95) * 1000:.1f} ms, p99 {pct(latencies, 99) * 1000:.1f} ms"
        )
        print(
            f"clients' CPU: {client_cpu:.1f} s of {args.warm + args.seconds:.0f} s;"
            f" service RSS (all processes) {rss:.0f} MiB"
        )
        print("target: >= 500 requests/s and p99 <= 50 ms")
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
        remove_home(home)
    ref = reference(pieces[:800], args.clients)
    print(f"reference, the operator in this process, batches of {args.clients}: {ref:,.0f} texts/s")
    print(
        f"this process's peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )


if __name__ == "__main__":
    main()
