"""OpenLineage RunEvents for the stages of a run, built from the policy and the run manifest.

One stage = one OpenLineage job (``<dataset>.<stage>``) whose run is a child of the Airflow DAG
run (or, in-process, of the veilflow run itself). Datasets per stage:

=========== ==================================== =========================================
stage       inputs                               outputs
=========== ==================================== =========================================
extract     restricted table                     staging snapshot (a raw copy: IDENTITY)
transform   restricted table, staging snapshot   staging candidate
validate    restricted table, candidate + gate   (none)
publish     restricted table, candidate + gate   anonymized table
quarantine  restricted table, candidate + gate   quarantine table
=========== ==================================== =========================================

Every output's column lineage points at the restricted table's columns, so one event answers
"where did this column come from, and what was done to it" without walking staging tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from openlineage.client.event_v2 import (
    InputDataset,
    Job,
    OutputDataset,
    Run,
    RunEvent,
    RunState,
)
from openlineage.client.facet_v2 import (
    error_message_run,
    job_type_job,
    output_statistics_output_dataset,
    parent_run,
    processing_engine_run,
)
from openlineage.client.generated.base import (
    DatasetFacet,
    InputDatasetFacet,
    OutputDatasetFacet,
    RunFacet,
)
from openlineage.client.serde import Serde

from veilflow.lineage.facets import (
    FACET_KEY,
    PRODUCER,
    STAGES,
    assertions_facet,
    column_lineage_facet,
    output_schema,
    source_schema,
    veilflow_facet,
)
from veilflow.lineage.naming import (
    DatasetRef,
    Naming,
    as_run_uuid,
    job_namespace,
    stage_job_name,
)
from veilflow.lineage.releases import release_entries
from veilflow.policy.model import Policy
from veilflow.zones.manifest import RunManifest
from veilflow.zones.run_tables import RunTables

EVENT_TYPES = tuple(s.value for s in RunState)
ENGINE_VERSION = "0.1.0"
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class ParentRun:
    """The run a stage belongs to: the Airflow DAG run (namespace, DAG id, run id), or the
    in-process veilflow run. ``run_id`` may be any string; a non-UUID maps to a stable UUID."""

    namespace: str
    job_name: str
    run_id: str

    @property
    def run_uuid(self) -> str:
        return as_run_uuid(self.run_id)


@dataclass(frozen=True)
class StageDatasets:
    """The tables a run touches, as OpenLineage datasets."""

    source: DatasetRef
    snapshot: DatasetRef
    candidate: DatasetRef
    target: DatasetRef
    quarantine: DatasetRef
    #: DP release tables (``anonymized.<table>``) a publish wrote.
    releases: dict[str, DatasetRef] = field(default_factory=dict)
    #: The synthetic table a publish wrote, if any.
    synthetic: DatasetRef | None = None


def stage_datasets(
    policy: Policy, run_id: str, manifest: RunManifest, naming: Naming
) -> StageDatasets:
    rt = RunTables(policy.dataset, run_id)
    q = (
        manifest.quarantine and manifest.quarantine.table
    ) or f"quarantine.{f'{rt.dataset}__{rt.tag}'[:63]}"
    return StageDatasets(
        source=naming.dataset(policy.source.table),
        snapshot=naming.dataset(f"staging.{rt.snapshot_name}"),
        candidate=naming.dataset(f"staging.{rt.candidate_name}"),
        target=naming.dataset(policy.target.table),
        quarantine=naming.dataset(q),
        releases={r["table"]: naming.dataset(r["table"]) for r in release_entries(manifest)},
        synthetic=naming.dataset(str(syn["table"]))
        if (syn := manifest.synthetic) and syn.get("table")
        else None,
    )


def default_parent(policy: Policy, run_id: str) -> ParentRun:
    """In-process runs: the veilflow run itself is the parent job run."""
    return ParentRun(job_namespace(), policy.dataset, run_id)


def stage_run_id(run_id: str, stage: str, chunk: int | None = None) -> str:
    return as_run_uuid(run_id, stage, *(() if chunk is None else (f"chunk{chunk}",)))


def _input(
    ref: DatasetRef,
    facets: dict[str, DatasetFacet],
    input_facets: dict[str, InputDatasetFacet] | None = None,
) -> InputDataset:
    return InputDataset(
        namespace=ref.namespace, name=ref.name, facets=facets, inputFacets=input_facets or {}
    )


def stage_io(
    stage: str, ds: StageDatasets, manifest: RunManifest, rows_quarantined: int | None = None
) -> tuple[list[InputDataset], list[OutputDataset]]:
    """The input and output datasets of a stage, with their facets."""
    src = _input(ds.source, {"schema": source_schema(manifest)})
    if stage == "extract":
        stats: dict[str, OutputDatasetFacet] = {}
        if manifest.rows_in is not None:
            stats["outputStatistics"] = (
                output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                    rowCount=manifest.rows_in + (manifest.canaries or 0),
                    producer=PRODUCER,
                )
            )
        out = OutputDataset(
            namespace=ds.snapshot.namespace,
            name=ds.snapshot.name,
            facets={
                "schema": source_schema(manifest),
                "columnLineage": column_lineage_facet(manifest, ds.source, identity=True),
            },
            outputFacets=stats,
        )
        return [src], [out]
    if stage == "transform":
        snap = _input(ds.snapshot, {"schema": source_schema(manifest)})
        out = OutputDataset(
            namespace=ds.candidate.namespace,
            name=ds.candidate.name,
            facets={
                "schema": output_schema(manifest),
                "columnLineage": column_lineage_facet(manifest, ds.source),
            },
        )
        return [src, snap], [out]
    gate = manifest.gate
    cand = _input(
        ds.candidate,
        {"schema": output_schema(manifest)},
        {"dataQualityAssertions": assertions_facet(gate)} if gate else None,
    )
    if stage == "validate":
        return [src, cand], []
    ref, rows = (
        (ds.target, manifest.rows_out) if stage == "publish" else (ds.quarantine, rows_quarantined)
    )
    out_facets: dict[str, Any] = {}
    if rows is not None:
        out_facets["outputStatistics"] = (
            output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                rowCount=int(rows), producer=PRODUCER
            )
        )
    out = OutputDataset(
        namespace=ref.namespace,
        name=ref.name,
        facets={
            "schema": output_schema(manifest),
            "columnLineage": column_lineage_facet(manifest, ds.source),
        },
        outputFacets=out_facets,
    )
    if stage == "publish":
        return [src, cand], [out, *_release_outputs(ds, manifest)]
    return [src, cand], [out]


def _release_outputs(ds: StageDatasets, manifest: RunManifest) -> list[OutputDataset]:
    """The DP release tables and the synthetic table a publish wrote, each with its
    lineage."""
    from veilflow.lineage.releases import release_facets, synthetic_entry, synthetic_facets

    outputs = [
        OutputDataset(
            namespace=ref.namespace,
            name=ref.name,
            facets=release_facets(r, ds.source),
        )
        for r in release_entries(manifest)
        if (ref := ds.releases.get(r["table"])) is not None
    ]
    synthetic = synthetic_entry(manifest)
    if synthetic is not None and ds.synthetic is not None:
        types = {c.name: c.output_type for c in manifest.columns}
        outputs.append(
            OutputDataset(
                namespace=ds.synthetic.namespace,
                name=ds.synthetic.name,
                facets=synthetic_facets(synthetic, ds.candidate, types),
            )
        )
    return outputs


def run_facets(
    policy: Policy,
    run_id: str,
    manifest: RunManifest,
    stage: str,
    *,
    parent: ParentRun,
    error: str | None = None,
    chunk: int | None = None,
    rows_quarantined: int | None = None,
) -> dict[str, RunFacet]:
    facets: dict[str, RunFacet] = {
        "parent": parent_run.ParentRunFacet(
            run=parent_run.Run(runId=parent.run_uuid),
            job=parent_run.Job(namespace=parent.namespace, name=parent.job_name),
            root=parent_run.Root(
                run=parent_run.RootRun(runId=parent.run_uuid),
                job=parent_run.RootJob(namespace=parent.namespace, name=parent.job_name),
            ),
            producer=PRODUCER,
        ),
        "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
            version=ENGINE_VERSION, name="veilflow", producer=PRODUCER
        ),
        FACET_KEY: veilflow_facet(
            manifest,
            stage=stage,
            run_id=run_id,
            dataset=policy.dataset,
            policy_name=policy.dataset,
            policy_hash=policy.hash,
            policy_path=policy.file,
            chunk=chunk,
            rows_quarantined=rows_quarantined,
        ),
    }
    if error:
        facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=error[:MAX_ERROR_CHARS], programmingLanguage="python", producer=PRODUCER
        )
    return facets


def build_stage_event(
    policy: Policy,
    run_id: str,
    manifest: RunManifest | Mapping[str, Any],
    *,
    stage: str,
    event_type: str,
    naming: Naming,
    parent: ParentRun | None = None,
    error: str | None = None,
    chunk: int | None = None,
    rows_quarantined: int | None = None,
    event_time: datetime | None = None,
) -> RunEvent:
    """The RunEvent for one transition (START/COMPLETE/FAIL/...) of one stage of a run."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}; types are {', '.join(EVENT_TYPES)}")
    parent = parent or default_parent(policy, run_id)
    manifest = RunManifest.of(manifest)
    datasets = stage_datasets(policy, run_id, manifest, naming)
    inputs, outputs = stage_io(stage, datasets, manifest, rows_quarantined)
    when = (event_time or datetime.now(UTC)).isoformat()
    return RunEvent(
        eventTime=when,
        producer=PRODUCER,
        eventType=RunState(event_type),
        run=Run(
            runId=stage_run_id(run_id, stage, chunk),
            facets=run_facets(
                policy,
                run_id,
                manifest,
                stage,
                parent=parent,
                error=error,
                chunk=chunk,
                rows_quarantined=rows_quarantined,
            ),
        ),
        job=Job(
            namespace=job_namespace(),
            name=stage_job_name(policy.dataset, stage),
            facets={
                "jobType": job_type_job.JobTypeJobFacet(
                    processingType="BATCH",
                    integration="VEILFLOW",
                    jobType="TASK",
                    producer=PRODUCER,
                )
            },
        ),
        inputs=inputs,
        outputs=outputs,
    )


def event_dict(event: RunEvent) -> dict[str, Any]:
    """The event as OpenLineage JSON (nulls dropped), exactly as stored and delivered."""
    return Serde.to_dict(event)
