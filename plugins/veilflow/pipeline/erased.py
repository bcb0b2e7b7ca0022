"""Erased subjects leave a run at extract, before anything counts them (ADR 0022).

An erasure request holds the subject's tokens under every readable version of the
dataset's token key, never the key. Extract tokenizes the snapshot's key column under the
same versions and takes out the rows whose token is one of them, then numbers the rest
again. So every later step sees the rows that will be published: the chunks' checks, the
row-count parity, k / l / t and suppression, the DP releases and the synthetic table. What
a run left out is counted in its manifest, never named.

It costs one pass over the key column per readable key version, and only for a dataset
with erasure requests; publish still leaves the same tokens out of the version it swaps in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql

from veilflow.policy.model import Policy
from veilflow.transform.keys import KeyProvider
from veilflow.transform.operators.tokenize import tokenize_array
from veilflow.validate.privacy import column_types, suppress_small_classes
from veilflow.vault.erasure import (
    ErasureReport,
    apply,
    erased_tokens,
    key_config,
    token_versions,
)
from veilflow.zones.copy_io import read_frame
from veilflow.zones.run_tables import ROW, RunTables, drop_snapshot_rows

log = logging.getLogger(__name__)

#: How a run's extract takes erased subjects out of its snapshot of ``rows`` rows, when
#: not by the table's own key (a dataset's tables: ``pipeline/erased_dataset.py``):
#: returns (rows left, rows left out).
LeaveOut = Callable[[psycopg.Connection, RunTables, int], tuple[int, int]]


def token_hits(
    conn: psycopg.Connection,
    policy: Policy,
    values: pd.Series,
    keys: KeyProvider,
    tokens: list[str],
) -> np.ndarray:
    """Which of ``values`` (a key column, or a foreign-key column anonymized as that key)
    have one of ``tokens`` as their token under any readable version of ``policy``'s token
    key, with its key column's configuration."""
    config = key_config(policy)
    wanted = pa.array(tokens, type=pa.large_string())
    hit = np.zeros(len(values), dtype=bool)
    for version in token_versions(conn, policy):
        out, _ = tokenize_array(values, keys.data_key(policy.scope, "token", version), config)
        hit |= np.asarray(pc.is_in(out, value_set=wanted).fill_null(False), dtype=bool)
    return hit


def erased_rows(
    conn: psycopg.Connection, policy: Policy, rt: RunTables, keys: KeyProvider
) -> list[int]:
    """Row numbers of the snapshot whose key's token is in an erasure request of the
    dataset, under any readable version of its token key."""
    tokens = erased_tokens(conn, policy.dataset)
    if not tokens:
        return []
    key = policy.source.key
    frame = read_frame(
        conn,
        sql.SQL("SELECT {row}, {key} FROM {snap}").format(
            row=sql.Identifier(ROW), key=sql.Identifier(key), snap=rt.snapshot
        ),
        [ROW, key],
    )
    hit = token_hits(conn, policy, frame[key], keys, tokens)
    return [int(r) for r in frame[ROW].to_numpy()[hit]]


def leave_out_erased(
    conn: psycopg.Connection, policy: Policy, rt: RunTables, keys: KeyProvider, rows: int
) -> tuple[int, int]:
    """Take the erased subjects' rows out of the run's snapshot of ``rows`` rows. Returns
    (rows left, rows left out)."""
    found = erased_rows(conn, policy, rt, keys)
    if not found:
        return rows, 0
    left = drop_snapshot_rows(conn, rt, found)
    log.info("extract %s: left out %d row(s) of erased subjects", policy.dataset, len(found))
    return left, rows - left


def keep_k(conn: psycopg.Connection, policy: Policy) -> int:
    """Suppress the published table's rows in classes smaller than the policy's k, as the
    gate would have: an erased subject's class may have fallen below it. Returns the rows
    suppressed."""
    p = policy.privacy
    table = policy.target.table
    present = set(column_types(conn, table))
    qi = [q for q in p.quasi_identifiers if q in present]
    return suppress_small_classes(conn, table, qi, p.k) if qi and p.k > 1 else 0


def apply_erasures(conn: psycopg.Connection, policy: Policy) -> list[ErasureReport]:
    """Apply the dataset's pending erasure requests, keeping the published table's k."""
    return apply(conn, policy, keep_k)
