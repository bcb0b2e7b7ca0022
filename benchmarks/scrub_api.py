"""The scrub API under load, started as a user starts it: requests/s and latency.

A throwaway state folder with its own embedded PostgreSQL; ``veilflow db upgrade``, then
``veilflow api token issue`` (as the embedded admin login) and ``veilflow serve`` in a child
process (one worker process per core by default), each as a user runs them. Then
``--clients`` concurrent clients (one asyncio task each, one request at a time, keep-alive)
post ~90-character texts, one per request, to ``POST /scrub`` for ``--seconds``, after a
warm-up. Texts: pieces of the heldout split of ``veilflow.corpus`` (seed 20261205), the
same pieces ``detection_generalization.py`` times the scanner on.

References in the same run: first the service as it ran before, uvicorn's own workers
sharing one listening socket (``--no-reference`` skips it); then the same texts through the
same operator in this process, in batches of ``--clients`` (no HTTP, no database): what one
core does without the service, on numpy's products (as the service runs) and on BLIS's (the
reference of ADR 0025). The clients run on the same two cores as the service, so CPU seconds
per request of the service's processes and of the clients are printed, each process's share,
and the load average: CPU per request moves less than requests/s with the machine's load.

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


def reference(pieces: list[str], batch: int, matmul: str = "numpy") -> tuple[float, float]:
    """Texts/s and CPU ms per text of the operator itself in this process (batches of
    ``batch``); ``matmul="blis"``: on thinc's default products, as before ADR 0023."""
    import pandas as pd

    from veilflow.detect.scanner import Scanner
    from veilflow.detect.scrub import ScrubText
    from veilflow.pipeline.plan import plan_policy
    from veilflow.policy import load_policy
    from veilflow.transform.base import STRING, ChunkContext
    from veilflow.transform.keys import LocalKeyProvider

    plan = plan_policy(
        load_policy(ROOT / "policies" / "customers.yaml"), LocalKeyProvider(bytes(32))
    )
    (op,) = [c.operator for c in plan.columns if c.name == "note"]
    assert isinstance(op, ScrubText)
    op.use_scanner(Scanner(op.config.detection, matmul=matmul))  # type: ignore[arg-type]

    def run(part: list[str]) -> None:
        s = pd.Series(pd.array(part, dtype=STRING))
        op.apply(s, ChunkContext(frame=pd.DataFrame({"note": s}), key_column="note"))

    run(pieces[:batch])
    t, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(pieces), batch):
        run(pieces[i : i + batch])
    return len(pieces) / (time.perf_counter() - t), (time.process_time() - cpu) / len(pieces) * 1000


def measure(
    cmd: list[str],
    env: dict[str, str],
    port: int,
    token: str,
    pieces: list[str],
    args: argparse.Namespace,
) -> None:
    """Start the service with ``cmd``, load it, print what it did, stop it."""
    t = time.perf_counter()
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            if server.poll() is not None:
                raise SystemExit(f"the service exited: {server.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        print(f"service up in {time.perf_counter() - t:.1f} s (until /health answers)")
        # Every worker process must have loaded its models before the clock starts.
        asyncio.run(load(url, token, pieces, args.clients, 0, 3.0))

        proc = psutil.Process(server.pid)
        service = [proc, *proc.children(recursive=True)]
        cpu0 = time.process_time()
        service0 = service_cpu(service)
        latencies, errors, sent = asyncio.run(
            load(url, token, pieces, args.clients, args.warm, args.seconds)
        )
        client_cpu = time.process_time() - cpu0
        by_process = [b - a for a, b in zip(service0, service_cpu(service), strict=True)]
        server_cpu = sum(by_process)
        load_avg = os.getloadavg()
        rss = sum(p.memory_info().rss for p in service) / 2**20
        n = len(latencies)
        print(
            f"{args.clients} clients, {args.seconds:.0f} s: {n / args.seconds:,.0f} requests/s"
            f" ({n} ok, {errors} errors); latency p50 {pct(latencies, 50) * 1000:.1f} ms,"
            f" p95 {pct(latencies, 95) * 1000:.1f} ms, p99 {pct(latencies, 99) * 1000:.1f} ms"
        )
        print(
            f"CPU per request: service {server_cpu / sent * 1000:.2f} ms, clients"
            f" {client_cpu / sent * 1000:.2f} ms ({sent} requests incl. warm-up);"
            f" service RSS (all processes) {rss:.0f} MiB"
        )
        print(
            "service CPU by process during the run (s): "
            + ", ".join(f"{c:.1f}" for c in by_process)
            + " (the supervisor and its helper first, then the workers)"
        )
        print(
            "load average (1, 5, 15 min) after the run: " + ", ".join(f"{x:.1f}" for x in load_avg)
        )
        print("target: >= 500 requests/s and p99 <= 50 ms")
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()


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


def service_cpu(procs: list[psutil.Process]) -> list[float]:
    """CPU seconds (user + system) each of the service's processes has used so far."""
    return [sum(p.cpu_times()[:2]) for p in procs]


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warm", type=float, default=3.0)
    ap.add_argument("--workers", type=int, default=0, help="service processes (0: one per core)")
    ap.add_argument(
        "--no-reference",
        action="store_true",
        help="skip the reference service (uvicorn's workers sharing one socket, as before)",
    )
    args = ap.parse_args()

    pieces = texts(1500)
    print(
        f"data: {len(pieces)} pieces of the heldout split (seed 20261205), "
        f"{sum(map(len, pieces)) / len(pieces):.0f} characters on average"
    )
    home = fresh_home("veilflow-bench-api-")
    env = dict(os.environ)
    try:
        subprocess.run([VEILFLOW, "db", "upgrade"], env=env, check=True, capture_output=True)
        token_file = home / "token"
        subprocess.run(
            [VEILFLOW, "api", "token", "issue", "bench", "--dataset", "customers",
             "--rate", "100000", "--out", str(token_file)],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
        token = token_file.read_text().strip()
        workers = args.workers or os.cpu_count() or 1
        if not args.no_reference:
            # As the service ran before: uvicorn's own workers behind one shared socket.
            from veilflow.config import settings
            from veilflow.serve.app import ServeConfig

            config = ServeConfig(settings().policies_dir, processes=workers, audit_seconds=3600)
            port = free_port()
            print(f"\nreference: uvicorn's {workers} workers sharing one listening socket")
            measure(
                [sys.executable, "-m", "uvicorn", "veilflow.serve.app:app_from_env", "--factory",
                 "--port", str(port), "--workers", str(workers), "--no-access-log"],
                {**env, **config.to_env()}, port, token, pieces, args,
            )  # fmt: skip
        port = free_port()
        print(f"\nveilflow serve: {workers} workers, each with its own socket (SO_REUSEPORT)")
        measure(
            [VEILFLOW, "serve", "--port", str(port), "--audit-seconds", "3600",
             "--workers", str(workers)],
            env, port, token, pieces, args,
        )  # fmt: skip
    finally:
        remove_home(home)
    print()
    for matmul in ("numpy", "blis"):
        ref, ref_cpu = reference(pieces[:800], args.clients, matmul)
        print(
            f"the operator in this process, batches of {args.clients}, {matmul} products"
            f"{' (the reference, before ADR 0025)' if matmul == 'blis' else ''}: {ref:,.0f}"
            f" texts/s, {ref_cpu:.2f} ms CPU per text"
        )
    print(
        f"this process's peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )


if __name__ == "__main__":
    main()
