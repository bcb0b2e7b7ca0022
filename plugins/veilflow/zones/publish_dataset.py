"""Atomic publish of a dataset of several tables: every table's new version is built and
swapped in inside one transaction, so readers see all the old versions or all the new ones,
and a failure in any table (a build, a grant, a swap) rolls every table back (ADR 0023)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from veilflow.zones.publish import LeaveOut, publish_version
from veilflow.zones.run_tables import CANARY, RunTables


@dataclass(frozen=True)
class TableVersion:
    """One table's candidate and where it goes."""

    tables: RunTables
    #: ``anonymized.<table>``.
    target: str
    columns: list[str]
    leave_out: list[LeaveOut] = field(default_factory=list)


def candidate_rows(conn: psycopg.Connection, rt: RunTables) -> int:
    """The candidate's rows that are not canaries."""
    row = conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE NOT {}").format(rt.candidate, sql.Identifier(CANARY))
    ).fetchone()
    return int(row[0]) if row else 0


def publish_versions(
    conn: psycopg.Connection, versions: list[TableVersion], readers: Iterable[str]
) -> dict[str, int]:
    """Publish every version in one transaction (the caller's, when one is open: then the
    swap commits with it). Returns the rows published by target table."""
    granted = list(readers)
    published: dict[str, int] = {}
    with conn.transaction():
        for v in versions:
            schema, table = v.target.split(".")
            published[v.target] = publish_version(
                conn, v.tables, schema, table, v.columns, granted, leave_out=v.leave_out
            )
    return published
