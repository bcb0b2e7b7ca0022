"""The validate stage: the gate on the whole candidate (the per-chunk summaries merged, then
the checks that need the table), the privacy package's watch, and the verdict. A refused
candidate is quarantined and the run ends with ``ValidationFailed``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pandas as pd

from veilflow.config import settings
from veilflow.errors import ValidationFailed
from veilflow.lineage.events import ParentRun
from veilflow.pipeline.keys import pin_run_keys
from veilflow.pipeline.plan import Plan, plan_policy
from veilflow.pipeline.stage_context import StageContext
from veilflow.policy.model import Policy
from veilflow.transform.base import ChunkContext
from veilflow.transform.keys import KeyProvider
from veilflow.validate.context import GateColumn, GateContext
from veilflow.validate.gate import run_gate
from veilflow.validate.report import GateReport
from veilflow.zones import runs
from veilflow.zones.db import connect
from veilflow.zones.manifest import GateSummary, RunManifest
from veilflow.zones.run_tables import RunTables


def recompute_with(plan: Plan) -> Callable[[str, pd.Series], pd.Series]:
    """For the gate's re-derivation check: apply a column's operator again to raw values."""
    ops = {c.name: c.operator for c in plan.kept if c.operator is not None}
    key = plan.policy.source.key

    def recompute(column: str, values: pd.Series) -> pd.Series:
        frame = pd.DataFrame({key: values})
        return ops[column].apply(values, ChunkContext(frame=frame, key_column=key))

    return recompute


def gate_context(policy: Policy, run_id: str, manifest: RunManifest) -> GateContext:
    cols = [
        GateColumn(
            name=c.name,
            action=c.action,
            hides_raw=c.hides_raw,
            source_type=c.source_type or "text",
            output_type=c.output_type or "text",
            not_null=c.not_null,
        )
        for c in manifest.outputs
    ]
    report_dir = (
        settings().home / "reports" / policy.dataset / RunTables(policy.dataset, run_id).tag
    )
    inc = manifest.incremental or {}
    return GateContext(
        policy=policy,
        tables=RunTables(policy.dataset, run_id),
        columns=cols,
        rows_in=manifest.rows_in or 0,
        report_dir=report_dir,
        canaries=manifest.canaries or 0,
        chunks=manifest.chunks or 0,
        appends_to=policy.target.table if inc.get("mode") == "append" else None,
        keeps_published=bool(inc),
    )


def validate(
    policy: Policy,
    run_id: str,
    parent: ParentRun | None = None,
    keys: KeyProvider | None = None,
    progress: Callable[[str], None] | None = None,
) -> GateReport:
    """Run the gate on the candidate. On failure: quarantine, record, ``ValidationFailed``.
    ``keys`` (default: the vault) lets the gate re-derive a sample of tokens; ``progress``
    hears of each group of checks as it ends."""
    if keys is None:
        from veilflow.pipeline.keys import default_key_provider

        keys = default_key_provider()
    with connect() as conn:
        manifest = runs.load_manifest(conn, run_id)
        if manifest.up_to_date:
            return GateReport()
        pin_run_keys(keys, manifest)
        stage = StageContext(conn, policy, run_id, "validate", parent)
        stage.emit("START", manifest)
        done, _, counters = runs.chunk_counters(conn, run_id)
        manifest = manifest.but(counters=counters)
        ctx = replace(
            gate_context(policy, run_id, manifest),
            recompute=recompute_with(plan_policy(policy, keys)),
        )
        if done != manifest.chunks:
            from veilflow.validate.report import CheckResult

            report = GateReport(
                checks=[
                    CheckResult("chunks_complete", False, observed=done, threshold=manifest.chunks)
                ]
            )
        else:
            report = run_gate(conn, ctx, progress)
            from veilflow.privacy.gate import after_gate

            manifest = manifest.but(**after_gate(conn, ctx, manifest, report, run_id, progress))
        conn.commit()
        manifest = manifest.but(gate=GateSummary.model_validate(report.to_dict()))
        runs.save_manifest(conn, run_id, manifest)
        conn.commit()
        refused = "gate refused the candidate"
        stage.emit(
            "COMPLETE" if report.passed else "FAIL",
            manifest,
            error=None if report.passed else refused,
        )
        if not report.passed:
            reasons = report.reasons()
            table, manifest = stage.quarantine(
                manifest,
                reasons,
                status="quarantined",
                error=refused,
                event_type="COMPLETE",
                audit={"failed_checks": sorted({r["check"] for r in reasons})},
            )
            names = ", ".join(
                sorted({r["check"] + (f"[{r['column']}]" if r["column"] else "") for r in reasons})
            )
            raise ValidationFailed(
                f"{policy.dataset} run {run_id}: the gate refused the candidate ({names}); "
                f"quarantined as {table}, the published version is untouched",
                reasons,
            )
    return report
