"""Atomic publish and quarantine.

Publish builds the new version beside the old one and swaps names in one transaction:
readers see the old version or the new one, never half. Quarantine moves a refused
candidate out of staging with its reasons; the published version is not touched.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg import sql

from veilflow.errors import SourceError
from veilflow.zones.run_tables import CANARY, RunTables, table_exists

log = logging.getLogger(__name__)

#: Policy role name -> PostgreSQL group role.
ROLE_NAMES = {
    "pipeline": "veilflow_pipeline",
    "steward": "veilflow_steward",
    "ml_engineer": "veilflow_ml_engineer",
    "auditor": "veilflow_auditor",
    "admin": "veilflow_admin",
}


#: Rows to leave out of a new version: ``(column, values)``, the rows whose ``column`` holds
#: one of ``values``.
LeaveOut = tuple[str, list[str]]


def _kept_rows(
    leave_out: LeaveOut | list[LeaveOut] | None,
) -> tuple[sql.Composable, tuple[object, ...]]:
    """The candidate's rows that go out: no canary, none of ``leave_out``'s values (a row
    whose column is NULL is kept)."""
    where: sql.Composable = sql.SQL("NOT {}").format(sql.Identifier(CANARY))
    pairs = [leave_out] if isinstance(leave_out, tuple) else list(leave_out or [])
    params: list[object] = []
    for column, values in pairs:
        if not values:
            continue
        where = sql.SQL("{} AND NOT coalesce({} = ANY(%s), false)").format(
            where, sql.Identifier(column)
        )
        params.append(values)
    return where, tuple(params)


def swap_in(
    conn: psycopg.Connection, schema: str, name: str, new: str, old: str, readers: Iterable[str]
) -> None:
    """Put the freshly built ``schema.new`` in place of ``schema.name``, readable by
    ``readers``: a grant, then the swap (two renames and a drop), in the caller's
    transaction, so readers see the old table or the new one, never none."""
    for role in readers:
        conn.execute(
            sql.SQL("GRANT SELECT ON {} TO {}").format(
                sql.Identifier(schema, new), sql.Identifier(role)
            )
        )
    if table_exists(conn, schema, name):
        conn.execute(
            sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                sql.Identifier(schema, name), sql.Identifier(old)
            )
        )
        conn.execute(
            sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                sql.Identifier(schema, new), sql.Identifier(name)
            )
        )
        conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(schema, old)))
    else:
        conn.execute(
            sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                sql.Identifier(schema, new), sql.Identifier(name)
            )
        )


def publish_version(
    conn: psycopg.Connection,
    rt: RunTables,
    target_schema: str,
    target_table: str,
    columns: list[str],
    readers: Iterable[str],
    *,
    leave_out: LeaveOut | list[LeaveOut] | None = None,
) -> int:
    """Swap the candidate (minus canary rows and bookkeeping columns) into
    ``target_schema.target_table`` atomically; grant SELECT to ``readers`` (group roles).
    ``leave_out`` is ``(column, values)``, or a list of them: rows whose ``column`` holds one
    of ``values`` (erased subjects' tokens) never enter the new version. Inside a transaction
    of the caller's, the swap commits with it (a dataset's tables swap together). Returns the
    rows published."""
    new = f"{target_table}__new_{rt.tag}"[:63]
    old = f"{target_table}__old_{rt.tag}"[:63]
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    where, params = _kept_rows(leave_out)
    with conn.transaction():
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(target_schema, new)))
        built = conn.execute(
            sql.SQL("CREATE TABLE {new} AS SELECT {cols} FROM {cand} WHERE {where}").format(
                new=sql.Identifier(target_schema, new),
                cols=cols,
                cand=rt.candidate,
                where=where,
            ),
            params,
        )
        rows = max(built.rowcount, 0)  # CREATE TABLE AS reports the rows it wrote
        swap_in(conn, target_schema, target_table, new, old, readers)
        conn.execute(
            "INSERT INTO governance.published_versions (dataset, target_table, run_id, rows)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (dataset, run_id) DO UPDATE SET rows ="
            " EXCLUDED.rows, published_at = now()",
            (rt.dataset, f"{target_schema}.{target_table}", rt.run_id, rows),
        )
    return rows


def append_version(
    conn: psycopg.Connection,
    rt: RunTables,
    target_schema: str,
    target_table: str,
    columns: list[str],
    *,
    after_run: str,
    leave_out: LeaveOut | list[LeaveOut] | None = None,
) -> int:
    """Append the candidate (minus canary rows and bookkeeping columns) to the published
    table in one transaction: readers see the table before the append or after it, never
    half (MVCC), and are not blocked; a failure leaves the published version as it was.
    The version appended to must still be ``after_run``'s: a run published since (a
    concurrent run) stops this one. ``leave_out`` as for ``publish_version``. Returns the
    rows appended (ADR 0017)."""
    target = sql.Identifier(target_schema, target_table)
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    where, params = _kept_rows(leave_out)
    with conn.transaction():
        # Writers wait for each other here; readers do not.
        conn.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(target))
        latest = conn.execute(
            "SELECT run_id, rows FROM governance.published_versions WHERE dataset = %s"
            " ORDER BY published_at DESC LIMIT 1",
            (rt.dataset,),
        ).fetchone()
        if latest is None or latest[0] != after_run:
            raise SourceError(
                f"{target_schema}.{target_table}: run {latest[0] if latest else '-'} published "
                f"since this run started from run {after_run}'s version; start a new run"
            )
        appended = conn.execute(
            sql.SQL("INSERT INTO {t} ({cols}) SELECT {cols} FROM {cand} WHERE {where}").format(
                t=target, cols=cols, cand=rt.candidate, where=where
            ),
            params,
        ).rowcount
        rows = max(appended, 0)
        conn.execute(
            "INSERT INTO governance.published_versions (dataset, target_table, run_id, rows)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (dataset, run_id) DO UPDATE SET rows ="
            " EXCLUDED.rows, published_at = now()",
            (rt.dataset, f"{target_schema}.{target_table}", rt.run_id, int(latest[1]) + rows),
        )
    return rows


def quarantine_candidate(
    conn: psycopg.Connection, rt: RunTables, reasons: list[dict[str, object]]
) -> str | None:
    """Move the candidate (if any) to the quarantine zone and record why. Returns the
    quarantine table's name."""
    qname = f"{rt.dataset}__{rt.tag}"[:63]
    with conn.transaction():
        moved: str | None = None
        if table_exists(conn, "staging", rt.candidate_name):
            conn.execute(
                sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier("quarantine", qname))
            )
            conn.execute(
                sql.SQL("CREATE TABLE {} AS SELECT * FROM {} WHERE NOT {}").format(
                    sql.Identifier("quarantine", qname), rt.candidate, sql.Identifier(CANARY)
                )
            )
            conn.execute(
                sql.SQL("GRANT SELECT ON {} TO veilflow_steward").format(
                    sql.Identifier("quarantine", qname)
                )
            )
            conn.execute(sql.SQL("DROP TABLE {}").format(rt.candidate))
            moved = f"quarantine.{qname}"
        conn.execute(
            "INSERT INTO governance.quarantined (dataset, run_id, quarantine_table, reasons)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (dataset, run_id) DO UPDATE SET"
            " quarantine_table = EXCLUDED.quarantine_table, reasons = EXCLUDED.reasons,"
            " quarantined_at = now()",
            (rt.dataset, rt.run_id, moved, json.dumps(reasons)),
        )
    return moved


def published_rows(conn: psycopg.Connection, run_id: str) -> int | None:
    """The rows the run published, or None when it published no version."""
    row = conn.execute(
        "SELECT rows FROM governance.published_versions WHERE run_id = %s", (run_id,)
    ).fetchone()
    return None if row is None else int(row[0])


def quarantined(conn: psycopg.Connection, run_id: str) -> tuple[str, list[Any]] | None:
    """(quarantine table, reasons) of the run's refused candidate, if it was quarantined."""
    row = conn.execute(
        "SELECT quarantine_table, reasons FROM governance.quarantined WHERE run_id = %s",
        (run_id,),
    ).fetchone()
    return None if row is None else (str(row[0]), list(row[1]))
