"""What Airflow's OpenLineage provider sees of a veilflow task: the same datasets, column
lineage and veilflow facet the governance store keeps, returned from the operator's
``get_openlineage_facets_on_complete`` (or ``…_on_failure``).

The provider's types are imported lazily, so this module imports without the provider; an
equivalent ``OperatorLineage`` stands in when it is absent.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from veilflow.lineage.events import ParentRun, build_stage_event
from veilflow.lineage.naming import Naming
from veilflow.policy.model import Policy
from veilflow.zones.manifest import RunManifest

log = logging.getLogger(__name__)

#: Operator stages → lineage stages (``cleanup`` quarantines a failed run's candidate).
STAGE_OF_TASK = {
    "extract": "extract",
    "transform": "transform",
    "validate": "validate",
    "publish": "publish",
    "cleanup": "quarantine",
    "quarantine": "quarantine",
}
#: Run facets the provider sets itself for the task (its own parent and engine).
PROVIDER_OWNED = ("parent", "processing_engine")


@dataclass
class LineageResult:
    """Stand-in for the provider's ``OperatorLineage`` when the provider is not installed."""

    inputs: list[Any] = field(default_factory=list)
    outputs: list[Any] = field(default_factory=list)
    run_facets: dict[str, Any] = field(default_factory=dict)
    job_facets: dict[str, Any] = field(default_factory=dict)


def _operator_lineage(**kw: Any) -> Any:
    try:
        from airflow.providers.openlineage.extractors import OperatorLineage
    except ImportError:
        return LineageResult(**kw)
    return OperatorLineage(**kw)


def parent_from_context(context: Any) -> ParentRun:
    """The DAG run as OpenLineage's Airflow provider names it (namespace, DAG id and the
    provider's deterministic DAG-run UUID), so veilflow's stage events hang under the same
    parent the provider's task events do."""
    ti = context["ti"] if "ti" in context else context["task_instance"]
    try:
        from airflow.providers.openlineage.plugins.macros import (
            lineage_root_job_name,
            lineage_root_job_namespace,
            lineage_root_run_id,
        )

        return ParentRun(
            lineage_root_job_namespace(ti), lineage_root_job_name(ti), lineage_root_run_id(ti)
        )
    except Exception as exc:  # no provider, or an older one: a stable fallback
        log.info(
            "OpenLineage provider unavailable (%s); naming the DAG run itself", type(exc).__name__
        )
        return ParentRun("default", str(ti.dag_id), str(context["run_id"]))


def stage_lineage(
    policy: Policy | str | Path,
    run_id: str,
    stage: str,
    *,
    chunk: int | None = None,
    error: str | None = None,
    manifest: RunManifest | Mapping[str, Any] | None = None,
    naming: Naming | None = None,
) -> Any:
    """The provider's ``OperatorLineage`` for one task: inputs and outputs with schema and
    column lineage, the gate's assertions, and the ``veilflow_anonymization`` run facet.
    Reads the run's manifest from the zones database unless given. Never raises: on any
    failure it logs and returns an empty lineage (lineage never fails a task)."""
    try:
        if not isinstance(policy, Policy):
            from veilflow.policy import load_policy

            policy = load_policy(policy)
        lineage_stage = STAGE_OF_TASK[stage]
        if manifest is None or naming is None:
            from veilflow.lineage.naming import naming_of
            from veilflow.zones.db import connect
            from veilflow.zones.runs import chunk_counters, load_manifest

            with connect() as conn:
                if manifest is None:
                    counters = chunk_counters(conn, run_id)[2]
                    manifest = load_manifest(conn, run_id).but(counters=counters)
                naming = naming or naming_of(conn.info)
        event = build_stage_event(
            policy,
            run_id,
            manifest,
            stage=lineage_stage,
            event_type="FAIL" if error else "COMPLETE",
            naming=naming,
            error=error,
            chunk=chunk,
        )
        facets = {k: v for k, v in (event.run.facets or {}).items() if k not in PROVIDER_OWNED}
        return _operator_lineage(
            inputs=list(event.inputs or []),
            outputs=list(event.outputs or []),
            run_facets=facets,
            job_facets={},
        )
    except Exception as exc:  # lineage never fails a task
        log.error(
            "lineage for task %s of run %s unavailable: %s", stage, run_id, type(exc).__name__
        )
        return _operator_lineage()
