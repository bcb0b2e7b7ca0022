"""A linkage attack on a table about to be published.

The attacker holds an auxiliary table: the quasi-identifiers of some of the source's people,
as the source has them, and knows how the policy publishes them (a generalization is public
knowledge; a keyed operator's output is not). They map their records into the published form
and join: a record that matches exactly one published row is re-identified. The share of such
records is the linkage risk.

The join runs in PostgreSQL: the auxiliary records go into a temporary table with the
published columns' types, the published table is grouped by the same columns, and only three
counts come back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import psycopg
from psycopg import sql

from veilflow.zones.copy_io import read_frame, write_frame
from veilflow.zones.manifest import ColumnEntry
from veilflow.zones.run_tables import CANARY, ROW

_AUX = "vf_linkage_aux"


@dataclass(frozen=True)
class LinkageResult:
    """How the attacker's records matched the published table (counts only)."""

    columns: tuple[str, ...]
    #: Quasi-identifiers left out of the join: their published form needs a key.
    not_linkable: tuple[str, ...]
    auxiliary: int
    unique: int
    ambiguous: int
    unmatched: int
    #: Matched fewer than the risk's k published rows (unique ones included).
    small: int = 0

    @property
    def share(self) -> float:
        """Share of auxiliary records matched to exactly one published record."""
        return self.unique / self.auxiliary if self.auxiliary else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": list(self.columns),
            "not_linkable": list(self.not_linkable),
            "auxiliary": self.auxiliary,
            "unique": self.unique,
            "ambiguous": self.ambiguous,
            "unmatched": self.unmatched,
            "small": self.small,
            "share": round(self.share, 6),
        }


def linkable_columns(
    quasi_identifiers: Sequence[str], manifest_columns: Sequence[ColumnEntry]
) -> tuple[list[str], list[str]]:
    """The quasi-identifiers an attacker can put in published form (published, no key) and
    the ones they cannot."""
    entries = {c.name: c for c in manifest_columns}
    linkable: list[str] = []
    keyed: list[str] = []
    for q in quasi_identifiers:
        entry = entries.get(q)
        if entry is None or entry.dropped:
            continue
        (keyed if entry.key else linkable).append(q)
    return linkable, keyed


def auxiliary_sample(
    conn: psycopg.Connection,
    snapshot: sql.Composable,
    columns: Sequence[str],
    rows: int,
    sample: int,
) -> pd.DataFrame:
    """Every n-th real record of the run's snapshot (raw quasi-identifiers; canaries left
    out), at most ``sample`` of them (0 = all): the attacker's auxiliary table."""
    step = max(1, -(-rows // sample)) if sample else 1
    return read_frame(
        conn,
        sql.SQL(
            "SELECT {cols} FROM {snap} WHERE NOT {canary} AND {row} % {step} = 0 ORDER BY {row}"
        ).format(
            cols=sql.SQL(", ").join(sql.Identifier(c) for c in columns),
            snap=snapshot,
            canary=sql.Identifier(CANARY),
            row=sql.Identifier(ROW),
            step=sql.Literal(step),
        ),
        list(columns),
    )


def published_form(
    auxiliary: pd.DataFrame,
    columns: Sequence[str],
    transform: Callable[[str, pd.Series], pd.Series],
) -> pd.DataFrame:
    """The auxiliary records as the policy would publish them."""
    return pd.DataFrame({c: transform(c, auxiliary[c].reset_index(drop=True)) for c in columns})


def linkage_attack(
    conn: psycopg.Connection,
    published: sql.Composable,
    auxiliary: pd.DataFrame,
    columns: Sequence[str],
    *,
    not_linkable: Sequence[str] = (),
    small_below: int = 2,
    exclude_canaries: bool = False,
) -> LinkageResult:
    """Join ``auxiliary`` (already in published form) to ``published`` on ``columns``; NULL
    matches NULL, as an attacker comparing values would have it. Runs in the connection's
    transaction; its temporary table is gone when it ends."""
    if not columns or auxiliary.empty:
        return LinkageResult(tuple(columns), tuple(not_linkable), len(auxiliary), 0, 0, 0)
    cols = [sql.Identifier(c) for c in columns]
    joined = sql.SQL(", ").join(cols)
    where = (
        sql.SQL("WHERE {} IS NOT TRUE").format(sql.Identifier(CANARY))
        if exclude_canaries
        else sql.SQL("")
    )
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(_AUX)))
    conn.execute(
        sql.SQL("CREATE TEMPORARY TABLE {aux} AS SELECT {cols} FROM {pub} LIMIT 0").format(
            aux=sql.Identifier(_AUX), cols=joined, pub=published
        )
    )
    frame = auxiliary[list(columns)].copy()
    write_frame(conn, sql.Identifier(_AUX), frame)

    # A row constructor's text is one hashable key per record: NULL and '' stay apart.
    def record(alias: str) -> sql.Composable:
        return sql.SQL("ROW({})::text").format(
            sql.SQL(", ").join(sql.Identifier(alias, c) for c in columns)
        )

    row = conn.execute(
        sql.SQL(
            "WITH p AS (SELECT {rec_p} AS r, count(*) AS n FROM {pub} p {where} GROUP BY 1)"
            " SELECT count(*), count(*) FILTER (WHERE p.n = 1),"
            " count(*) FILTER (WHERE p.n > 1), count(*) FILTER (WHERE p.n IS NULL),"
            " count(*) FILTER (WHERE p.n < {small})"
            " FROM {aux} a LEFT JOIN p ON p.r = {rec_a}"
        ).format(
            rec_p=record("p"),
            rec_a=record("a"),
            pub=published,
            where=where,
            aux=sql.Identifier(_AUX),
            small=sql.Literal(small_below),
        )
    ).fetchone()
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(_AUX)))
    assert row is not None
    total, unique, ambiguous, unmatched, small = (int(x) for x in row)
    return LinkageResult(
        tuple(columns), tuple(not_linkable), total, unique, ambiguous, unmatched, small
    )
