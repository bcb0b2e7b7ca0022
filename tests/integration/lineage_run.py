"""A run with lineage emitted around every stage, the way the stage functions emit it: START
before, COMPLETE after (FAIL with the error), each on an idle connection after the stage
committed. Shared by the lineage integration tests and ``benchmarks/lineage_overhead.py``."""

from __future__ import annotations

from typing import Any

from veilflow.errors import ValidationFailed, VeilflowError
from veilflow.lineage.emitter import ParentRun, emit_stage
from veilflow.pipeline.keys import default_key_provider
from veilflow.pipeline.manifest import chunk_counters, load_manifest
from veilflow.pipeline.stages import (
    extract,
    fail_run,
    publish,
    transform_chunk,
    validate,
)
from veilflow.policy.model import Policy
from veilflow.zones.db import connect


def _manifest(run_id: str) -> dict[str, Any]:
    with connect() as conn:
        try:
            manifest = load_manifest(conn, run_id)
        except VeilflowError:
            return {}
        manifest["counters"] = chunk_counters(conn, run_id)[2]
        return manifest


def emit(policy: Policy, run_id: str, stage: str, event_type: str,
         parent: ParentRun | None = None, error: str | None = None) -> None:
    manifest = _manifest(run_id)
    with connect() as conn:
        emit_stage(conn, stage=stage, event_type=event_type, policy=policy, run_id=run_id,
                   manifest=manifest, parent=parent, error=error)
        conn.commit()


def run_with_lineage(policy: Policy, run_id: str, parent: ParentRun | None = None) -> str:
    """extract → transform → validate → publish with lineage; returns the final status."""
    keys = default_key_provider()
    stage = "extract"
    try:
        emit(policy, run_id, "extract", "START", parent)
        ex = extract(policy, run_id, keys)
        emit(policy, run_id, "extract", "COMPLETE", parent)
        stage = "transform"
        emit(policy, run_id, "transform", "START", parent)
        for chunk in ex.chunks:
            transform_chunk(policy, run_id, chunk, keys)
        emit(policy, run_id, "transform", "COMPLETE", parent)
        stage = "validate"
        emit(policy, run_id, "validate", "START", parent)
        try:
            validate(policy, run_id)
        except ValidationFailed as exc:
            emit(policy, run_id, "validate", "FAIL", parent, error=str(exc))
            emit(policy, run_id, "quarantine", "COMPLETE", parent)
            return "quarantined"
        emit(policy, run_id, "validate", "COMPLETE", parent)
        stage = "publish"
        emit(policy, run_id, "publish", "START", parent)
        publish(policy, run_id)
        emit(policy, run_id, "publish", "COMPLETE", parent)
    except VeilflowError as exc:
        fail_run(policy, run_id, str(exc))
        emit(policy, run_id, stage, "FAIL", parent, error=str(exc))
        raise
    return "published"
