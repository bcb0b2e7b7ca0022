"""Erased subjects leave a dataset's run at extract, in every table (ADR 0022, ADR 0023).

A dataset's erasure request holds the tokens of the subject's key in the subject table,
under every readable version of the dataset's token key, never the key. Each table's
extract takes out of its snapshot the rows that belong to an erased subject before
anything counts them, as a single table's extract does (``pipeline/erased.py``):

- the subject table: the rows whose key has one of the request's tokens;
- a table that refers to it: the rows whose foreign key has one of those tokens (a
  foreign-key column is anonymized exactly as the key it refers to, so the same key has
  the same token in both);
- a table further down: the rows whose foreign key has the token of a parent row that
  belongs to an erased subject, that row found the same way in the parent's source.

So a subject's customer row and all their orders leave together: no orphan appears, and
every check counts the rows that will be published (each table's gate, k / l / t and
suppression, the foreign-key check). Every value is compared by its token; keys are read
in this process only, as extract reads the source anyway, and never written or logged.
Each table's manifest counts what it left out (``erased_left_out``), never who. It costs
one pass over a table's key or foreign-key columns per key version, for datasets with
requests only; publish still leaves the same tokens out of the versions it swaps in.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from veilflow.pipeline.erased import LeaveOut, token_hits
from veilflow.policy.dataset import DatasetPolicy
from veilflow.transform.keys import KeyProvider
from veilflow.transform.operators.tokenize import tokenize_array
from veilflow.validate.privacy import column_types, suppress_small_classes_returning
from veilflow.vault.erasure import ErasureReport, erased_tokens, key_config, token_versions
from veilflow.vault.erasure_dataset import apply_dataset, remove_rows
from veilflow.zones.copy_io import read_frame
from veilflow.zones.manifest import RunManifest
from veilflow.zones.run_tables import ROW, RunTables, drop_snapshot_rows, table_exists

log = logging.getLogger(__name__)


def rows_left_out(manifest: RunManifest) -> int:
    """Rows of erased subjects a table's run left out: at extract, and at publish (a
    request recorded while the run was under way)."""
    return (manifest.erased_left_out or 0) + (manifest.erased_rows_left_out or 0)


class _ErasedTokens:
    """The tokens of the rows that belong to an erased subject, per table of the dataset,
    worked out once per extract (parents first, each from its source)."""

    def __init__(
        self, conn: psycopg.Connection, ds: DatasetPolicy, keys: KeyProvider, tokens: list[str]
    ) -> None:
        self.conn, self.ds, self.keys = conn, ds, keys
        self.known: dict[str, list[str]] = {ds.subject_table: tokens}

    def references(self, table: str) -> list[tuple[str, str]]:
        """``(column, parent)`` of ``table``'s foreign keys to tables that hold erased rows."""
        reach = set(self.ds.below(self.ds.subject_table))
        return [(c, p) for c, p in self.ds.tables[table].foreign_keys.items() if p in reach]

    def hits(self, values: pd.Series, parent: str) -> np.ndarray:
        """Which ``values`` of a column anonymized as ``parent``'s key (the key itself, or
        a foreign key to it) have the token of one of ``parent``'s erased rows."""
        tokens = self.of(parent)
        if not tokens:
            return np.zeros(len(values), dtype=bool)
        policy = self.ds.table_policy(parent)
        return token_hits(self.conn, policy, values, self.keys, tokens)

    def of(self, table: str) -> list[str]:
        """The key tokens (under every readable version) of ``table``'s source rows that
        belong to an erased subject."""
        if table in self.known:
            return self.known[table]
        spec = self.ds.tables[table]
        refs = self.references(table)
        key = spec.source.key
        columns = [key, *[c for c, _ in refs]]
        frame = read_frame(
            self.conn,
            sql.SQL("SELECT {} FROM {}").format(
                sql.SQL(", ").join(sql.Identifier(c) for c in columns),
                sql.Identifier(spec.source.schema_name, spec.source.table_name),
            ),
            columns,
        )
        hit = np.zeros(len(frame), dtype=bool)
        for column, parent in refs:
            hit |= self.hits(frame[column], parent)
        policy = self.ds.table_policy(table)
        found: set[str] = set()
        if hit.any():
            config = key_config(policy)
            erased_keys = frame[key][hit]
            for version in token_versions(self.conn, policy):
                out, _ = tokenize_array(
                    erased_keys, self.keys.data_key(policy.scope, "token", version), config
                )
                found.update(str(t) for t in out.to_pylist() if t is not None)
        self.known[table] = sorted(found)
        return self.known[table]


def erased_rows(
    conn: psycopg.Connection, ds: DatasetPolicy, table: str, rt: RunTables, keys: KeyProvider
) -> list[int]:
    """Row numbers of ``table``'s snapshot that belong to a subject of an erasure request
    of the dataset: by the key's token in the subject table, by a foreign key's token in
    the tables below it."""
    tokens = erased_tokens(conn, ds.dataset)
    if not tokens or table not in ds.below(ds.subject_table):
        return []
    erased = _ErasedTokens(conn, ds, keys, tokens)
    if table == ds.subject_table:
        columns = [ds.tables[table].source.key]
        refs = [(columns[0], table)]
    else:
        refs = erased.references(table)
        columns = [c for c, _ in refs]
    frame = read_frame(
        conn,
        sql.SQL("SELECT {}, {} FROM {}").format(
            sql.Identifier(ROW),
            sql.SQL(", ").join(sql.Identifier(c) for c in columns),
            rt.snapshot,
        ),
        [ROW, *columns],
    )
    hit = np.zeros(len(frame), dtype=bool)
    for column, parent in refs:
        hit |= erased.hits(frame[column], parent)
    return [int(r) for r in frame[ROW].to_numpy()[hit]]


def leave_out_erased(ds: DatasetPolicy, table: str, keys: KeyProvider) -> LeaveOut:
    """The leave-out of erased subjects for the extract of one table of the dataset."""

    def leave_out(conn: psycopg.Connection, rt: RunTables, rows: int) -> tuple[int, int]:
        found = erased_rows(conn, ds, table, rt, keys)
        if not found:
            return rows, 0
        left = drop_snapshot_rows(conn, rt, found)
        log.info(
            "extract %s table %s: left out %d row(s) of erased subjects",
            ds.dataset,
            table,
            len(found),
        )
        return left, rows - left

    return leave_out


def keep_dataset_k(
    conn: psycopg.Connection, ds: DatasetPolicy, removed: dict[str, int]
) -> dict[str, int]:
    """Keep each published table's k after a request removed rows, parents first: delete the
    rows that refer to a row suppressed above (they would be orphans), then the rows of the
    classes now smaller than the table's k (its own quasi-identifiers; canaries aside). A
    class is measured only in a table that lost rows. Returns the rows suppressed, by
    published table."""
    suppressed: dict[str, int] = {}
    gone: dict[str, list[str]] = {}
    for table in ds.order:
        spec = ds.tables[table]
        published = spec.target.table
        if not table_exists(conn, *published.split(".", 1)):
            continue
        keys: list[str] = []
        for column, parent in spec.foreign_keys.items():
            if gone.get(parent):
                keys += remove_rows(conn, published, column, gone[parent], spec.source.key)[1]
        if removed.get(published) or keys:
            present = set(column_types(conn, published))
            qi = [q for q in spec.privacy.quasi_identifiers if q in present]
            keys += suppress_small_classes_returning(
                conn, published, qi, spec.privacy.k, spec.source.key
            )
        if keys:
            suppressed[published] = len(keys)
            gone[table] = keys
    return suppressed


def apply_dataset_erasures(conn: psycopg.Connection, ds: DatasetPolicy) -> list[ErasureReport]:
    """Apply the dataset's pending erasure requests, keeping every published table's k."""
    return apply_dataset(conn, ds, keep_dataset_k)
