"""What DP releases and the risk watch add to a run: the demo's three releases (a histogram
of amount by gender, diagnosis counts, mean amount by gender) and the linkage attack on the
structured columns of the demo table, against the same run without releases.

One child process seeds ``restricted.customers`` once, makes one warm-up run without releases
(not counted: the first run of a process pays for imports and cold caches), then runs the
policy without and with releases, alternating (``--repeat`` pairs), and reports each run's
seconds, the releases' own seconds (exact cells in PostgreSQL, noise, tables written) and the
risk watch's. Target (issue 17): DP releases add <= 10% to a 1M-row run.

    .venv/bin/python benchmarks/dp_releases.py [--rows 1000000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _home import bootstrap, fresh_home

ROOT = Path(__file__).resolve().parents[1]

POLICY = """
dataset: customers
source: {table: restricted.customers, key: customer_id}
target: {table: anonymized.customers}
unlisted: drop
chunk_rows: 50000
columns:
  customer_id: {action: tokenize}
  full_name:   {action: tokenize}
  email:       {action: tokenize, keep_domain: true}
  birth_date:  {action: generalize, truncate: year}
  gender:      keep
  zip:         {action: generalize, keep_prefix: 1}
  amount:      keep
  diagnosis:   keep
privacy: {quasi_identifiers: [zip, birth_date, gender], k: 5, on_violation: suppress}
risk: {k: 10}
"""


def releases() -> str:
    """The demo policy's ``releases:`` section, verbatim."""
    text = (ROOT / "policies" / "customers.yaml").read_text()
    start = text.index("\nreleases:\n")
    end = text.index("\n\n", start + 1)
    return text[start:end] + "\n"


def child(rows: int, repeat: int) -> list[dict[str, Any]]:
    from veilflow.pipeline.runner import run_policy
    from veilflow.pipeline.seed import seed_customers
    from veilflow.policy import parse_policy
    from veilflow.privacy.budget import set_budget
    from veilflow.zones.db import connect

    bootstrap()
    with connect(duty="migrate") as conn:
        seed_customers(conn, rows=rows)
    with connect(autocommit=True, duty="migrate") as conn:
        set_budget(conn, "customers", 1000.0, 0.0)
    plain = parse_policy(POLICY)
    with_releases = parse_policy(POLICY + releases())
    run_policy(plain)  # warm-up, not counted
    out = []
    for i in range(repeat):
        order = [("plain", plain), ("releases", with_releases)]
        for kind, policy in order if i % 2 == 0 else order[::-1]:
            t0 = time.perf_counter()
            summary = run_policy(policy)
            seconds = time.perf_counter() - t0
            with connect() as conn:
                m = conn.execute(
                    "SELECT manifest FROM governance.runs WHERE run_id = %s", (summary.run_id,)
                ).fetchone()[0]
            out.append(
                {
                    "kind": kind,
                    "rows": rows,
                    "seconds": seconds,
                    "publish_s": summary.stage_seconds.get("publish", 0.0),
                    "releases_s": (m.get("releases") or {}).get("seconds", 0.0),
                    "risk_s": (m.get("risk") or {}).get("seconds", 0.0),
                    "load": os.getloadavg()[0],
                }
            )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.rows, args.repeat)))
        return
    home = fresh_home("veilflow-bench-dp-")
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    try:
        res = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                "--rows",
                str(args.rows),
                "--repeat",
                str(args.repeat),
            ],
            env=dict(os.environ),
            capture_output=True,
            text=True,
            check=True,
        )
        runs = json.loads(res.stdout.strip().splitlines()[-1])
    finally:
        subprocess.run(
            [sys.executable, "-m", "veilflow.cli", "db", "stop"], capture_output=True, check=False
        )
        shutil.rmtree(home, ignore_errors=True)
    print(f"started {started}, {os.cpu_count()} cores; {args.rows:,} rows")
    print(
        f"{'run':>9} {'seconds':>8} {'publish s':>10} {'releases s':>11} {'risk s':>7} {'load':>5}"
    )
    for r in runs:
        print(
            f"{r['kind']:>9} {r['seconds']:>8.1f} {r['publish_s']:>10.2f} {r['releases_s']:>11.2f}"
            f" {r['risk_s']:>7.2f} {r['load']:>5.1f}"
        )
    plain = statistics.median(r["seconds"] for r in runs if r["kind"] == "plain")
    with_r = statistics.median(r["seconds"] for r in runs if r["kind"] == "releases")
    own = statistics.median(r["releases_s"] for r in runs if r["kind"] == "releases")
    print(
        f"median run: {plain:.1f} s without releases, {with_r:.1f} s with; the releases' own"
        f" time {own:.2f} s = {own / plain:.1%} of a run without them (target <= 10%);"
        f" wall-clock difference {(with_r - plain) / plain:+.1%} (noisy on a shared machine)"
    )


if __name__ == "__main__":
    main()
