"""Erasure requests of a dataset of several tables (ADR 0022, ADR 0023): the subject is named
by the tokens of its key in the dataset's subject table, and its rows leave every table of
the dataset: the subject table's by that token, each table below it by the foreign-key token
of the rows removed from its parent.

The request is recorded under the dataset's name with the subject table's key column, as a
single table's is (``veilflow.vault.erasure``); applying it walks the tables in dependency
order, published versions and quarantined candidates alike, and proves by a second count that
no row referring to the subject is left. In the same transaction it keeps every published
table's k, parents first: the rest of a class the request left below its table's k is
suppressed, and so are the rows below that refer to a suppressed row, so that keeping k makes
no orphan (ADR 0023; the pipeline passes that step in, as it does for a table).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import psycopg
from psycopg import sql

from veilflow.policy.dataset import DatasetPolicy
from veilflow.transform.keys import KeyProvider
from veilflow.vault.access import require
from veilflow.vault.erasure import (
    ErasureReport,
    audit_applied,
    mark_applied,
    request,
    require_none_left,
)
from veilflow.zones.run_tables import table_exists

log = logging.getLogger(__name__)


def request_dataset(
    conn: psycopg.Connection, ds: DatasetPolicy, subject: str, reason: str, keys: KeyProvider
) -> int:
    """Record an erasure request for the subject whose key in the subject table is
    ``subject`` (stewards; audited). Returns its id."""
    # The subject table's policy under the dataset's name: its key column, its token
    # configuration and the dataset's key scope make the tokens; the request is the dataset's.
    policy = ds.table_policy(ds.subject_table).model_copy(update={"dataset": ds.dataset})
    return request(conn, policy, subject, reason, keys)


def dataset_tables(conn: psycopg.Connection, ds: DatasetPolicy, table: str) -> list[str]:
    """The published table and the quarantined candidates of one table of the dataset that
    exist, as ``schema.table``."""
    found = [ds.tables[table].target.table]
    found += [
        str(r[0])
        for r in conn.execute(
            "SELECT quarantine_table FROM governance.quarantined"
            " WHERE dataset = %s AND quarantine_table IS NOT NULL ORDER BY quarantined_at",
            (ds.table_dataset(table),),
        ).fetchall()
    ]
    return [t for t in found if table_exists(conn, *t.split(".", 1))]


def remove_rows(
    conn: psycopg.Connection,
    target: str,
    column: str,
    tokens: list[str],
    key: str,
) -> tuple[int, list[str], int]:
    """Delete ``target``'s rows whose ``column`` is one of ``tokens``: ``(removed, their
    key tokens, rows still found)``."""
    ident = sql.Identifier(*target.split(".", 1))
    col = sql.Identifier(column)
    keys = [
        str(r[0])
        for r in conn.execute(
            sql.SQL("DELETE FROM {} WHERE {} = ANY(%s) RETURNING {}::text").format(
                ident, col, sql.Identifier(key)
            ),
            (tokens,),
        ).fetchall()
    ]
    left = conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE {} = ANY(%s)").format(ident, col), (tokens,)
    ).fetchone()
    return len(keys), keys, int(left[0]) if left else 0


#: What keeps the published tables' k after a request removed rows: given the rows removed
#: per table, it returns the rows it suppressed per table (``pipeline.erased_dataset``).
KeepK = Callable[[psycopg.Connection, DatasetPolicy, dict[str, int]], dict[str, int]]


def apply_dataset(
    conn: psycopg.Connection, ds: DatasetPolicy, keep_k: KeepK
) -> list[ErasureReport]:
    """Apply every pending request of the dataset (the pipeline's login): remove the
    subjects' rows from every table of the dataset, then ``keep_k``
    (``pipeline.erased_dataset.keep_dataset_k``) suppresses, in the same transaction, what
    would leave a published table below its k; vacuum the tables, record what was removed and
    suppressed. ``conn`` must be in autocommit mode (VACUUM)."""
    require(conn, "encrypt", action="erasure.apply", target=ds.dataset)
    pending = conn.execute(
        "SELECT id, subject_tokens FROM governance.erasure_requests"
        " WHERE dataset = %s AND applied_at IS NULL ORDER BY id",
        (ds.dataset,),
    ).fetchall()
    if not pending:
        return []
    tables = {t: dataset_tables(conn, ds, t) for t in ds.order}
    reports: list[ErasureReport] = []
    touched: set[str] = set()
    for request_id, tokens in pending:
        removed: dict[str, int] = {}
        left = 0
        with conn.transaction():
            gone: dict[str, list[str]] = {ds.subject_table: list(tokens)}
            for table in ds.below(ds.subject_table):
                spec = ds.tables[table]
                if table == ds.subject_table:
                    refs = [(spec.source.key, gone[table])]
                else:
                    refs = [(c, gone[p]) for c, p in spec.foreign_keys.items() if gone.get(p)]
                # The subject's own tokens, and the key tokens of every row removed below.
                found: set[str] = set(gone.get(table, []))
                for target in tables[table]:
                    for column, values in refs:
                        n, keys, still = remove_rows(conn, target, column, values, spec.source.key)
                        removed[target] = removed.get(target, 0) + n
                        left += still
                        found.update(keys)
                        if n:
                            touched.add(target)
                gone[table] = sorted(found)
            require_none_left(request_id, left)
            suppressed = keep_k(conn, ds, removed)
            touched.update(suppressed)
            mark_applied(conn, request_id, removed)
        report = ErasureReport(int(request_id), ds.dataset, removed, left, sum(suppressed.values()))
        audit_applied(conn, report, suppressed)
        reports.append(report)
    for target in sorted(touched):
        conn.execute(sql.SQL("VACUUM (FULL) {}").format(sql.Identifier(*target.split(".", 1))))
    log.info("applied %d erasure request(s) for %s", len(reports), ds.dataset)
    return reports
