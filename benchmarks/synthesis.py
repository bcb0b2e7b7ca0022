"""Synthesis speed and memory: the Gaussian copula of ``veilflow.privacy.synthesis`` fitted on
and sampling 100,000 rows x 10 columns (5 numeric, 5 categorical, the demo table's shapes),
then the synthetic gate's distance check (1,000 rows against 20,000) and fidelity report
(20,000-row samples). One child process; its peak RSS (ru_maxrss). Target (issue 17): fits
in 2 minutes and 2 GiB on two cores.

    .venv/bin/python benchmarks/synthesis.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd


def table(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(42)
    amount = rng.gamma(2.0, 60.0, rows).round(2)
    return pd.DataFrame(
        {
            "birth_year": rng.integers(1940, 2005, rows),
            "amount": amount,
            "balance": (amount * 3 + rng.normal(0, 50, rows)).round(2),
            "visits": rng.poisson(4, rows),
            "score": rng.normal(600, 80, rows).round(0),
            "zip": rng.choice([f"{d}****" for d in range(10)], rows),
            "gender": rng.choice(["F", "M", "X"], rows, p=[0.49, 0.49, 0.02]),
            "diagnosis": rng.choice(["asthma", "migraine", "none", None], rows),
            "segment": np.where(amount > 110, "high", "low"),
            "channel": rng.choice(["web", "app", "store", "phone", "mail"], rows),
        }
    )


def child(rows: int) -> dict[str, float]:
    from veilflow.privacy.synthesis import GaussianCopula, distance_to_closest, fidelity

    frame = table(rows)
    numeric = {"birth_year", "amount", "balance", "visits", "score"}
    t0 = time.perf_counter()
    model = GaussianCopula.fit(frame, numeric)
    t1 = time.perf_counter()
    synthetic = model.sample(rows, 0)
    t2 = time.perf_counter()
    rng = np.random.default_rng(0)
    syn = synthetic.iloc[rng.choice(rows, 1000, replace=False)]
    src = frame.iloc[rng.choice(rows, 20_000, replace=False)]
    distance_to_closest(syn.reset_index(drop=True), src.reset_index(drop=True))
    t3 = time.perf_counter()
    fid = fidelity(
        synthetic.iloc[rng.choice(rows, 20_000, replace=False)].reset_index(drop=True),
        src.reset_index(drop=True),
    )
    t4 = time.perf_counter()
    return {
        "fit_s": t1 - t0,
        "sample_s": t2 - t1,
        "distance_s": t3 - t2,
        "fidelity_s": t4 - t3,
        "total_s": t4 - t0,
        "quality": fid["quality"],
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.rows)))
        return
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = os.getloadavg()[0]
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--rows", str(args.rows)],
        capture_output=True,
        text=True,
        check=True,
    )
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"started {started}, load average {load:.1f}, {os.cpu_count()} cores; {args.rows:,} rows x 10 columns"
    )
    print(
        f"fit {r['fit_s']:.1f} s, sample {r['sample_s']:.1f} s, distance check {r['distance_s']:.1f} s,"
        f" fidelity {r['fidelity_s']:.1f} s: {r['total_s']:.1f} s in all (target <= 120 s);"
        f" peak RSS {r['peak_rss_mib']:.0f} MiB (target <= 2048); quality {r['quality']}"
    )


if __name__ == "__main__":
    main()
