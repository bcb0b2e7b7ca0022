"""End-to-end in-process pipeline throughput on the structured columns of the demo table.

For each size (default 100,000 and 1,000,000 rows) a fresh child process seeds
``restricted.customers`` and runs extract → transform (all chunks) → validate → publish,
then reports rows/s and the child's peak RSS (ru_maxrss), so the sizes do not share memory.
Target (issue "The spine"): >= 100,000 rows/s, and peak RSS of the 1M run <= 1.5x the 100k run;
issue 15: gate CPU-seconds at 1M <= 5, counting the validate stage and the per-chunk checks
the chunk workers run (ADR 0016).

It also reports where the CPU went: busy CPU-seconds of the whole machine per stage (from
/proc/stat, so run it on a quiet machine), split at the end into this process, the chunk
workers and the rest (the PostgreSQL server). On N cores a run cannot take less wall time
than its CPU-seconds / N.

    .venv/bin/python benchmarks/pipeline_throughput.py [--rows 100000 1000000]

The run connects as the pipeline's own login, as every run does. ``--logins pipeline
superuser --repeat 3`` runs each size as both, alternating, each on a server of its own, and
prints the median rows/s of each and their ratio: the cost of least privilege.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _home import isolate

ROOT = Path(__file__).resolve().parents[1]

#: The structured columns of policies/customers.yaml (the free-text note is left out: its
#: scanning is measured by benchmarks/detection_throughput.py).
POLICY = """
dataset: customers
source: {table: restricted.customers, key: customer_id}
target: {table: anonymized.customers}
unlisted: drop
chunk_rows: %(chunk)d
columns:
  customer_id: {action: tokenize}
  full_name:   {action: tokenize}
  email:       {action: tokenize, keep_domain: true}
  phone:       {action: mask, keep_last: 2}
  ssn:         {action: tokenize}
  credit_card: {action: mask, keep_last: 4}
  birth_date:  {action: generalize, keep_prefix: 4, fill: ""}
  gender:      keep
  zip:         {action: generalize, keep_prefix: 3}
  city:        keep
  iban:        {action: tokenize}
  ip_address:  {action: redact}
  signup_ts:   keep
  amount:      keep
  diagnosis:   keep
"""


def busy_cpu_seconds() -> float:
    """CPU-seconds the whole machine has spent busy since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        ticks = [int(v) for v in f.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def child(rows: int, chunk: int, login: str) -> dict[str, Any]:
    from _home import bootstrap

    from veilflow.pipeline.runner import run_policy
    from veilflow.pipeline.seed import seed_customers
    from veilflow.policy import parse_policy
    from veilflow.zones.db import connect, duty_url

    bootstrap()
    with connect(duty="migrate") as conn:  # the restricted zone: only a superuser writes it
        seed_customers(conn, rows=rows)
    if login == "superuser":  # every duty's connection then goes to the superuser
        os.environ["VEILFLOW_DATABASE_URL"] = duty_url("migrate")
    rss_after_seed = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    policy = parse_policy(POLICY % {"chunk": chunk})
    # Busy CPU at each stage's end: the runner says when extract, the last chunk and the
    # gate are done; publish ends when run_policy returns.
    marks = [busy_cpu_seconds()]

    def progress(message: str) -> None:
        done, _, of = message.removeprefix("chunk ").partition(":")[0].partition("/")
        last_chunk = message.startswith("chunk ") and done == of
        if message.startswith(("extracted", "gate passed")) or last_chunk:
            marks.append(busy_cpu_seconds())

    own0, workers0 = (
        own_cpu_seconds(resource.RUSAGE_SELF),
        own_cpu_seconds(resource.RUSAGE_CHILDREN),
    )
    t0 = time.perf_counter()
    summary = run_policy(policy, progress=progress)
    seconds = time.perf_counter() - t0
    marks.append(busy_cpu_seconds())
    own = own_cpu_seconds(resource.RUSAGE_SELF) - own0
    workers = own_cpu_seconds(resource.RUSAGE_CHILDREN) - workers0
    total_cpu = marks[-1] - marks[0]
    stages = ("extract", "transform", "validate", "publish")
    spent = [b - a for a, b in itertools.pairwise(marks)]
    assert summary.rows_published == rows
    gate = summary.gate.get("metrics", {})
    return {
        "login": login,
        "gate_checks": gate.get("seconds_per_check", {}),
        "gate_chunk_cpu_s": gate.get("chunk_checks_cpu_seconds", 0.0),
        "rows": rows,
        "seconds": seconds,
        "rows_per_s": rows / seconds,
        **{f"{k}_s": v for k, v in summary.stage_seconds.items()},
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_after_seed_mib": rss_after_seed / 1024,
        "cpu_s": total_cpu,
        "stage_cpu_s": dict(zip(stages, spent, strict=True)) if len(spent) == len(stages) else {},
        "cpu_this_s": own,
        "cpu_workers_s": workers,
        "cpu_rest_s": total_cpu - own - workers,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--chunk", type=int, default=50_000)
    ap.add_argument(
        "--logins",
        nargs="+",
        choices=("pipeline", "superuser"),
        default=["pipeline"],
        help="whom the run connects as; several: alternate, each on a server of its own",
    )
    ap.add_argument("--repeat", type=int, default=1, help="runs of each size and login")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--login", default="pipeline", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.chunk, args.login)))
        return
    envs = {}
    for login in args.logins:
        env = dict(os.environ)
        isolate(env, tempfile.mkdtemp(prefix=f"veilflow-bench-{login}-"))
        env.setdefault("VEILFLOW_MASTER_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
        envs[login] = env
    results = []
    print(
        f"{'rows':>10} {'login':>9} {'seconds':>8} {'rows/s':>10} {'peak RSS MiB':>13}   "
        "extract / transform / validate / publish seconds (transform rows/s)"
    )
    runs = [(rows, login) for rows in args.rows for _ in range(args.repeat) for login in envs]
    for rows, login in runs:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                *("--child", str(rows), "--chunk", str(args.chunk), "--login", login),
            ],
            env=envs[login],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        results.append(r)
        print(
            f"{r['rows']:>10,} {login:>9} {r['seconds']:>8.2f} {r['rows_per_s']:>10,.0f} "
            f"{r['peak_rss_mib']:>13.0f}   {r['extract_s']:.1f} / {r['transform_s']:.1f} / "
            f"{r['validate_s']:.1f} / {r['publish_s']:.1f} "
            f"({r['rows'] / r['transform_s']:,.0f})"
        )
        slowest = sorted(r["gate_checks"].items(), key=lambda kv: -kv[1])[:6]
        print(
            "           gate, seconds per check (GX's shared out evenly): "
            + ", ".join(f"{name} {sec:.2f}" for name, sec in slowest)
        )
        cores = os.cpu_count() or 1
        print(
            f"           CPU-seconds: {r['cpu_s']:.1f} in all, {r['cpu_s'] / r['seconds']:.2f} of "
            f"{cores} cores busy on average (floor on {cores} cores: "
            f"{r['cpu_s'] / cores:.1f} s); this process {r['cpu_this_s']:.1f}, chunk workers "
            f"{r['cpu_workers_s']:.1f}, PostgreSQL and the rest {r['cpu_rest_s']:.1f}"
        )
        if r["stage_cpu_s"]:
            print(
                "           CPU-seconds per stage: "
                + ", ".join(f"{k} {v:.1f}" for k, v in r["stage_cpu_s"].items())
            )
            # The gate's work is done partly in the chunk workers (their per-chunk checks,
            # ADR 0016), partly in the validate stage.
            print(
                f"           gate CPU-seconds: {r['stage_cpu_s']['validate'] + r['gate_chunk_cpu_s']:.1f}"
                f" (validate stage {r['stage_cpu_s']['validate']:.1f}, per-chunk checks in the"
                f" workers {r['gate_chunk_cpu_s']:.1f}; target <= 5)"
            )
    sizes = sorted({r["rows"] for r in results})
    if len(sizes) >= 2:
        rss = {n: max(r["peak_rss_mib"] for r in results if r["rows"] == n) for n in sizes}
        print(
            f"peak RSS ratio {sizes[-1]:,} / {sizes[0]:,} rows: "
            f"{rss[sizes[-1]] / rss[sizes[0]]:.2f}x (target <= 1.5x)"
        )
    best = min(r["rows_per_s"] for r in results)
    print(f"slowest size: {best:,.0f} rows/s (target >= 100,000 rows/s)")
    if len(envs) > 1:
        for n in sizes:
            median = {
                login: statistics.median(
                    r["rows_per_s"] for r in results if r["rows"] == n and r["login"] == login
                )
                for login in envs
            }
            print(
                f"{n:,} rows, median rows/s: "
                + ", ".join(f"{login} {v:,.0f}" for login, v in median.items())
                + (
                    f"; pipeline / superuser {median['pipeline'] / median['superuser']:.3f}"
                    if {"pipeline", "superuser"} <= set(median)
                    else ""
                )
            )
    for env in envs.values():
        subprocess.run(
            [sys.executable, "-m", "veilflow.cli", "db", "stop"],
            env=env,
            capture_output=True,
            check=False,
        )
        shutil.rmtree(env["VEILFLOW_HOME"], ignore_errors=True)


if __name__ == "__main__":
    main()
