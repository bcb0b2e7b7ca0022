"""The publish stage: swap the validated candidate into the anonymized zone as the new
version (or append it, for an incremental run), leaving erased subjects out; publish the DP
releases and the synthetic table the policy asks for; drop the run's staging."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from veilflow.errors import ValidationFailed, VeilflowError
from veilflow.lineage.events import ParentRun
from veilflow.pipeline.stage_context import StageContext
from veilflow.policy.model import Policy
from veilflow.vault.erasure import apply as apply_erasures
from veilflow.vault.erasure import erased_tokens
from veilflow.zones import runs
from veilflow.zones.db import connect
from veilflow.zones.publish import ROLE_NAMES, append_version, publish_version, published_rows
from veilflow.zones.run_tables import (
    RunTables,
    drop_run_tables,
    keep_published_sketches,
    table_exists,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublishResult:
    run_id: str
    table: str
    rows: int


def _readers(policy: Policy) -> list[str]:
    return [ROLE_NAMES[r] for r, zones in policy.access.items() if "anonymized" in zones]


def publish(policy: Policy, run_id: str, parent: ParentRun | None = None) -> PublishResult:
    """Swap the validated candidate into the anonymized zone; drop the run's staging."""
    rt = RunTables(policy.dataset, run_id)
    with connect() as conn:
        manifest = runs.load_manifest(conn, run_id)
        if manifest.up_to_date:
            return PublishResult(run_id, policy.target.table, 0)
        stage = StageContext(conn, policy, run_id, "publish", parent)
        stage.emit("START", manifest)
        if not manifest.passed_gate:
            raise ValidationFailed(f"run {run_id} has not passed the gate; nothing published")
        if not table_exists(conn, "staging", rt.candidate_name):
            done = published_rows(conn, run_id)
            if done is not None:  # already published by an earlier attempt of this task
                _apply_erasures(policy)
                return PublishResult(run_id, policy.target.table, done)
            raise VeilflowError(f"run {run_id} has no candidate to publish")
        appending = (manifest.incremental or {}).get("mode") == "append"
        if policy.releases and not appending:  # DP releases of the raw snapshot, paid for
            from veilflow.privacy.releases import publish_releases

            releases = publish_releases(conn, policy, run_id, rt.snapshot, _readers(policy), rt.tag)
            manifest = manifest.but(releases=releases)
        if policy.synthetic is not None and not appending:
            from veilflow.privacy.synthetic import publish_synthetic

            publish_synthetic(conn, policy, rt, _readers(policy))
        cols = [c.name for c in manifest.outputs]
        inc = manifest.incremental
        # Erased subjects never enter the new version (veilflow.vault.erasure).
        erased = erased_tokens(conn, policy.dataset)
        leave_out = (policy.source.key, erased) if erased else None
        if inc and inc["mode"] == "append":
            rows = append_version(
                conn,
                rt,
                policy.target.schema_name,
                policy.target.table_name,
                cols,
                after_run=inc["appends_to_run"],
                leave_out=leave_out,
            )
        else:
            rows = publish_version(
                conn,
                rt,
                policy.target.schema_name,
                policy.target.table_name,
                cols,
                _readers(policy),
                leave_out=leave_out,
            )
        manifest = manifest.but(erased_subjects_left_out=len(erased))
        if inc:
            from veilflow.zones.increment import record_cursor

            # In the transaction that publishes: the next run starts from what this one
            # published, or, should publishing fail, from what was published before.
            keep_published_sketches(conn, rt, fresh=inc["mode"] != "append")
            record_cursor(conn, policy.dataset, run_id, inc)
        manifest = manifest.but(rows_out=rows, published=policy.target.table, finished=time.time())
        runs.save_manifest(
            conn, run_id, manifest, status="published", rows_out=rows, finished_at=True
        )
        conn.commit()
        drop_run_tables(conn, rt)
        conn.commit()
        stage.emit("COMPLETE", manifest)
        stage.audit("ok", rows, status="published")
    log.info("published %s: %d rows (run %s)", policy.target.table, rows, run_id)
    _apply_erasures(policy)
    return PublishResult(run_id, policy.target.table, rows)


def _apply_erasures(policy: Policy) -> None:
    """Purge the quarantined candidates of the subjects whose erasure is pending, and mark
    the requests applied (the new version has left their rows out already)."""
    with connect(autocommit=True) as conn:
        for report in apply_erasures(conn, policy):
            log.info(
                "erasure request %d applied: %d row(s) removed, %d left",
                report.request,
                report.total,
                report.left,
            )
