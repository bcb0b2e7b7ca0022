"""An incremental run beside a full run of the same policy on the same table (issue 15).

In one child process, on a fresh embedded server: seed ``restricted.customers`` with
``--rows`` rows, then, with the structured columns of the demo policy appending by
``customer_id`` (the policy of ``pipeline_throughput.py`` plus ``incremental:``):

1. the first run (a full run, and the process's first: it pays the Great Expectations import);
2. append ``--append`` of the rows (default 1%), an incremental run;
3. a full run of the same table again (``full=True``), with the process warm as in 2;
4. append the same share again, a second incremental run;
5. a run with no new rows.

It prints each run's wall seconds per stage and the ratio of the incremental runs to the
warm full run (target: <= 10% for 1% appended to a 1M-row table), with the load average.

    .venv/bin/python benchmarks/incremental_run.py [--rows 1000000] [--append 0.01]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _home import isolate
from pipeline_throughput import POLICY

INCREMENTAL = "incremental: {cursor: customer_id}\n"


def child(rows: int, share: float, chunk: int) -> dict[str, Any]:
    from _home import bootstrap

    from veilflow.pipeline.runner import run_policy
    from veilflow.pipeline.seed import append_customers, seed_customers
    from veilflow.policy import parse_policy
    from veilflow.zones.db import connect

    bootstrap()
    with connect(duty="migrate") as conn:
        seed_customers(conn, rows=rows)
    policy = parse_policy(POLICY % {"chunk": chunk} + INCREMENTAL)
    added = max(1, int(rows * share))
    runs: list[dict[str, Any]] = []

    def one(name: str, **kw: Any) -> None:
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        summary = run_policy(policy, **kw)
        runs.append(
            {
                "run": name,
                "seconds": time.perf_counter() - t0,
                "rows_in": summary.rows_in,
                "rows_published": summary.rows_published,
                "stages": summary.stage_seconds,
                "load": load,
                "at": time.strftime("%H:%M:%S", time.gmtime()),
            }
        )

    def grow() -> None:
        with connect(duty="migrate") as conn:
            append_customers(conn, added)
            conn.execute("ANALYZE restricted.customers")
            conn.commit()

    one("first run (full, cold)")
    grow()
    one(f"incremental +{added:,}")
    one("full run (warm)", full=True)
    grow()
    one(f"incremental +{added:,} (2)")
    one("no new rows")
    return {"rows": rows, "added": added, "runs": runs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--append", type=float, default=0.01, help="share of --rows to append")
    ap.add_argument("--chunk", type=int, default=50_000)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.rows, args.append, args.chunk)))
        return
    env = dict(os.environ)
    home = tempfile.mkdtemp(prefix="veilflow-bench-incr-")
    isolate(env, home)
    env.setdefault("VEILFLOW_MASTER_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), env.get("PYTHONPATH", "")])
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    try:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                *("--rows", str(args.rows), "--append", str(args.append)),
                *("--chunk", str(args.chunk)),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        from _home import remove_home

        remove_home(Path(home))
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"started {started}; {r['rows']:,} rows, {r['added']:,} appended per incremental run")
    print(
        f"{'run':<28} {'at':>8} {'load':>5} {'seconds':>8} {'rows in':>10}   "
        "extract / transform / validate / publish s"
    )
    for run in r["runs"]:
        s = run["stages"]
        stages = " / ".join(
            f"{s.get(k, 0.0):.2f}" for k in ("extract", "transform", "validate", "publish")
        )
        print(
            f"{run['run']:<28} {run['at']:>8} {run['load']:>5.2f} {run['seconds']:>8.2f} "
            f"{run['rows_in']:>10,}   {stages}"
        )
    by = {run["run"]: run["seconds"] for run in r["runs"]}
    warm = by["full run (warm)"]
    for name, seconds in by.items():
        if name.startswith("incremental") or name == "no new rows":
            print(
                f"{name}: {seconds / warm:.1%} of the warm full run's wall time "
                f"({seconds:.2f} / {warm:.2f} s; target <= 10% for 1% appended)"
            )


if __name__ == "__main__":
    main()
