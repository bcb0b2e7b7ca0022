"""Lineage explorer speed: the page of a dataset with 1,000 runs.

    .venv/bin/python benchmarks/ui_lineage_page.py [--runs 1000] [--repeat 20] [--no-browser]

In a private embedded PostgreSQL, runs the customers policy once on 2,000 rows with lineage
(real events: extract, transform, validate, publish or quarantine), then copies that run's
events and its ``governance.runs`` row into ``--runs`` runs one day apart. Reported:

- the explorer page ``/lineage/customers`` (run list + column graph of the latest run),
  served by the UI app in-process (auth stubbed): cold, best and median of ``--repeat``;
  also its last page of runs and a date-filtered page;
- where the time goes: the runs query, the column lineage read, the SVG, the template;
- the comparison: the lineage package's own reads for the same answer (what
  ``veilflow lineage show`` does: ``dataset_runs`` of all runs + ``run_lineage``);
- the page in headless Chromium from a real HTTP server (uvicorn): navigation until the
  column graph is drawn, best and median;
- peak RSS of this process.

Target: the page renders in under 1 s.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from _home import bootstrap, fresh_home, remove_home

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RUN_ID = "customers:scheduled__2026-11-27T06:00:00+00:00"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float, float]:
    """(first, best, median) seconds of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times[0], min(times), statistics.median(times)


def ms(t: tuple[float, float, float]) -> str:
    return f"cold {t[0] * 1000:.1f} ms, best {t[1] * 1000:.1f} ms, median {t[2] * 1000:.1f} ms"


def seed(runs: int) -> None:
    """The demo table (as the superuser: the restricted zone is its alone), then one real run
    and its copies, as the pipeline's login, which writes runs and lineage."""
    from veilflow.pipeline.seed import seed_customers
    from veilflow.policy import load_policy
    from veilflow.zones.db import connect

    bootstrap()
    with connect(duty="migrate") as conn:  # the restricted zone: only a superuser writes it
        seed_customers(conn, rows=2_000, seed=7)
    from veilflow.errors import ValidationFailed
    from veilflow.pipeline.runner import run_policy

    t = time.perf_counter()
    try:  # the stages emit their lineage; a quarantined run has lineage too
        run_policy(load_policy(ROOT / "policies" / "customers.yaml"), run_id=RUN_ID, workers=1)
        status = "published"
    except ValidationFailed:
        status = "quarantined"
    print(f"one real run of customers (2,000 rows): {status} in {time.perf_counter() - t:.1f} s")
    with connect() as conn:
        conn.execute(
            "INSERT INTO governance.runs (run_id, dataset, policy_hash, status, started_at,"
            " finished_at, rows_in, rows_out, manifest, error)"
            " SELECT 'customers:scheduled__' || to_char(started_at - make_interval(days => g),"
            "   'YYYY-MM-DD\"T\"HH24:MI:SS') || '+00:00', dataset, policy_hash, status,"
            " started_at - make_interval(days => g), finished_at - make_interval(days => g),"
            " rows_in, rows_out, manifest, error"
            " FROM governance.runs, generate_series(1, %s) g WHERE run_id = %s",
            (runs - 1, RUN_ID),
        )
        conn.execute(
            "INSERT INTO governance.lineage_events (run_id, ol_run_id, parent_run_id,"
            " parent_job, dataset, policy_hash, job_namespace, job_name, stage, event_type,"
            " event_time, inputs, outputs, event, delivered)"
            " SELECT 'customers:scheduled__' || to_char(r.started_at, 'YYYY-MM-DD\"T\"HH24:MI:SS')"
            "   || '+00:00', gen_random_uuid(), e.parent_run_id, e.parent_job, e.dataset,"
            " e.policy_hash, e.job_namespace, e.job_name, e.stage, e.event_type,"
            " e.event_time - make_interval(days => g), e.inputs, e.outputs, e.event, e.delivered"
            " FROM governance.lineage_events e, generate_series(1, %s) g"
            " JOIN LATERAL (SELECT (SELECT started_at FROM governance.runs WHERE run_id = %s)"
            "   - make_interval(days => g) AS started_at) r ON true"
            " WHERE e.run_id = %s",
            (runs - 1, RUN_ID, RUN_ID),
        )
        conn.execute("ANALYZE governance.lineage_events")
        conn.execute("ANALYZE governance.runs")
        conn.commit()
        n_runs, n_events = conn.execute(
            "SELECT count(DISTINCT run_id), count(*) FROM governance.lineage_events"
            " WHERE dataset = 'customers'"
        ).fetchone() or (0, 0)
    print(f"store: {n_runs:,} runs of customers, {n_events:,} lineage events")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def browser_render(app: object, repeat: int) -> tuple[float, float, float] | None:
    """Navigation to the explorer until the column graph is in the DOM, in Chromium."""
    if not Path(CHROMIUM).exists():
        print("headless Chromium: /usr/bin/chromium not installed, skipped")
        return None
    import uvicorn
    from playwright.sync_api import sync_playwright

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,  # type: ignore[arg-type]
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    times = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            ctx = browser.new_context()
            ctx.add_cookies(
                [{"name": "_token", "value": "bench", "url": f"http://127.0.0.1:{port}"}]
            )
            page = ctx.new_page()
            for _ in range(repeat):
                t = time.perf_counter()
                page.goto(f"http://127.0.0.1:{port}/lineage/customers", wait_until="load")
                page.wait_for_selector("svg.lineage-graph g.vf-out")
                times.append(time.perf_counter() - t)
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    return times[0], min(times), statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=1_000)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the state folder afterwards")
    args = ap.parse_args()

    home = fresh_home("vf_bench_ui_")
    os.environ.setdefault("OPENLINEAGE_DISABLED", "true")

    try:
        seed(args.runs)
        run(args)
    finally:
        if args.keep:
            from veilflow.zones.server import stop_embedded

            stop_embedded(home / "pgdata")
        else:
            remove_home(home)


def run(args: argparse.Namespace) -> None:
    import psycopg
    from fastapi.testclient import TestClient

    from veilflow.lineage.store import dataset_runs
    from veilflow.lineage.view import run_lineage
    from veilflow.ui import queries
    from veilflow.ui.app import create_app
    from veilflow.ui.auth import Identity
    from veilflow.ui.graph import column_graph
    from veilflow.ui.roles import acting_as
    from veilflow.zones.db import connect

    async def resolve(token: str) -> Identity | None:
        return Identity("bench", is_admin=False, role="VIEWER") if token == "bench" else None

    app = create_app(resolve, run_link=lambda d, r: f"/dags/veilflow_{d}/runs/{r}")
    client = TestClient(app)
    client.cookies.set("_token", "bench")

    def get(path: str, **params: str) -> Callable[[], object]:
        def call() -> object:
            r = client.get(path, params=params)
            assert r.status_code == 200 and "<svg" in r.text, r.text[-500:]
            return r

        return call

    page = timed(get("/lineage/customers"), args.repeat)
    size = len(get("/lineage/customers")().text)  # type: ignore[attr-defined]
    last = timed(get("/lineage/customers", offset=str(args.runs - 100)), args.repeat)
    since = timed(get("/lineage/customers", since="2026-06-01"), args.repeat)
    print(f"explorer page, {args.runs:,} runs ({size / 1024:.0f} KiB of HTML): {ms(page)}")
    print(f"  its last page of runs: {ms(last)}")
    print(f"  filtered from 2026-06-01: {ms(since)}")

    def ui_login() -> psycopg.Connection:
        return connect(autocommit=True, duty="ui")

    flt = queries.LineageFilter(dataset="customers")
    # The page's reads as the app makes them: the UI's login, acting as veilflow_viewer.
    with acting_as(ui_login, "veilflow_viewer") as conn:
        runs_q = timed(lambda: queries.lineage_runs(conn, flt, limit=100), args.repeat)
        lin_q = timed(lambda: run_lineage(conn, "customers", run_id=RUN_ID), args.repeat)
        lin = run_lineage(conn, "customers", run_id=RUN_ID)
        assert lin is not None
        svg = timed(lambda: column_graph(lin.edges), args.repeat)
        ours = timed(
            lambda: (
                queries.lineage_runs(conn, flt, limit=args.runs),
                run_lineage(conn, "customers", run_id=RUN_ID),
            ),
            args.repeat,
        )
    with connect(autocommit=True) as conn:  # the CLI's login: the pipeline's
        theirs = timed(
            lambda: (
                dataset_runs(conn, "customers", limit=args.runs),
                run_lineage(conn, "customers"),
            ),
            args.repeat,
        )
    print(f"  runs query (page of 100): {ms(runs_q)}")
    print(f"  column lineage of one run ({len(lin.edges)} columns): {ms(lin_q)}")
    print(f"  SVG column graph: {ms(svg)}")
    print(f"all {args.runs:,} runs + column lineage, UI queries: {ms(ours)}")
    print(
        f"same through veilflow.lineage.store.dataset_runs + view.run_lineage "
        f"(the CLI's reads): {ms(theirs)}"
    )

    if not args.no_browser:
        shown = browser_render(app, max(5, args.repeat // 2))
        if shown:
            print(f"headless Chromium, navigation until the graph is drawn: {ms(shown)}")
    print(f"peak RSS of this process: {peak_rss_mib():.0f} MiB")
    target = page[2] < 1.0
    print(
        f"target: explorer page for {args.runs:,} runs < 1 s — "
        f"{'met' if target else 'MISSED'} (median {page[2] * 1000:.0f} ms server-side)"
    )


if __name__ == "__main__":
    main()
