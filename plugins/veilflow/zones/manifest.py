"""The run manifest as typed records: what a run did, column by column, as kept in the
``manifest`` column of ``governance.runs``.

One JSON form: a record is written as the fields it was given (``to_json``) and read back
from that form; manifests written before these models read too, since every field has a
default and unknown fields are kept as they were. Counts and names only — never a value,
never key material.

The figures of the privacy package (``risk``, ``utility``, ``synthetic``, ``releases``) and
the incremental cursor stay the plain JSON their modules build: each is owned and read by one
module. What several layers read (the columns, the gate, the quarantine) is typed here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field

from veilflow.transform.base import GdprClass


class _Record(BaseModel):
    """Frozen; fields the model does not know (a newer or older writer's) are kept."""

    model_config = ConfigDict(frozen=True, extra="allow")

    def to_json(self) -> dict[str, Any]:
        """The stored form: the fields this record was given, nothing filled in."""
        return self.model_dump(mode="json", exclude_unset=True)

    def but(self, **changes: Any) -> Self:
        """A copy with ``changes`` (records, not their JSON, for typed fields)."""
        return self.model_copy(update=changes)


class PolicyRef(_Record):
    file: str | None = None
    hash: str = ""
    dataset: str = ""


class SourceColumnEntry(_Record):
    name: str
    type: str | None = None
    not_null: bool = False


class SourceRef(_Record):
    table: str = ""
    key: str = ""
    columns: tuple[SourceColumnEntry, ...] = ()


class TargetRef(_Record):
    table: str = ""


class ColumnEntry(_Record):
    """One policy column: its operator's facts as the operator states them (``Operator``'s
    class attributes), the key version it used, and its parameters."""

    name: str
    action: str
    source_type: str | None = None
    not_null: bool = False
    output_type: str | None = None
    #: Every manifest has recorded the class; the default serves hand-made records only.
    gdpr: GdprClass = "removed"
    gdpr_reason: str = ""
    masking: bool = False
    hides_raw: bool = False
    key: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    description: str = ""
    #: A foreign key of a dataset's table: ``{"table": …, "column": …}`` it refers to.
    references: dict[str, str] | None = None
    #: Absent for a dropped column: it has no output for lineage to describe.
    lineage_type: str | None = None
    lineage_subtype: str | None = None

    @property
    def dropped(self) -> bool:
        return self.action == "drop"


class GateCheck(_Record):
    name: str
    passed: bool
    observed: Any = None
    threshold: Any = None
    column: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    seconds: float = 0.0


class GateSummary(_Record):
    """The gate's verdict on the candidate (``GateReport.to_dict()``'s form)."""

    passed: bool = False
    checks: tuple[GateCheck, ...] = ()
    suppressed_rows: int = 0
    metrics: dict[str, Any] = Field(default_factory=dict)
    data_docs: str | None = None

    @property
    def failed(self) -> list[GateCheck]:
        return [c for c in self.checks if not c.passed]


class QuarantineEntry(_Record):
    table: str | None = None
    reasons: tuple[dict[str, Any], ...] = ()
    rows: int | None = None


class RunManifest(_Record):
    run_id: str = ""
    dataset: str = ""
    policy: PolicyRef = PolicyRef()
    source: SourceRef = SourceRef()
    target: TargetRef = TargetRef()
    columns: tuple[ColumnEntry, ...] = ()
    started: float | None = None
    finished: float | None = None
    rows_in: int | None = None
    canaries: int | None = None
    chunks: int | None = None
    rows_out: int | None = None
    #: An incremental run that found no row past the cursor (ADR 0017).
    up_to_date: bool = False
    #: The cursor range an incremental run took (``pipeline/increment.py``'s form).
    incremental: dict[str, Any] | None = None
    detection: dict[str, Any] | None = None
    #: Summed over chunks: per column, per counter (``entity:<NAME>`` for detections).
    counters: dict[str, dict[str, int]] | None = None
    gate: GateSummary | None = None
    quarantine: QuarantineEntry | None = None
    risk: dict[str, Any] | None = None
    utility: dict[str, Any] | None = None
    synthetic: dict[str, Any] | None = None
    releases: dict[str, Any] | None = None
    #: Erased subjects' rows taken out of the snapshot at extract (ADR 0022).
    erased_left_out: int | None = None
    erased_subjects_left_out: int | None = None
    #: What the policy declares that only a full run makes, left by an appending run.
    full_runs_only: list[str] | None = None
    published: str | None = None
    #: A table's run of a multi-table dataset: the dataset run it belongs to (ADR 0023),
    #: the foreign-key check and the erased rows its publish left out. Owned by
    #: ``pipeline/dataset.py``.
    dataset_run: dict[str, Any] | None = None
    foreign_keys: dict[str, Any] | None = None
    erased_rows_left_out: int | None = None

    @classmethod
    def of(cls, value: RunManifest | Mapping[str, Any] | None) -> RunManifest:
        """A record from itself or from its JSON form."""
        if isinstance(value, RunManifest):
            return value
        return cls.model_validate(dict(value or {}))

    @property
    def outputs(self) -> list[ColumnEntry]:
        """The columns present in the output (every action but ``drop``), in order."""
        return [c for c in self.columns if not c.dropped]

    @property
    def passed_gate(self) -> bool:
        return self.gate is not None and self.gate.passed

    @property
    def key_refs(self) -> list[str]:
        """The key versions the run's columns used (``dataset/purpose@vN``), sorted."""
        return sorted({c.key for c in self.columns if c.key})
