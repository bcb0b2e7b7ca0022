"""Facets built from a run manifest: OpenLineage's own (schema, column lineage, data-quality
assertions) and veilflow's ``veilflow_anonymization`` run facet.

Everything here is pure: a manifest in, attrs facet objects out. The manifest holds names,
types, counts and key versions only, so the facets do too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attr
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    data_quality_assertions_dataset,
    schema_dataset,
)
from openlineage.client.generated.base import RunFacet

from veilflow.config import PROJECT_ROOT
from veilflow.errors import KeyNotFound
from veilflow.lineage.naming import DatasetRef
from veilflow.transform.base import Operator, describe_operation
from veilflow.transform.keys import key_id, parse_key_ref
from veilflow.zones.manifest import ColumnEntry, GateSummary, RunManifest

#: The key a veilflow run facet is stored under (custom facets carry the producer's prefix).
FACET_KEY = "veilflow_anonymization"
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
FACET_SCHEMA_FILE = SCHEMA_DIR / "VeilflowAnonymizationRunFacet.json"
FACET_SCHEMA_ID = "https://veilflow.dev/spec/facets/1-0-0/VeilflowAnonymizationRunFacet.json"
FACET_SCHEMA_URL = FACET_SCHEMA_ID + "#/$defs/VeilflowAnonymizationRunFacet"
PRODUCER = "https://github.com/veilflow/veilflow/tree/0.1.0"
ENTITY_PREFIX = "entity:"
STAGES = ("extract", "transform", "validate", "publish", "quarantine")


@attr.define
class VeilflowAnonymizationRunFacet(RunFacet):
    """What one stage did: policy, operator and key version per column, GDPR class per
    output column, detection counts, gate assertions, rows. Schema: ``FACET_SCHEMA_FILE``."""

    runId: str
    dataset: str
    stage: str
    policy: dict[str, str]
    columns: list[dict[str, Any]]
    keyVersions: list[dict[str, Any]]
    rows: dict[str, int]
    chunk: int | None = attr.field(default=None)
    detection: dict[str, dict[str, int]] | None = attr.field(default=None)
    counters: dict[str, dict[str, int]] | None = attr.field(default=None)
    gate: dict[str, Any] | None = attr.field(default=None)
    quarantine: dict[str, Any] | None = attr.field(default=None)
    #: The source range an incremental policy's run took (ADR 0017).
    increment: dict[str, Any] | None = attr.field(default=None)
    differentialPrivacy: dict[str, Any] | None = attr.field(default=None)
    utility: dict[str, Any] | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return FACET_SCHEMA_URL


# ------------------------------------------------------------------------------ pieces
def key_version(ref: str | None) -> dict[str, Any] | None:
    """``"customers/token@v3"`` → ``{"id": "customers/token", "version": 3}``. A run records
    the version each key it used had: a reference without one is refused, not guessed."""
    if not ref:
        return None
    dataset, purpose, version = parse_key_ref(ref)
    if version is None:
        raise KeyNotFound(f"key reference {ref!r} names no version; a run records the one it used")
    return {"id": key_id(dataset, purpose), "version": version}


def describe_column(col: ColumnEntry | dict[str, Any]) -> str:
    """One line naming the operator, all its parameters and its key id + version."""
    if isinstance(col, ColumnEntry):
        action, params, ref = col.action, col.params, col.key
    else:
        action, params, ref = col["action"], col.get("params") or {}, col.get("key")
    key = key_version(ref)
    return describe_operation(action, params, None if key is None else (key["id"], key["version"]))


def policy_file(path: str | None) -> str | None:
    if not path:
        return None
    p = Path(path)
    try:
        return str(p.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return p.name


def split_counters(
    counters: dict[str, dict[str, int]],
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    """Manifest counters → (entities detected per column, other counters per column)."""
    detection: dict[str, dict[str, int]] = {}
    other: dict[str, dict[str, int]] = {}
    for column, counts in sorted(counters.items()):
        for what, n in sorted(counts.items()):
            if what.startswith(ENTITY_PREFIX):
                detection.setdefault(column, {})[what[len(ENTITY_PREFIX) :]] = int(n)
            else:
                other.setdefault(column, {})[what] = int(n)
    return detection, other


def _scalar(value: Any) -> str | None:
    """A gate figure as text for an assertion (counts and thresholds; nothing else)."""
    if value is None:
        return None
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return value[:200]
    return json.dumps(value, sort_keys=True, default=str)[:200]


def gate_assertions(gate: GateSummary) -> list[dict[str, Any]]:
    """The gate's checks as assertion dicts: check name, success, column, expected, actual."""
    out = []
    for check in gate.checks:
        item: dict[str, Any] = {"assertion": check.name, "success": check.passed}
        for field, value in (
            ("column", check.column),
            ("expected", _scalar(check.threshold)),
            ("actual", _scalar(check.observed)),
        ):
            if value is not None:
                item[field] = str(value)
        out.append(item)
    return out


# ------------------------------------------------------------------------------ facets
def schema_facet(columns: list[tuple[str, str | None]]) -> schema_dataset.SchemaDatasetFacet:
    return schema_dataset.SchemaDatasetFacet(
        fields=[
            schema_dataset.SchemaDatasetFacetFields(name=name, type=type_, ordinal_position=i)
            for i, (name, type_) in enumerate(columns, start=1)
        ],
        producer=PRODUCER,
    )


def source_schema(manifest: RunManifest) -> schema_dataset.SchemaDatasetFacet:
    return schema_facet([(c.name, c.type) for c in manifest.source.columns])


def output_schema(manifest: RunManifest) -> schema_dataset.SchemaDatasetFacet:
    return schema_facet([(c.name, c.output_type or "text") for c in manifest.outputs])


def transformation(col: ColumnEntry) -> column_lineage_dataset.Transformation:
    """The column's transformation as its operator stated it (the operator's class
    attributes, recorded in the manifest; ``Operator``'s defaults where none was)."""
    return column_lineage_dataset.Transformation(
        type=col.lineage_type or Operator.lineage_type,
        subtype=col.lineage_subtype or Operator.lineage_subtype,
        description=describe_column(col),
        masking=col.masking,
    )


def _referenced(col: ColumnEntry, source: DatasetRef) -> list[column_lineage_dataset.InputField]:
    """A foreign-key column of a dataset's table (ADR 0023) also comes from the key it refers
    to: both are tokens of one key, so the output joins on that key's output."""
    ref = col.references
    if not ref:
        return []
    database = source.name.split(".", 1)[0] if source.name.count(".") >= 2 else None
    name = f"{database}.{ref['table']}" if database else str(ref["table"])
    t = column_lineage_dataset.Transformation(
        type="INDIRECT",
        subtype="JOIN",
        description=(
            f"tokens of the same key as {ref['table']}.{ref['column']}: joins on it survive"
        ),
        masking=True,
    )
    return [
        column_lineage_dataset.InputField(
            namespace=source.namespace, name=name, field=str(ref["column"]), transformations=[t]
        )
    ]


def column_lineage_facet(
    manifest: RunManifest, source: DatasetRef, *, identity: bool = False
) -> column_lineage_dataset.ColumnLineageDatasetFacet:
    """Every output column from its source column. ``identity`` describes a raw copy (the
    extract snapshot): every declared column, unchanged, not masked."""
    fields: dict[str, column_lineage_dataset.Fields] = {}
    if identity:
        for src in manifest.source.columns:
            t = column_lineage_dataset.Transformation(
                type="DIRECT",
                subtype="IDENTITY",
                description="copied unchanged into staging",
                masking=False,
            )
            fields[src.name] = column_lineage_dataset.Fields(
                inputFields=[
                    column_lineage_dataset.InputField(
                        namespace=source.namespace,
                        name=source.name,
                        field=src.name,
                        transformations=[t],
                    )
                ],
                transformationDescription=t.description,
                transformationType="IDENTITY",
            )
        return column_lineage_dataset.ColumnLineageDatasetFacet(fields=fields, producer=PRODUCER)
    for col in manifest.outputs:
        t = transformation(col)
        fields[col.name] = column_lineage_dataset.Fields(
            inputFields=[
                column_lineage_dataset.InputField(
                    namespace=source.namespace,
                    name=source.name,
                    field=col.name,
                    transformations=[t],
                ),
                *_referenced(col, source),
            ],
            transformationDescription=t.description,
            transformationType="MASKED" if t.masking else "IDENTITY",
        )
    return column_lineage_dataset.ColumnLineageDatasetFacet(fields=fields, producer=PRODUCER)


def assertions_facet(
    gate: GateSummary,
) -> data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet:
    return data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
        assertions=[
            data_quality_assertions_dataset.Assertion(
                assertion=a["assertion"],
                success=a["success"],
                column=a.get("column"),
                severity="error",
                expected=a.get("expected"),
                actual=a.get("actual"),
            )
            for a in gate_assertions(gate)
        ],
        producer=PRODUCER,
    )


def veilflow_facet(
    manifest: RunManifest,
    *,
    stage: str,
    run_id: str,
    dataset: str,
    policy_name: str,
    policy_hash: str,
    policy_path: str | None = None,
    chunk: int | None = None,
    rows_quarantined: int | None = None,
) -> VeilflowAnonymizationRunFacet:
    columns = []
    keys: dict[tuple[str, int], dict[str, Any]] = {}
    for c in manifest.columns:
        key = key_version(c.key)
        entry: dict[str, Any] = {
            "name": c.name,
            "operator": c.action,
            "parameters": c.params,
            "gdprClass": c.gdpr,
            "gdprReason": c.gdpr_reason,
            "masking": c.masking,
        }
        if key is not None:
            entry["key"] = key
            keys[(key["id"], key["version"])] = key
        if c.source_type:
            entry["sourceType"] = c.source_type
        if not c.dropped and c.output_type:
            entry["outputType"] = c.output_type
        columns.append(entry)
    detection, other = split_counters(manifest.counters or {})
    gate = manifest.gate
    rows: dict[str, int] = {}
    for name, value in (
        ("in", manifest.rows_in),
        ("canaries", manifest.canaries),
        ("out", manifest.rows_out),
        ("suppressed", gate.suppressed_rows if gate else None),
        ("quarantined", rows_quarantined),
    ):
        if value is not None:
            rows[name] = int(value)
    gate_data: dict[str, Any] | None = None
    if gate:
        gate_data = {"passed": gate.passed, "assertions": gate_assertions(gate)}
        if gate.data_docs:
            gate_data["dataDocs"] = gate.data_docs
    quarantine: dict[str, Any] | None = None
    q = manifest.quarantine
    if q:
        quarantine = {
            "reasons": [
                {
                    "check": str(r.get("check")),
                    **({"column": str(r["column"])} if r.get("column") else {}),
                }
                for r in q.reasons
            ]
        }
        if q.table:
            quarantine["table"] = q.table
    policy = {"name": policy_name, "hash": policy_hash}
    file = policy_file(policy_path)
    if file:
        policy["file"] = file
    return VeilflowAnonymizationRunFacet(
        runId=run_id,
        dataset=dataset,
        stage=stage,
        chunk=chunk,
        policy=policy,
        columns=columns,
        keyVersions=sorted(keys.values(), key=lambda k: (k["id"], k["version"])),
        rows=rows,
        detection=detection or None,
        counters=other or None,
        gate=gate_data,
        quarantine=quarantine,
        increment=increment_entry(manifest.incremental),
        differentialPrivacy=_dp_field(manifest) if stage == "publish" else None,
        utility=_utility_field(manifest) if stage in ("validate", "publish") else None,
        producer=PRODUCER,
    )


def increment_entry(inc: dict[str, Any] | None) -> dict[str, Any] | None:
    """The facet's ``increment``: the cursor range a run took, never a row's value."""
    if not inc:
        return None
    out: dict[str, Any] = {
        "cursor": str(inc["cursor"]),
        "mode": str(inc["mode"]),
        "rowsTaken": int(inc["rows_taken"]),
    }
    for name in ("from", "to"):
        if inc.get(name) is not None:
            out[name] = str(inc[name])
    if inc.get("reason"):
        out["reason"] = str(inc["reason"])
    return out


def _utility_field(manifest: RunManifest) -> dict[str, Any] | None:
    from veilflow.lineage.releases import utility_field

    return utility_field(manifest)


def _dp_field(manifest: RunManifest) -> dict[str, Any] | None:
    from veilflow.lineage.releases import dp_field

    return dp_field(manifest)
