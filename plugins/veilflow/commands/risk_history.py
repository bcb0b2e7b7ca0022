"""``veilflow risk history DATASET``: a dataset's re-identification risk from run to run."""

from __future__ import annotations

import json
from typing import Literal

import typer

from veilflow.errors import VeilflowError


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def print_history(dataset: str, fmt: Literal["text", "json"] = "text") -> None:
    """One line per gated run, oldest first, with the change of the prosecutor risk."""
    from veilflow.privacy.history import risk_history
    from veilflow.zones.db import connect

    with connect() as conn:
        points = risk_history(conn, dataset)
    if not points:
        raise VeilflowError(f"no risk recorded for dataset {dataset!r}; run its policy first")
    if fmt == "json":
        typer.echo(
            json.dumps(
                [
                    {
                        "run_id": p.run_id,
                        "measured_at": p.measured_at.isoformat(),
                        "rows": p.rows,
                        "k": p.k,
                        "l": p.l,
                        "t": p.t,
                        "prosecutor_risk": p.prosecutor_risk,
                        "source_risk": p.source_risk,
                        "linkage_risk": p.linkage_risk,
                        "passed": p.passed,
                        **p.details,
                    }
                    for p in points
                ],
                indent=2,
            )
        )
        return
    risk_k = points[-1].details.get("risk_k")
    typer.echo(
        f"risk history of {dataset}: {len(points)} run(s); prosecutor = share of records in "
        f"classes smaller than k={risk_k}, source = the same before suppression, linkage = "
        "share of auxiliary records matching exactly one published record"
    )
    typer.echo(
        f"{'measured (UTC)':<20} {'rows':>10} {'k':>4} {'l':>4} {'t':>7} {'prosecutor':>11}"
        f" {'change':>8} {'source':>8} {'linkage':>8}  gate    run"
    )
    before: float | None = None
    for p in points:
        change = "" if before is None else f"{(p.prosecutor_risk - before) * 100:+.2f}pp"
        before = p.prosecutor_risk
        t = "" if p.t is None else f"{p.t:.4f}"
        typer.echo(
            f"{p.measured_at:%Y-%m-%d %H:%M:%S}  {p.rows:>10,} {p.k or 0:>4} {p.l or '':>4}"
            f" {t:>7} {_pct(p.prosecutor_risk):>11} {change:>8} {_pct(p.source_risk):>8}"
            f" {_pct(p.linkage_risk):>8}  {'passed' if p.passed else 'REFUSED':<7} {p.run_id}"
        )
