"""A dataset's privacy budget (``governance.privacy_budgets``) and the ledger of what runs
spent from it (``governance.privacy_spend``): every statement on both tables.

Budgets compose sequentially: a run's releases spend the sum of their ε (and δ), and what
remains is the total less everything spent by every earlier run. Runs of one dataset spend
one at a time (a transaction-scoped advisory lock), so two runs cannot both pass the check
on the same remainder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from veilflow.errors import VeilflowError
from veilflow.policy.releases import ReleaseSpec

#: Tolerance on float sums of ε: 0.1 + 0.2 must fit in a budget of 0.3.
_SLACK = 1e-9


class BudgetExceeded(VeilflowError):
    """A run's releases would spend more than the dataset's remaining budget (or it has
    none): nothing was released."""

    exit_code = 10


@dataclass(frozen=True)
class Budget:
    dataset: str
    epsilon_total: float
    delta_total: float
    epsilon_spent: float
    delta_spent: float

    @property
    def epsilon_remaining(self) -> float:
        return max(0.0, self.epsilon_total - self.epsilon_spent)

    @property
    def delta_remaining(self) -> float:
        return max(0.0, self.delta_total - self.delta_spent)

    def to_dict(self) -> dict[str, float | str]:
        return {
            "dataset": self.dataset,
            "epsilon_total": self.epsilon_total,
            "delta_total": self.delta_total,
            "epsilon_spent": round(self.epsilon_spent, 12),
            "delta_spent": self.delta_spent,
            "epsilon_remaining": round(self.epsilon_remaining, 12),
            "delta_remaining": self.delta_remaining,
        }


def run_cost(releases: Sequence[ReleaseSpec]) -> tuple[float, float]:
    """ε and δ a run of these releases spends (sequential composition)."""
    return sum(r.epsilon for r in releases), sum(r.delta for r in releases)


def budget_of(conn: psycopg.Connection, dataset: str) -> Budget | None:
    """The dataset's budget and what has been spent from it; None when none is set."""
    row = conn.execute(
        "SELECT b.epsilon_total, b.delta_total, coalesce(sum(s.epsilon), 0),"
        " coalesce(sum(s.delta), 0) FROM governance.privacy_budgets b"
        " LEFT JOIN governance.privacy_spend s ON s.dataset = b.dataset"
        " WHERE b.dataset = %s GROUP BY b.dataset, b.epsilon_total, b.delta_total",
        (dataset,),
    ).fetchone()
    if row is None:
        return None
    return Budget(dataset, float(row[0]), float(row[1]), float(row[2]), float(row[3]))


def spent_by_run(conn: psycopg.Connection, run_id: str) -> list[tuple[str, str, float, float]]:
    """(release, table, ε, δ) a run already spent: a retried publish spends nothing twice."""
    rows = conn.execute(
        "SELECT release, table_name, epsilon, delta FROM governance.privacy_spend"
        " WHERE run_id = %s ORDER BY release",
        (run_id,),
    ).fetchall()
    return [(str(r[0]), str(r[1]), float(r[2]), float(r[3])) for r in rows]


def refusal(dataset: str, budget: Budget | None, epsilon: float, delta: float) -> str | None:
    """Why a run costing (ε, δ) may not spend from ``budget``; None when it may."""
    if budget is None:
        return (
            f"dataset {dataset!r} has no privacy budget; an admin sets one with "
            f"`veilflow budget set {dataset} --epsilon E`"
        )
    if epsilon > budget.epsilon_remaining + _SLACK:
        return (
            f"the releases of {dataset!r} would spend ε {epsilon:g}, more than the "
            f"{budget.epsilon_remaining:g} remaining of {budget.epsilon_total:g}"
        )
    if delta > budget.delta_remaining + _SLACK * 1e-6:
        return (
            f"the releases of {dataset!r} would spend δ {delta:g}, more than the "
            f"{budget.delta_remaining:g} remaining of {budget.delta_total:g}"
        )
    return None


def lock_budget(conn: psycopg.Connection, dataset: str) -> None:
    """Serialize spending on ``dataset`` until the transaction ends."""
    conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext('veilflow.privacy_budget'), hashtext(%s))",
        (dataset,),
    )


def record_spend(
    conn: psycopg.Connection,
    run_id: str,
    dataset: str,
    release: ReleaseSpec,
) -> None:
    conn.execute(
        "INSERT INTO governance.privacy_spend (run_id, release, dataset, table_name, statistic,"
        " epsilon, delta) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (
            run_id,
            release.name,
            dataset,
            release.table_for(dataset),
            release.statistic,
            release.epsilon,
            release.delta,
        ),
    )


def set_budget(conn: psycopg.Connection, dataset: str, epsilon: float, delta: float) -> Budget:
    """Set (or change) a dataset's total budget; an admin's act, audited. Lowering it below
    what was spent leaves nothing to spend; it never erases the ledger."""
    from veilflow.vault.audit import record

    if epsilon < 0 or not 0 <= delta < 1:
        raise VeilflowError("a budget needs epsilon >= 0 and 0 <= delta < 1")
    with conn.transaction():
        conn.execute(
            "INSERT INTO governance.privacy_budgets (dataset, epsilon_total, delta_total)"
            " VALUES (%s, %s, %s) ON CONFLICT (dataset) DO UPDATE SET"
            " epsilon_total = EXCLUDED.epsilon_total, delta_total = EXCLUDED.delta_total,"
            " set_by = session_user, set_at = now()",
            (dataset, epsilon, delta),
        )
    record(
        conn,
        "privacy_budget.set",
        target=dataset,
        details={"epsilon_total": epsilon, "delta_total": delta},
    )
    budget = budget_of(conn, dataset)
    assert budget is not None
    return budget


def ledger(conn: psycopg.Connection, dataset: str) -> list[dict[str, Any]]:
    """Every spend on the dataset, oldest first (names, ε, δ; never a value)."""
    rows = conn.execute(
        "SELECT run_id, release, table_name, statistic, epsilon, delta, spent_at"
        " FROM governance.privacy_spend WHERE dataset = %s ORDER BY spent_at, release",
        (dataset,),
    ).fetchall()
    keys = ("run_id", "release", "table", "statistic", "epsilon", "delta", "spent_at")
    return [dict(zip(keys, r, strict=True)) for r in rows]
