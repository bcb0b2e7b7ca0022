"""What extract checks of a source before it copies a row: its columns against the policy
(``SchemaDrift``), its key (NULL or duplicate keys stop a run), and a detection scan of a
sample whose counts go into the run manifest."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg import sql

from veilflow.errors import SchemaDrift, SourceError
from veilflow.policy.model import Policy
from veilflow.zones.run_tables import SourceColumn, count

log = logging.getLogger(__name__)


def check_schema(
    policy: Policy, columns: list[SourceColumn], conn: psycopg.Connection | None = None
) -> list[str]:
    """Declared columns the source has; ``SchemaDrift`` on undeclared or missing ones. With
    a connection, the message carries the detection scan's verdict on each new column."""
    names = [c.name for c in columns]
    undeclared = [n for n in names if n not in policy.columns]
    missing = [n for n in policy.columns if n not in names]
    if missing or (undeclared and policy.unlisted == "fail"):
        shown = undeclared if policy.unlisted == "fail" else []
        detail = ""
        if shown and conn is not None:
            from veilflow.detect.columns import drift_detail
            from veilflow.detect.store import sample_table

            try:
                sample = sample_table(conn, policy.source.table, 200)
                detail = drift_detail(sample, shown, policy.detection)
            except Exception as exc:  # the drift itself is the error to report
                log.warning("could not scan the new column(s): %s", type(exc).__name__)
                conn.rollback()
        raise SchemaDrift(policy.source.table, shown, missing, detail)
    if undeclared:
        log.info(
            "dropping %d unlisted column(s) of %s: %s",
            len(undeclared),
            policy.source.table,
            ", ".join(undeclared),
        )
    return [n for n in names if n in policy.columns]


def check_keys(conn: psycopg.Connection, policy: Policy) -> None:
    """Stop on NULL or duplicate source keys: a chunk's rows are found by key order. A key
    column that is NOT NULL with a unique index on it alone is proven by the catalog; any
    other is counted."""
    if key_is_declared_unique(conn, policy):
        return
    src = sql.Identifier(policy.source.schema_name, policy.source.table_name)
    key = sql.Identifier(policy.source.key)
    nulls = count(conn, src, sql.SQL("{} IS NULL").format(key))
    if nulls:
        raise SourceError(
            f"{policy.source.table}: {nulls} row(s) have a NULL key "
            f"{policy.source.key!r}; fix the source or the key"
        )
    row = conn.execute(
        sql.SQL(
            "SELECT count(*), coalesce(sum(n), 0) FROM"
            " (SELECT count(*) AS n FROM {s} GROUP BY {k} HAVING count(*) > 1) d"
        ).format(k=key, s=src)
    ).fetchone()
    if row is not None and row[0]:
        # Counts only: the duplicated keys are the source's values (often personal data),
        # and this message reaches the audit log and task logs.
        raise SourceError(
            f"{policy.source.table}: duplicate key {policy.source.key!r}: {row[0]} key "
            f"value(s) occur more than once ({row[1]} rows); list them with SELECT "
            f"{policy.source.key} FROM {policy.source.table} GROUP BY 1 HAVING count(*) > 1"
        )


def key_is_declared_unique(conn: psycopg.Connection, policy: Policy) -> bool:
    """The source key is NOT NULL and a valid unique index (a primary key or a unique
    constraint) covers exactly that column, without a predicate."""
    row = conn.execute(
        """SELECT a.attnotnull AND EXISTS (
                  SELECT 1 FROM pg_index i
                   WHERE i.indrelid = c.oid AND i.indisunique AND i.indisvalid
                     AND i.indnkeyatts = 1 AND i.indkey[0] = a.attnum AND i.indpred IS NULL)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = c.oid
            WHERE n.nspname = %s AND c.relname = %s AND a.attname = %s AND NOT a.attisdropped""",
        (policy.source.schema_name, policy.source.table_name, policy.source.key),
    ).fetchone()
    return bool(row and row[0])


def scan_source(
    conn: psycopg.Connection, policy: Policy, run_id: str, columns: list[str]
) -> dict[str, Any]:
    """Classify the source's columns on a sample (``detection.sample_size`` rows), store the
    result in ``governance.scan_results`` and return counts per entity per column for the
    manifest (never values). A scan failure is recorded, not fatal: the policy, not the
    scan, decides what is transformed."""
    from veilflow.detect.report import ScanReport
    from veilflow.detect.store import sample_table, store_scan

    try:
        sample = sample_table(conn, policy.source.table, policy.detection.sample_size)
        report = ScanReport.of_frame(
            policy.dataset,
            policy.source.table,
            sample[[c for c in columns if c in sample.columns]],
            policy.detection,
        )
        with conn.transaction():
            store_scan(conn, run_id, policy.dataset, report)
        return {"sampled": len(sample), "entities": report.counts()}
    except Exception as exc:
        conn.rollback()
        log.warning("detection scan of %s failed: %s", policy.source.table, type(exc).__name__)
        return {"error": type(exc).__name__}
