"""Incremental runs (ADR 0017): which rows a run of a policy with ``incremental:`` takes.

The first run is a full run, and so is any run after something that makes the published
version and a new run's rows disagree: another policy (its hash), other data key
versions (the tokens would no longer join), another cursor column, or the published
version's kept gate sketches gone. Otherwise the run appends the source rows past the
cursor of the published version, once the rows below it are proven unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from psycopg import sql

from veilflow.errors import SourceChanged, SourceError
from veilflow.policy.model import Policy
from veilflow.zones import increment as cursors
from veilflow.zones.manifest import ColumnEntry
from veilflow.zones.run_tables import (
    RunTables,
    create_snapshot,
    published_sketch_key,
    table_exists,
)

log = logging.getLogger(__name__)

Mode = Literal["full", "append"]


@dataclass(frozen=True)
class IncrementPlan:
    mode: Mode
    #: Why a run of an incremental policy is a full run (empty when it appends).
    reason: str
    since: cursors.CursorState | None
    #: The published version's gate key, for the run's sketches (appending only).
    gate_key: bytes | None
    cursor_type: str


def check_cursor(conn: psycopg.Connection[Any], policy: Policy) -> str:
    """Refuse a cursor the source cannot serve, before anything is written: a NULL cursor
    has no place in the order, a view has no row versions to prove changes by. Returns
    the cursor column's SQL type."""
    assert policy.incremental is not None
    src, column = policy.source, policy.incremental.cursor
    if not cursors.is_plain_table(conn, src.schema_name, src.table_name):
        raise SourceError(
            f"{src.table}: incremental runs need a table (not a view): the rows below the "
            "cursor are proven unchanged by their row versions"
        )
    try:
        typ = cursors.cursor_type(conn, src.schema_name, src.table_name, column)
    except LookupError:
        raise SourceError(f"{src.table}: the cursor column {column!r} does not exist") from None
    nulls = cursors.null_cursors(conn, src.schema_name, src.table_name, column)
    if nulls:
        raise SourceError(
            f"{src.table}: {nulls} row(s) have a NULL cursor {column!r}; an incremental run "
            "needs a cursor on every row (fix the source, or declare another cursor)"
        )
    return typ


def plan_increment(
    conn: psycopg.Connection[Any],
    policy: Policy,
    columns: Sequence[ColumnEntry],
    cursor_type: str,
    *,
    full: bool = False,
) -> IncrementPlan:
    """Append or a full run, and why. ``columns`` are the run's manifest column entries
    (their key versions); ``full`` asks for a full run."""
    assert policy.incremental is not None
    state = cursors.latest_cursor(conn, policy.dataset)

    def full_run(reason: str) -> IncrementPlan:
        return IncrementPlan("full", reason, None, None, cursor_type)

    if full:
        return full_run("a full run was asked for")
    if state is None:
        return full_run("no published version of an incremental run to append to")
    if state.column != policy.incremental.cursor or state.type != cursor_type:
        return full_run(f"the cursor changed (was {state.column} {state.type})")
    if state.policy_hash != policy.hash:
        return full_run("the policy changed since the published version")
    keys_now = {c.name: c.key for c in columns}
    keys_then = {c.name: c.key for c in state.manifest_columns}
    if keys_now != keys_then:
        changed = sorted(n for n in keys_now if keys_now.get(n) != keys_then.get(n))
        return full_run(
            "data key versions changed since the published version "
            f"({', '.join(changed) or 'columns'}): a full run keeps every token under one"
        )
    if not table_exists(conn, policy.target.schema_name, policy.target.table_name):
        return full_run(f"{policy.target.table} does not exist")
    key = published_sketch_key(conn, policy.dataset)
    if key is None:
        return full_run("the published version's gate sketches are missing")
    return IncrementPlan("append", "", state, key, cursor_type)


def take_rows(
    conn: psycopg.Connection[Any],
    policy: Policy,
    rt: RunTables,
    declared: list[str],
    plan: IncrementPlan,
) -> tuple[int, dict[str, Any]]:
    """Snapshot the rows the run takes, in one REPEATABLE READ transaction that first
    proves the rows below the cursor unchanged (``SourceChanged`` naming the blocks, and
    nothing written), then records the snapshot the next run proves against. Returns the
    rows taken and the manifest's ``incremental`` entry."""
    assert policy.incremental is not None
    src, column = policy.source, policy.incremental.cursor
    conn.commit()
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    try:
        cursors.pin_session(conn)
        snapshot = cursors.take_snapshot_id(conn)
        since = plan.since
        where: sql.Composable | None = None
        if since is not None:
            changes = cursors.source_changes(conn, src.schema_name, src.table_name, since)
            if changes:
                raise SourceChanged(_refusal(policy, since, changes))
            where = sql.SQL("{} > {}::{}").format(
                sql.Identifier(column), sql.Literal(since.cursor_to), sql.SQL(plan.cursor_type)
            )
        rows = create_snapshot(conn, rt, src.schema_name, src.table_name, src.key, declared, where)
        everything = sql.SQL("true")
        blocks = cursors.blocks_of(conn, rt.snapshot, column, everything) if rows else []
        top = cursors.highest(conn, rt.snapshot, column, everything) if rows else None
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.isolation_level = None
    prior = list(since.blocks) if since is not None else []
    entry: dict[str, Any] = {
        "cursor": column,
        "type": plan.cursor_type,
        "mode": plan.mode,
        "reason": plan.reason,
        "from": since.cursor_to if since is not None else None,
        "to": top if top is not None else (since.cursor_to if since is not None else None),
        "rows_taken": rows,
        "rows_total": (since.rows_total if since is not None else 0) + rows,
        "blocks": [{"lo": b.lo, "rows": b.rows} for b in [*prior, *blocks]],
        "snapshot": snapshot,
        "appends_to_run": since.run_id if since is not None else None,
    }
    return rows, entry


def _refusal(policy: Policy, since: cursors.CursorState, changes: list[cursors.BlockChange]) -> str:
    assert policy.incremental is not None
    column = policy.incremental.cursor
    written = sum(c.written for c in changes)
    missing = sum(c.missing for c in changes)
    shown = "; ".join(c.describe(column) for c in changes[:5])
    more = f"; and {len(changes) - 5} more block(s)" if len(changes) > 5 else ""
    return (
        f"{policy.source.table} changed below the cursor {column} <= {since.cursor_to} since "
        f"run {since.run_id} published it: {written:,} row(s) written since (updated, or "
        f"inserted below the cursor), {missing:,} of its rows no longer there (deleted, or "
        f"the old version of an update), in {len(changes)} block(s): {shown}{more}. "
        "An incremental source must only grow past its cursor; to publish the table as it "
        "is now, run a full run (veilflow run --full, or trigger the DAG with "
        '{"full": true})'
    )
