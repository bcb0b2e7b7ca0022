"""Audit chain verification at scale: what the ``veilflow_audit`` DAG pays every run.

Appends N rows (default 1,000,000) to ``governance.audit_log`` through the chaining trigger
in one INSERT … SELECT (as the server's superuser: setup no login of veilflow may do), then
walks the whole chain with ``veilflow.vault.audit.verify`` (every hash recomputed in Python
from the stored fields) and checks an anchor taken before the rows were added, both as the
audit service's login, as the DAG does. Prints rows/s for appending and for verifying, and
peak RSS (verify reads the chain in batches, so memory stays flat).

Run: .venv/bin/python benchmarks/audit_verify.py [--rows N]
"""

from __future__ import annotations

import argparse
import resource
import time

from _home import bootstrap, fresh_home, remove_home


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args()

    home = fresh_home("veilflow-bench-audit-")

    from veilflow.vault.audit import Anchor, anchor_broken, record, verify
    from veilflow.zones.db import connect

    try:
        bootstrap()
        with connect(autocommit=True) as conn:  # a run's audit row, as the pipeline writes it
            record(conn, "policy.run", target="first", details={"status": "published"})
        with connect(duty="audit") as conn:  # as the audit DAG connects
            anchor = Anchor.of(verify(conn))

        with connect(duty="migrate", autocommit=True) as conn:
            t0 = time.perf_counter()
            conn.execute(
                "INSERT INTO governance.audit_log (action, target, count, outcome, details)"
                " SELECT 'policy.run', 'dataset_' || g, g, 'ok',"
                " jsonb_build_object('status', 'published', 'rows', g)"
                " FROM generate_series(1, %s) g",
                (args.rows,),
            )
            appended = time.perf_counter() - t0

        with connect(duty="audit") as conn:
            t0 = time.perf_counter()
            report = verify(conn)
            verified = time.perf_counter() - t0
            assert report.ok and report.rows == args.rows + 1

            t0 = time.perf_counter()
            why = anchor_broken(conn, anchor)
            anchored = time.perf_counter() - t0
            assert why is None

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"audit chain of {report.rows:,} rows")
        print(
            f"  append through the trigger {args.rows / appended:>12,.0f} rows/s"
            f"  ({appended:.2f} s)"
        )
        print(
            f"  verify the whole chain     {report.rows / verified:>12,.0f} rows/s"
            f"  ({verified:.2f} s)"
        )
        print(f"  check an earlier anchor    {anchored * 1000:>12.1f} ms")
        print(f"  peak RSS {rss:,.0f} MiB")
    finally:
        remove_home(home)


if __name__ == "__main__":
    main()
