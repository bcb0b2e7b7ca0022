"""Reading samples from PostgreSQL and storing scan results in the governance schema.

Samples never read a whole large table: ``TABLESAMPLE SYSTEM`` picks pages at random when
the table is larger than the sample, capped by ``LIMIT``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import psycopg
from psycopg import sql

from veilflow.detect.columns import ColumnVerdict
from veilflow.detect.report import ScanReport
from veilflow.errors import SourceError


def _ident(table: str) -> sql.Composable:
    parts = table.split(".")
    if len(parts) == 1:
        parts = ["restricted", parts[0]]
    if len(parts) != 2:
        raise SourceError(f"expected <schema>.<table>, got {table!r}")
    return sql.Identifier(*parts)


def sample_table(conn: psycopg.Connection, table: str, rows: int) -> pd.DataFrame:
    """Up to ``rows`` rows of ``table`` as text columns (PostgreSQL's text form)."""
    ident = _ident(table)
    try:
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("SELECT reltuples::bigint FROM pg_class WHERE oid = {}::regclass").format(
                    sql.Literal(ident.as_string(conn))
                )
            )
            found = cur.fetchone()
            estimate = int(found[0]) if found else -1
            if estimate > rows * 4:
                pct = min(100.0, 100.0 * rows * 3 / estimate)
                query = sql.SQL("SELECT * FROM {} TABLESAMPLE SYSTEM ({}) LIMIT {}").format(
                    ident, sql.Literal(pct), sql.Literal(rows)
                )
            else:
                query = sql.SQL("SELECT * FROM {} LIMIT {}").format(ident, sql.Literal(rows))
            cur.execute(query)
            names = [d.name for d in cur.description or []]
            data = cur.fetchall()
            if len(data) < rows and estimate > rows * 4:
                # Page sampling came up short (few pages picked): take the first rows instead.
                cur.execute(sql.SQL("SELECT * FROM {} LIMIT {}").format(ident, sql.Literal(rows)))
                data = cur.fetchall()
    except psycopg.errors.UndefinedTable as exc:
        raise SourceError(f"table {table} does not exist") from exc
    frame = pd.DataFrame(data, columns=names, dtype=object)
    for c in frame.columns:  # scan the text form, as the pipeline moves it
        frame[c] = frame[c].map(
            lambda v: None if v is None else v if isinstance(v, str) else str(v)
        )
    return frame


def store_scan(
    conn: psycopg.Connection,
    run_id: str,
    dataset: str,
    report: ScanReport | Sequence[ColumnVerdict],
) -> int:
    """Insert one row per (column, entity) into ``governance.scan_results``; returns the
    number of rows. Counts and rates only, never values."""
    if not isinstance(report, ScanReport):
        report = ScanReport(dataset, "", max((v.sampled for v in report), default=0), list(report))
    rows: list[dict[str, Any]] = report.rows()
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO governance.scan_results "
            '(run_id, dataset, "column", entity, count, hit_rate, confidence) '
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    run_id,
                    dataset,
                    r["column"],
                    r["entity"],
                    int(r["count"]),
                    float(r["hit_rate"]),
                    float(r["confidence"]),
                )
                for r in rows
            ],
        )
    return len(rows)
