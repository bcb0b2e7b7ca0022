"""The dataset gate's foreign-key check: every foreign-key token of a child table's candidate
is among the key tokens of its parent's candidate (ADR 0023).

A child row whose foreign key finds no parent row is an orphan. Orphans are counted in the
source snapshots and in the candidates, canary rows left out of both. An orphan of the source
stays an orphan (anonymization cannot give it a parent), so it is reported, not refused; an
orphan the candidates have beyond the source's was made by anonymization (a parent row
suppressed for k-anonymity, a key tokenized unlike its foreign key) and fails the gate: the
published tables would no longer join as the sources do. Counts only, never a value.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import psycopg
from psycopg import sql

from veilflow.validate.report import CheckResult
from veilflow.zones.run_tables import CANARY

CHECK = "foreign_key_orphans"


@dataclass(frozen=True)
class ForeignKeyCount:
    """One foreign key ``child.column -> parent.key``, counted in the source and the
    candidate."""

    child: str
    column: str
    parent: str
    key: str
    #: Child rows of the candidate whose foreign key is not NULL.
    rows: int
    source_orphans: int
    orphans: int

    @property
    def new_orphans(self) -> int:
        return max(0, self.orphans - self.source_orphans)

    @property
    def passed(self) -> bool:
        return self.orphans <= self.source_orphans

    def check(self) -> CheckResult:
        return CheckResult(
            CHECK,
            self.passed,
            observed=self.new_orphans,
            threshold=0,
            column=self.column,
            details={
                "references": f"{self.parent}.{self.key}",
                "rows": self.rows,
                "source_orphans": self.source_orphans,
                "orphans": self.orphans,
            },
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "new_orphans": self.new_orphans, "passed": self.passed}

    def describe(self) -> str:
        return (
            f"{self.child}.{self.column} -> {self.parent}.{self.key}: {self.orphans} orphan "
            f"row(s) of {self.rows} ({self.source_orphans} in the source, "
            f"{self.new_orphans} new)"
        )


def orphans_query(
    child: sql.Identifier, column: str, parent: sql.Identifier, key: str
) -> sql.Composed:
    """``(rows, orphans)`` of ``child`` as one statement (see ``count_orphans``)."""
    fk, pk, canary = sql.Identifier(column), sql.Identifier(key), sql.Identifier(CANARY)
    # A join, not NOT EXISTS in the aggregate's FILTER: a subquery there runs once per child
    # row (quadratic: hours for 200,000 orders of 100,000 customers); joined, the parent's
    # keys are hashed once.
    return sql.SQL(
        "SELECT count(*), count(*) FILTER (WHERE p.k IS NULL)"
        " FROM {child} c LEFT JOIN (SELECT DISTINCT {pk} AS k FROM {parent}"
        " WHERE NOT {canary}) p ON p.k = c.{fk}"
        " WHERE c.{fk} IS NOT NULL AND NOT c.{canary}"
    ).format(parent=parent, child=child, pk=pk, fk=fk, canary=canary)


def count_orphans(
    conn: psycopg.Connection,
    child: sql.Identifier,
    column: str,
    parent: sql.Identifier,
    key: str,
) -> tuple[int, int]:
    """``(rows, orphans)`` of ``child``: its rows with a foreign key, and those of them whose
    ``column`` matches no ``key`` of ``parent``. Canary rows of either table count for
    nothing."""
    row = conn.execute(orphans_query(child, column, parent, key)).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)
