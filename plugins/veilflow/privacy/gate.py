"""What the privacy package adds to the gate, in one call from the validate stage: the risk
watch (its thresholds are gate checks), then, on a candidate that passed, the utility report
and the synthetic table (its own checks join the gate's); last, the risk history records
the gate's final verdict.

An appending run (ADR 0017) sees only its new rows, so it makes no utility report and no
synthetic table (nor, at publish, DP releases): those describe the whole table, are made by
full runs, and the last ones stay as they are; the manifest's ``full_runs_only`` names
what the policy declares and this run left to them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from veilflow.policy.model import Policy
from veilflow.privacy.history import settle_risk
from veilflow.privacy.risk import watch_risk
from veilflow.validate.context import GateContext
from veilflow.validate.report import GateReport
from veilflow.zones.manifest import RunManifest


def after_gate(
    conn: psycopg.Connection,
    ctx: GateContext,
    manifest: RunManifest,
    report: GateReport,
    run_id: str,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The manifest's ``risk``, ``utility`` and ``synthetic`` entries (those that apply)."""
    policy = ctx.policy
    out: dict[str, Any] = {"risk": watch_risk(conn, ctx, manifest, report, run_id, progress)}
    if ctx.appends_to is not None:
        left = full_runs_only(policy)
        if left:
            out["full_runs_only"] = left
        if out["risk"] is not None:
            settle_risk(conn, run_id, report.passed)
        return out
    if policy.utility is not None and report.passed:
        from veilflow.privacy.utility import utility_report

        out["utility"] = utility_report(conn, ctx, policy.utility)
    if policy.synthetic is not None and report.passed:  # fitted on a passed candidate only
        from veilflow.privacy.synthetic import synthesize

        before = len(report.checks)
        out["synthetic"] = synthesize(conn, ctx, report)
        if progress is not None:
            added = report.checks[before:]
            failed = sum(not c.passed for c in added)
            progress(f"gate: synthetic table: {len(added)} check(s), {failed} failed")
    if out["risk"] is not None:
        settle_risk(conn, run_id, report.passed)
    return out


def full_runs_only(policy: Policy) -> list[str]:
    """What the policy declares that only a full run makes: the DP releases, the synthetic
    table and the utility report."""
    return [
        name
        for name, declared in (
            ("releases", bool(policy.releases)),
            ("synthetic", policy.synthetic is not None),
            ("utility", policy.utility is not None),
        )
        if declared
    ]
