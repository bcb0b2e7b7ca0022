"""Re-identification risk of a run, held to the policy's ``risk:`` thresholds and recorded
so its trend can be followed from run to run.

Two estimates beside k / l / t (which the gate measured from the merged class histograms):

- **prosecutor risk**: the share of the records to be published that sit in an equivalence
  class smaller than the risk's k (an attacker who knows a person is in the table picks them
  out with probability 1/size of their class). The same share before suppression is kept as
  the *source* risk: how far a growing table drifts toward re-identifiability.
- **linkage risk**: :mod:`veilflow.privacy.linkage`, the share of an attacker's auxiliary
  records (the source's quasi-identifiers) that match exactly one record to be published.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from veilflow.policy.model import Policy
from veilflow.privacy.history import RiskPoint, previous_risk, record_risk
from veilflow.privacy.linkage import (
    LinkageResult,
    auxiliary_sample,
    linkable_columns,
    linkage_attack,
    published_form,
)
from veilflow.validate.context import GateContext
from veilflow.validate.report import CheckResult, GateReport
from veilflow.zones.manifest import RunManifest
from veilflow.zones.run_tables import CANARY

log = logging.getLogger(__name__)


def share_below(class_sizes: dict[str, int] | dict[int, int], k: int) -> tuple[int, int]:
    """(rows in classes smaller than ``k``, all rows) from a class-size distribution."""
    at_risk = rows = 0
    for size, classes in class_sizes.items():
        n = int(size) * int(classes)
        rows += n
        if int(size) < k:
            at_risk += n
    return at_risk, rows


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def run_linkage(
    conn: psycopg.Connection, ctx: GateContext, manifest: RunManifest, risk_k: int
) -> LinkageResult | None:
    """The linkage attack on the run's candidate, with the snapshot as the source side."""
    present = {c.name for c in ctx.columns}
    qi = [q for q in ctx.policy.privacy.quasi_identifiers if q in present]
    if not qi or ctx.recompute is None:
        return None
    linkable, keyed = linkable_columns(qi, manifest.columns)
    if not linkable:
        return LinkageResult((), tuple(keyed), 0, 0, 0, 0)
    aux = auxiliary_sample(
        conn, ctx.tables.snapshot, linkable, ctx.rows_in, ctx.policy.risk.linkage_sample
    )
    target: sql.Composable = ctx.tables.candidate
    if ctx.appends_to is not None:
        # Appending: the attacker links the run's records against the whole published
        # table after the append, not the new rows alone (fewer rows look more unique).
        target = _union_view(conn, ctx, linkable)
    try:
        return linkage_attack(
            conn,
            target,
            published_form(aux, linkable, ctx.recompute),
            linkable,
            not_linkable=keyed,
            small_below=risk_k,
            exclude_canaries=True,
        )
    finally:
        if ctx.appends_to is not None:
            conn.execute(sql.SQL("DROP VIEW IF EXISTS {}").format(target))


def _union_view(conn: psycopg.Connection, ctx: GateContext, columns: list[str]) -> sql.Identifier:
    """A temporary view of ``columns`` over the candidate and the published table it
    appends to (the published rows are no canaries)."""
    assert ctx.appends_to is not None
    view = sql.Identifier("vf_linkage_union")
    listed = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    schema, name = ctx.appends_to.split(".")
    conn.execute(
        sql.SQL(
            "CREATE OR REPLACE TEMPORARY VIEW {v} AS SELECT {cols}, {canary} FROM {cand}"
            " UNION ALL SELECT {cols}, false FROM {pub}"
        ).format(
            v=view,
            cols=listed,
            canary=sql.Identifier(CANARY),
            cand=ctx.tables.candidate,
            pub=sql.Identifier(schema, name),
        )
    )
    return view


def _added(policy: Policy, linkage: LinkageResult | None) -> int:
    """How many checks the policy's risk thresholds add."""
    return int(policy.risk.max_prosecutor_risk is not None) + int(
        policy.risk.max_linkage_risk is not None and linkage is not None
    )


def _check(
    name: str,
    value: float,
    threshold: float,
    previous: float | None,
    previous_run: str | None,
    details: dict[str, Any],
) -> CheckResult:
    passed = value <= threshold
    reason = (
        f"{name.replace('_', ' ')} {value:.2%} "
        + ("within" if passed else "above")
        + f" the policy's {threshold:.2%}"
    )
    if previous is not None:
        reason += f" (previous run {previous_run}: {previous:.2%})"
    return CheckResult(
        name,
        passed,
        observed=round(value, 6),
        threshold=threshold,
        details={**details, "previous": previous, "previous_run": previous_run, "reason": reason},
    )


def watch_risk(
    conn: psycopg.Connection,
    ctx: GateContext,
    manifest: RunManifest,
    report: GateReport,
    run_id: str,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any] | None:
    """Estimate the run's risk, add the policy's risk checks to ``report`` and record the
    figures in the risk history. Returns them for the manifest (None without
    quasi-identifiers, or when the gate measured no risk)."""
    t0 = time.perf_counter()
    policy = ctx.policy
    record = report.metrics.get("risk")
    if not record or "after" not in record:
        return None
    risk_k = policy.risk.k or policy.privacy.k
    after, before = record["after"], record["before"]
    at_risk, rows = share_below(after.get("class_sizes", {}), risk_k)
    src_at_risk, src_rows = share_below(before.get("class_sizes", {}), risk_k)
    prosecutor = _share(at_risk, rows)
    source = _share(src_at_risk, src_rows)
    linkage = run_linkage(conn, ctx, manifest, risk_k)
    previous = previous_risk(conn, policy.dataset, run_id)
    prev_id = previous.run_id if previous else None
    if policy.risk.max_prosecutor_risk is not None:
        report.checks.append(
            _check(
                "prosecutor_risk",
                prosecutor,
                policy.risk.max_prosecutor_risk,
                previous.prosecutor_risk if previous else None,
                prev_id,
                {"k": risk_k, "rows_at_risk": at_risk, "rows": rows},
            )
        )
    if policy.risk.max_linkage_risk is not None and linkage is not None:
        report.checks.append(
            _check(
                "linkage_risk",
                linkage.share,
                policy.risk.max_linkage_risk,
                previous.linkage_risk if previous else None,
                prev_id,
                linkage.to_dict(),
            )
        )
    added = report.checks[len(report.checks) - _added(policy, linkage) :]
    if progress is not None and added:
        failed = sum(not c.passed for c in added)
        progress(f"gate: risk over time: {len(added)} check(s), {failed} failed")
    figures: dict[str, Any] = {
        "k": after.get("k"),
        "l": after.get("l"),
        "t": after.get("t"),
        "risk_k": risk_k,
        "rows": rows,
        "prosecutor_risk": round(prosecutor, 6),
        "source_risk": round(source, 6),
        "linkage": None if linkage is None else linkage.to_dict(),
        "previous_run": prev_id,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    record_risk(
        conn,
        policy.dataset,
        RiskPoint(
            run_id=run_id,
            measured_at=datetime.now(UTC),
            rows=rows,
            k=after.get("k"),
            l=after.get("l"),
            t=after.get("t"),
            prosecutor_risk=prosecutor,
            source_risk=source,
            linkage_risk=None if linkage is None else linkage.share,
            passed=report.passed,
            details={
                "risk_k": risk_k,
                "linkage": figures["linkage"],
                "thresholds": {
                    name: limit
                    for name, limit in (
                        ("prosecutor_risk", policy.risk.max_prosecutor_risk),
                        ("linkage_risk", policy.risk.max_linkage_risk),
                    )
                    if limit is not None
                },
            },
        ),
    )
    log.info(
        "risk of %s run %s: prosecutor %.4f (source %.4f) at k=%d, linkage %s",
        policy.dataset,
        run_id,
        prosecutor,
        source,
        risk_k,
        "n/a" if linkage is None else f"{linkage.share:.4f}",
    )
    return figures
