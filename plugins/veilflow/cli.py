"""The ``veilflow`` command line. Every command has ``--help``; every expected failure ends in
one clear line on stderr and a non-zero exit code (see ``veilflow.errors``)."""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from veilflow import log_redaction
from veilflow.commands import (
    budget,
    command_group,
    detect,
    detector,
    erase,
    lineage,
    policy_file,
    serve,
    validate,
    vault,
)
from veilflow.errors import VeilflowError

if TYPE_CHECKING:
    from veilflow.zones.manifest import RunManifest
    from veilflow.zones.runs import RunRow

app = typer.Typer(
    rich_markup_mode="markdown",
    help="veilflow: anonymization pipeline with governance.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
db_app = command_group("The zones database: start, migrate, inspect.")
runs_app = command_group("Runs and their manifests.")
airflow_app = command_group("Airflow wiring for the embedded stack.")
app.add_typer(db_app, name="db")
app.add_typer(runs_app, name="runs")
app.add_typer(airflow_app, name="airflow")

log = logging.getLogger("veilflow")


def err(message: str) -> None:
    typer.echo(message, err=True)


@app.callback()
def _root(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log progress to stderr.")
    ] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    log_redaction.install()


# ------------------------------------------------------------------------------- db
@db_app.command("upgrade")
def db_upgrade() -> None:
    """Start the embedded PostgreSQL if needed, apply pending migrations (idempotent) and make
    the service logins, each with its own password (see `veilflow.zones.logins`)."""
    from veilflow.config import settings
    from veilflow.zones.db import connect, duty_url, redact_url
    from veilflow.zones.logins import ensure_logins
    from veilflow.zones.migrations import upgrade

    url = duty_url("migrate")
    s = settings()
    with connect(url) as conn:
        applied = upgrade(conn)
        changed = ensure_logins(conn, s.home, embedded=s.embedded)
    for m in applied:
        typer.echo(f"applied {m.version:04d}_{m.name}")
    for login in changed:
        typer.echo(f"login {login}: made or its password set")
    typer.echo(f"database {redact_url(url)} is up to date")


@db_app.command("status")
def db_status() -> None:
    """List migrations and whether each is applied."""
    from veilflow.zones.db import connect
    from veilflow.zones.migrations import status

    with connect(duty="migrate") as conn:
        for mig, applied in status(conn):
            typer.echo(f"{mig.version:04d}_{mig.name:30s} {'applied' if applied else 'pending'}")


@db_app.command("url")
def db_url(
    airflow: Annotated[bool, typer.Option(help="Airflow's metadata DB instead.")] = False,
    duty: Annotated[
        str,
        typer.Option(
            help="Whose login: pipeline, ui, audit, steward, auditor, admin, or migrate "
            "(the superuser)."
        ),
    ] = "pipeline",
) -> None:
    """Print the connection URL of a duty's login, password included (starting the embedded
    server if needed); for `psql "$(veilflow db url)"`."""
    from veilflow.zones.db import airflow_url, duty_url
    from veilflow.zones.logins import DUTIES

    if duty not in DUTIES:
        raise VeilflowError(f"unknown duty {duty!r}; known: {', '.join(DUTIES)}")
    typer.echo(airflow_url() if airflow else duty_url(duty))


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded PostgreSQL server."""
    from veilflow.config import settings
    from veilflow.zones.server import stop_embedded

    s = settings()
    if not s.embedded:
        err("VEILFLOW_DATABASE_URL points at an external server; nothing to stop")
        return
    typer.echo(
        "stopped embedded PostgreSQL"
        if stop_embedded(s.pgdata)
        else "embedded PostgreSQL was not running"
    )


# ------------------------------------------------------------------------------- seed / run
@app.command()
def seed(
    rows: Annotated[int, typer.Option(min=1, help="Rows to generate.")] = 100_000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 42,
    table: Annotated[str, typer.Option(help="Target table.")] = "restricted.customers",
    append: Annotated[
        bool,
        typer.Option(
            "--append",
            help="Add --rows rows past the highest customer_id instead of recreating the "
            "table (a growing source, for incremental runs).",
        ),
    ] = False,
    orders: Annotated[
        bool,
        typer.Option(
            "--orders",
            help="Also (re)create restricted.orders: deterministic orders of the seeded "
            "customers, customer_id a foreign key to theirs (the shop dataset's second table).",
        ),
    ] = False,
) -> None:
    """Create the demo restricted table with deterministic fake customers (and, with
    --orders, their orders)."""
    from veilflow.pipeline.seed import append_customers, seed_customers, seed_orders
    from veilflow.zones.db import connect
    from veilflow.zones.migrations import upgrade

    with connect(duty="migrate") as conn:
        upgrade(conn)
        conn.autocommit = False
        if append:
            added = append_customers(conn, rows=rows, seed=seed, table=table)
            typer.echo(f"appended {added:,} rows to {table} (seed {seed})")
            return

        def progress(n: int) -> None:
            err(f"  seeded {n:,}/{rows:,} rows")

        n = seed_customers(conn, rows=rows, seed=seed, table=table, progress=progress)
        typer.echo(f"seeded {table} with {n:,} rows (seed {seed})")
        if orders:
            schema = table.split(".")[0]
            made = seed_orders(conn, seed=seed, table=f"{schema}.orders", customers=table)
            typer.echo(f"seeded {schema}.orders with {made:,} rows (seed {seed})")


@app.command()
def check(policy: Annotated[str, typer.Argument(help="Policy file or dataset name.")]) -> None:
    """Validate a policy (operators and their parameters included) and print its hash.
    Needs no database and no key."""
    from veilflow.pipeline.plan import check_operators
    from veilflow.policy import DatasetPolicy, load_any_policy

    pol = load_any_policy(policy_file(policy))
    if isinstance(pol, DatasetPolicy):
        for table, sub in pol.table_policies().items():
            typer.echo(f"{pol.file}: table {table}: ok, {len(check_operators(sub))} columns")
        typer.echo(
            f"{pol.file}: ok, dataset {pol.dataset}, tables {', '.join(pol.order)}, "
            f"hash {pol.hash[:16]}"
        )
        return
    columns = check_operators(pol)
    typer.echo(
        f"{pol.file}: ok, dataset {pol.dataset}, {len(columns)} columns, hash {pol.hash[:16]}"
    )


@app.command()
def run(
    policy: Annotated[str, typer.Argument(help="Policy file or dataset name.")],
    run_id: Annotated[str | None, typer.Option(help="Run id (default: `manual__<time>`).")] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, help="Processes transforming chunks in parallel (default: one per CPU)."
        ),
    ] = None,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="An incremental policy: re-anonymize the whole source instead of appending "
            "the rows past the cursor (after a refused change below the cursor, say).",
        ),
    ] = False,
) -> None:
    """Run a policy end to end in this process: extract, transform, validate, publish. A
    dataset policy of several tables runs every table, checks the foreign keys between
    them and publishes them all in one transaction."""
    from veilflow.pipeline.runner import run_policy
    from veilflow.policy import DatasetPolicy, load_any_policy

    pol = load_any_policy(policy_file(policy))
    if isinstance(pol, DatasetPolicy):
        from veilflow.pipeline.dataset import table_run_id
        from veilflow.pipeline.dataset_run import run_dataset

        if full:
            raise VeilflowError("--full is for incremental policies; a dataset runs in full")
        done = run_dataset(pol, run_id=run_id, progress=lambda m: err(f"  {m}"), workers=workers)
        for table in pol.order:
            print_summary(table_run_id(done.run_id, table))
        return
    summary = run_policy(
        pol, run_id=run_id, progress=lambda m: err(f"  {m}"), workers=workers, full=full
    )
    print_summary(summary.run_id)


# ------------------------------------------------------------------------------- runs
def _fetch_run(run_id: str | None, dataset: str | None) -> tuple[RunRow, RunManifest]:
    """One run by id, else the latest run (of ``dataset`` when given)."""
    from veilflow.zones.db import connect
    from veilflow.zones.runs import latest_run

    with connect() as conn:
        found = latest_run(conn, run_id, dataset)
    if found is None:
        raise VeilflowError("no such run" if run_id else "no runs recorded yet")
    return found


def cursor_line(inc: dict[str, Any], up_to_date: bool) -> str:
    """What an incremental policy's run took, in one line (cursor positions, counts)."""
    column, lo, hi = inc["cursor"], inc.get("from"), inc.get("to")
    if up_to_date:
        return f"cursor {column}: no rows past {lo}; the published version stands"
    if inc["mode"] == "append":
        return (
            f"cursor {column}: appended {inc['rows_taken']:,} rows, {lo} < {column} <= {hi}"
            f" ({inc['rows_total']:,} source rows published in all)"
        )
    return f"cursor {column}: full run up to {column} <= {hi} ({inc.get('reason')})"


def print_summary(run_id: str | None = None, dataset: str | None = None) -> None:
    from veilflow.config import settings

    r, m = _fetch_run(run_id, dataset)
    exe = "veilflow" if shutil.which("veilflow") else os.path.relpath(sys.argv[0])
    gate = m.gate
    typer.echo(f"run {r.run_id} of {r.dataset}: {r.status}")
    if m.incremental:
        typer.echo(f"  {cursor_line(m.incremental, m.up_to_date)}")
    typer.echo(f"  rows in        {r.rows_in or 0:>12,}")
    if gate and gate.suppressed_rows:
        typer.echo(f"  suppressed     {gate.suppressed_rows:>12,}  (equivalence classes below k)")
    target = m.target.table or None
    typer.echo(f"  rows published {r.rows_out or 0:>12,}  -> {target}")
    if r.error:
        typer.echo(f"  error          {r.error}")
    typer.echo("  columns:")
    for c in m.columns:
        key = f"  [{c.key}]" if c.key else ""
        typer.echo(f"    {c.name:<14} {c.action:<11} {c.gdpr:<13}{key}")
    if gate:
        typer.echo(
            f"  gate: {'passed' if gate.passed else 'FAILED'} "
            f"({len(gate.checks)} checks, {len(gate.failed)} failed)"
        )
        if gate.data_docs:
            typer.echo(f"  data docs: {gate.data_docs}")
    risk = m.risk
    if risk:
        link = risk.get("linkage") or {}
        typer.echo(
            f"  risk: k {risk.get('k')}, prosecutor {risk['prosecutor_risk']:.2%} of records in"
            f" classes below {risk['risk_k']} (source {risk['source_risk']:.2%}), linkage"
            f" {link.get('share', 0.0):.2%} of {link.get('auxiliary', 0):,} auxiliary records"
            f" matched uniquely; trend: {exe} risk history {r.dataset}"
        )
    u = m.utility
    if u:
        if u.get("error"):
            typer.echo(f"  utility: report failed ({u['error']})")
        else:
            v, cost = u.get("variants", {}), u.get("cost", {})

            def scores(name: str) -> str:
                s = v.get(name, {})
                return f"accuracy {s.get('accuracy')}" + (f", AUC {s['auc']}" if "auc" in s else "")

            typer.echo(
                f"  utility ({u.get('model')} predicting {u.get('target')}, "
                f"{u.get('records', {}).get('test')} held-out records): source {scores('source')};"
                f" masked {scores('masked')}; cost {cost.get('auc', cost.get('accuracy'))}"
                f" {'AUC' if 'auc' in cost else 'accuracy'}"
            )
    syn = m.synthetic
    if syn:
        dist = syn.get("distance") or {}
        where = syn.get("quarantined_as") or syn.get("table")
        typer.echo(
            f"  synthetic: {syn.get('rows', 0):,} rows -> {where} ({syn.get('synthesizer')},"
            f" fitted on {syn.get('trained_on', 0):,}); exact copies {syn.get('exact_copies')},"
            f" {dist.get('too_close_share', 0):.2%} closer than {dist.get('min_distance')}"
            f" (max {dist.get('max_close_share', 0):.0%}), fidelity quality"
            f" {(syn.get('fidelity') or {}).get('quality')}"
        )
    dp = m.releases
    if dp:
        b = dp.get("budget") or {}
        typer.echo(
            f"  DP releases: ε {dp['epsilon_spent']:g} spent"
            + (f", δ {dp['delta_spent']:g}" if dp.get("delta_spent") else "")
            + f" (budget ε {b.get('epsilon_total', 0):g}, {b.get('epsilon_remaining', 0):g} left;"
            f" {exe} budget show {r.dataset})"
        )
        for rel in dp.get("releases", []):
            what = rel.get("statistic", "")
            if rel.get("column"):
                what += f" of {rel['column']}"
            if rel.get("group_by"):
                what += f" by {', '.join(rel['group_by'])}"
            typer.echo(
                f"    {rel['table']:<42} {what}, {rel.get('cells', 0)} cells, ε {rel['epsilon']:g}"
                + (f" ({rel['mechanism']}, scale {rel['scale']:g})" if rel.get("mechanism") else "")
            )
    left = m.full_runs_only
    if left:
        names = {"releases": "DP releases", "synthetic": "synthetic table", "utility": "utility"}
        typer.echo(
            f"  {', '.join(names.get(x, x) for x in left)}: made by full runs; this run appended"
            " its new rows and kept the last ones"
        )
    q = m.quarantine
    if q:
        typer.echo(
            f"  quarantined as {q.table}: "
            + "; ".join(
                x["check"] + (f"[{x['column']}]" if x.get("column") else "") for x in q.reasons
            )
        )
    typer.echo("where to look next:")
    typer.echo(f"  {exe} runs show '{r.run_id}' --json   the whole manifest")
    typer.echo(f"  {exe} lineage show {r.dataset}   column lineage")
    typer.echo(f"  {exe} audit verify   the audit log's hash chain, and an anchor to keep")
    typer.echo(f"  psql \"$({exe} db url)\" -c 'SELECT * FROM {target} LIMIT 5'")
    typer.echo(
        "  make up   the Airflow UI on http://localhost:8080 (menu Veilflow: lineage, runs,"
        " access, keys, audit)"
    )
    typer.echo(f"  state folder: {settings().home}")


@runs_app.command("list")
def runs_list(
    dataset: Annotated[str | None, typer.Option(help="Only this dataset.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 20,
) -> None:
    """Recent runs, newest first."""
    from veilflow.zones.db import connect
    from veilflow.zones.runs import list_runs

    with connect() as conn:
        rows = list_runs(conn, dataset=dataset, limit=limit)
    for r in rows:
        typer.echo(
            f"{r.started_at:%Y-%m-%d %H:%M:%S}  {r.dataset:<14} {r.status:<12} "
            f"{r.rows_in or 0:>10,} -> {r.rows_out or 0:>10,}  {r.run_id}"
        )


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str | None, typer.Argument(help="Run id (default: latest).")] = None,
    dataset: Annotated[str | None, typer.Option(help="Latest run of this dataset.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The raw manifest.")] = False,
) -> None:
    """A run's summary, or its whole manifest with --json."""
    if as_json:
        _, m = _fetch_run(run_id, dataset)
        typer.echo(json.dumps(m.to_json(), indent=2, sort_keys=True, default=str))
    else:
        print_summary(run_id, dataset)


# ------------------------------------------------------------------------------- airflow
@airflow_app.command("env")
def airflow_env_cmd() -> None:
    """Print `export` lines that point Airflow at the embedded stack (eval them)."""
    from veilflow.airflow.env import airflow_env

    for k, v in airflow_env().items():
        typer.echo(f"export {k}={shlex.quote(v)}")


for _area in (detect, detector, vault, validate, lineage, serve, erase, budget):
    _area.register(app)


def main() -> None:
    """Console entry point: domain errors become one line and an exit code."""
    import psycopg

    try:
        app()
    except VeilflowError as exc:
        err(f"error: {exc}")
        sys.exit(exc.exit_code)
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        err(f"error: database: {log_redaction.redact_text(first)}")
        sys.exit(9)


if __name__ == "__main__":
    main()
