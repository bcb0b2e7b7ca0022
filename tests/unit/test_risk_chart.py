"""The risk-over-time chart: one path per estimate, a point per run, thresholds, escaping."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from veilflow.privacy.history import RiskPoint
from veilflow.ui.risk_chart import risk_chart


def point(i: int, prosecutor: float, *, passed: bool = True, run: str = "") -> RiskPoint:
    return RiskPoint(
        run_id=run or f"r{i}",
        measured_at=datetime(2026, 12, 1, tzinfo=UTC) + timedelta(days=i),
        rows=1000 + i,
        k=5,
        l=2,
        t=0.1,
        prosecutor_risk=prosecutor,
        source_risk=prosecutor + 0.01,
        linkage_risk=None if i == 0 else 0.001,
        passed=passed,
        details={},
    )


def test_a_path_per_estimate_a_point_per_run_and_the_threshold() -> None:
    svg = str(
        risk_chart(
            [point(0, 0.01), point(1, 0.03), point(2, 0.2, passed=False)], {"prosecutor_risk": 0.1}
        )
    )
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert len(re.findall(r'<path class="series ', svg)) == 3
    assert svg.count("<circle ") == 3 and svg.count('class="run refused"') == 1
    assert "policy threshold on prosecutor: 10.00%" in svg
    # The highest point sits highest (smallest y) and the y axis tops out above it.
    ys = [float(y) for y in re.findall(r'<circle cx="[^"]+" cy="([^"]+)"', svg)]
    assert ys[2] < ys[1] < ys[0]


def test_run_ids_are_escaped_and_no_history_draws_nothing() -> None:
    svg = str(risk_chart([point(0, 0.01, run="<script>x</script>")]))
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "<svg" not in str(risk_chart([]))
