"""``governance.risk_history``: every statement on it. One row per gated run of a dataset."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg


@dataclass(frozen=True)
class RiskPoint:
    """One run's risk figures (shares are 0..1)."""

    run_id: str
    measured_at: datetime
    rows: int
    k: int | None
    l: int | None  # noqa: E741 - the name used in the literature
    t: float | None
    prosecutor_risk: float
    source_risk: float
    linkage_risk: float | None
    passed: bool
    details: dict[str, Any]


_FIELDS = (
    "run_id, measured_at, rows, k, l, t, prosecutor_risk, source_risk, linkage_risk,"
    " passed, details"
)


def record_risk(conn: psycopg.Connection, dataset: str, point: RiskPoint) -> None:
    """Insert (or, for a re-run gate of the same run, replace) a run's figures."""
    conn.execute(
        "INSERT INTO governance.risk_history (run_id, dataset, rows, k, l, t, prosecutor_risk,"
        " source_risk, linkage_risk, passed, details)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (run_id) DO UPDATE SET measured_at = now(), rows = EXCLUDED.rows,"
        " k = EXCLUDED.k, l = EXCLUDED.l, t = EXCLUDED.t,"
        " prosecutor_risk = EXCLUDED.prosecutor_risk, source_risk = EXCLUDED.source_risk,"
        " linkage_risk = EXCLUDED.linkage_risk, passed = EXCLUDED.passed,"
        " details = EXCLUDED.details",
        (
            point.run_id,
            dataset,
            point.rows,
            point.k,
            point.l,
            point.t,
            point.prosecutor_risk,
            point.source_risk,
            point.linkage_risk,
            point.passed,
            json.dumps(point.details),
        ),
    )


def _point(row: tuple[Any, ...]) -> RiskPoint:
    run_id, at, rows, k, l, t, prosecutor, source, linkage, passed, details = row  # noqa: E741
    return RiskPoint(
        run_id, at, rows, k, l, t, prosecutor, source, linkage, passed, dict(details or {})
    )


def risk_history(conn: psycopg.Connection, dataset: str, limit: int = 100) -> list[RiskPoint]:
    """The dataset's last ``limit`` runs, oldest first."""
    rows = conn.execute(
        f"SELECT {_FIELDS} FROM (SELECT * FROM governance.risk_history WHERE dataset = %s"
        " ORDER BY measured_at DESC LIMIT %s) h ORDER BY measured_at",
        (dataset, limit),
    ).fetchall()
    return [_point(r) for r in rows]


def previous_risk(conn: psycopg.Connection, dataset: str, run_id: str) -> RiskPoint | None:
    """The latest figures of another run of the dataset."""
    row = conn.execute(
        f"SELECT {_FIELDS} FROM governance.risk_history WHERE dataset = %s AND run_id <> %s"
        " ORDER BY measured_at DESC LIMIT 1",
        (dataset, run_id),
    ).fetchone()
    return None if row is None else _point(row)


def settle_risk(conn: psycopg.Connection, run_id: str, passed: bool) -> None:
    """Record the gate's final verdict on a run whose figures are recorded (checks added
    after the risk watch, a synthetic table's, can still refuse it)."""
    conn.execute(
        "UPDATE governance.risk_history SET passed = %s WHERE run_id = %s", (passed, run_id)
    )
