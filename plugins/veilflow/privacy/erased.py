"""Erased data subjects stay out of what the privacy package computes from a run: the DP
releases' cells, the synthetic table's fit, the utility report's training. The published
table leaves them out at publish (``veilflow.vault.erasure``); these read the run's snapshot
and candidate, where an erased subject may still be."""

from __future__ import annotations

import psycopg
from psycopg import sql

from veilflow.policy.model import Policy
from veilflow.vault.erasure import erased_tokens
from veilflow.zones.run_tables import ROW, RunTables


def not_erased(conn: psycopg.Connection, policy: Policy, rt: RunTables) -> sql.Composable:
    """A condition on a run table's row number: the row is no erased subject's (the
    candidate's key column holds the tokens an erasure request names)."""
    tokens = erased_tokens(conn, policy.dataset)
    if not tokens:
        return sql.SQL("true")
    return sql.SQL(
        "{row} NOT IN (SELECT e.{row} FROM {cand} e WHERE e.{key} = ANY({tokens}))"
    ).format(
        row=sql.Identifier(ROW),
        cand=rt.candidate,
        key=sql.Identifier(policy.source.key),
        tokens=sql.Literal(tokens),
    )
