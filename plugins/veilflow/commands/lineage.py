"""`veilflow lineage …`: column lineage in the terminal, export of the stored OpenLineage
events for auditors and other lineage tools, and re-delivery of pending events."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated

import typer

from veilflow.commands import command_group
from veilflow.errors import VeilflowError

lineage_app = command_group("OpenLineage lineage: show, export, retry delivery.")


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


@lineage_app.command("show")
def show(
    dataset: Annotated[
        str, typer.Argument(help="Policy dataset (customers) or table (anonymized.customers).")
    ],
    column: Annotated[str | None, typer.Option("--column", "-c", help="Only this column.")] = None,
    run: Annotated[str | None, typer.Option("--run", help="Run id (default: latest).")] = None,
) -> None:
    """Column lineage: restricted column → operator + key version → anonymized column."""
    from veilflow.lineage.view import run_lineage
    from veilflow.zones.db import connect

    with connect() as conn:
        lin = run_lineage(conn, dataset, run_id=run, column=column)
    if lin is None:
        raise VeilflowError(
            f"no lineage stored for {dataset}"
            + (f" run {run}" if run else "")
            + "; run its policy first"
        )
    if not lin.edges:
        raise VeilflowError(
            f"{dataset} run {lin.run_id}: no column "
            + (f"{column!r} " if column else "")
            + "in its lineage"
        )
    policy = lin.facet.get("policy", {})
    typer.echo(
        f"{lin.dataset} run {lin.run_id}: {lin.stage} {lin.event_type} at "
        f"{lin.event_time:%Y-%m-%d %H:%M:%S %Z}"
    )
    typer.echo(
        f"policy {policy.get('file', policy.get('name', '?'))} hash {(lin.policy_hash or '')[:16]}"
    )
    width = max(len(f"{e.input_table}.{e.input_column}") for e in lin.edges)
    for e in lin.edges:
        src = f"{e.input_table}.{e.input_column}"
        key = f" [{e.key}]" if e.key else ""
        typer.echo(f"  {src:<{width}}  --{e.operator}{key}-->  {e.output_table}.{e.column}")
        typer.echo(f"  {'':<{width}}    {e.description}")
        typer.echo(
            f"  {'':<{width}}    {e.transformation}, masking={str(e.masking).lower()}, "
            f"{e.gdpr_class or '?'}: {e.gdpr_reason or ''}"
        )


@lineage_app.command("export")
def export(
    dataset: Annotated[
        str,
        typer.Option(
            "--dataset", help=("Policy dataset (customers) or table (anonymized.customers).")
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder for the JSON files.")],
    run: Annotated[str | None, typer.Option("--run", help="Only this run.")] = None,
) -> None:
    """Write every stored event of a dataset as OpenLineage JSON, one file per event."""
    from veilflow.lineage.store import dataset_events
    from veilflow.zones.db import connect

    with connect() as conn:
        events = dataset_events(conn, dataset, run_id=run)
    if not events:
        raise VeilflowError(
            f"no lineage events stored for {dataset}" + (f" run {run}" if run else "")
        )
    out.mkdir(parents=True, exist_ok=True)
    for e in events:
        name = (
            f"{e.event_time:%Y%m%dT%H%M%S%f}-{e.event_id:08d}-{_safe(e.job_name)}-"
            f"{e.event_type}.json"
        )
        (out / name).write_text(json.dumps(e.event, indent=2, sort_keys=True) + "\n")
    typer.echo(f"wrote {len(events)} event(s) of {dataset} to {out}")


@lineage_app.command("retry")
def retry(
    limit: Annotated[int, typer.Option(min=1, help="At most this many events.")] = 1000,
) -> None:
    """Deliver pending events (Marquez / files were unreachable) and import spooled ones."""
    from veilflow.lineage.emitter import retry_pending
    from veilflow.zones.db import connect

    with connect() as conn:
        result = retry_pending(conn, limit=limit)
    if result.imported:
        typer.echo(f"imported {result.imported} spooled event(s) into the governance store")
    typer.echo(f"delivered {result.delivered} event(s); {result.pending} still pending")
    if result.error:
        raise VeilflowError(f"delivery failed: {result.error}")


@lineage_app.command("status")
def status() -> None:
    """Events stored, delivered, pending and spooled."""
    from veilflow.lineage.store import spool_dir
    from veilflow.zones.db import connect

    with connect() as conn:
        row = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE delivered),"
            " count(*) FILTER (WHERE delivered = false),"
            " (array_agg(delivery_error ORDER BY event_id DESC)"
            "  FILTER (WHERE delivered = false))[1]"
            " FROM governance.lineage_events"
        ).fetchone()
    assert row is not None
    spooled = len(list(spool_dir().glob("*.json"))) if spool_dir().is_dir() else 0
    typer.echo(f"stored {row[0]}, delivered {row[1]}, pending {row[2]}, spooled {spooled}")
    if row[3]:
        typer.echo(f"last delivery error: {row[3]}")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.add_typer(lineage_app, name="lineage")
