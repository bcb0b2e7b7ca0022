"""The per-chunk gate summary: what a transform task proved about its chunk while the chunk
was in memory, in counts (ADR 0016).

A summary holds counts, failures by check and the names and sizes of its hash sketches;
never a value. It is written with the chunk's partition, in the same transaction, into
``governance.run_chunks.summary``; its sketches go to the run's staging table of sketches.
The gate reads it back through :func:`parse_summary`, which refuses anything malformed: a
chunk whose summary does not parse fails the gate.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, ValidationError

#: The summary format this code writes and reads.
SUMMARY_VERSION: Literal[1] = 1


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Tally(_Frozen):
    """An expectation decided per row: rows that broke it among rows it looked at."""

    unexpected: int = Field(ge=0)
    checked: int = Field(ge=0)


class FormatProof(_Frozen):
    """Inputs of the "no raw value survives" proof for one column with an output format:
    raw values that have the format, canary outputs that lack it."""

    raw_with_format: int = Field(ge=0)
    canary_outputs_without: int = Field(ge=0)


class TextWords(_Frozen):
    """Inputs of "no raw value in text": raw values of hiding columns shaped like a readable
    token, and words of the text outputs that could be raw values (with a digit or ``@``,
    6 characters or more), token-shaped or not."""

    token_shaped_raw: int = Field(ge=0)
    words: int = Field(ge=0)
    token_words: int = Field(ge=0)


class CanaryTally(_Frozen):
    planted: int = Field(ge=0)
    in_candidate: int = Field(ge=0)
    #: ``"<source column>-><output column>"`` -> canary outputs holding a planted value.
    leaks: dict[str, NonNegativeInt] = Field(default_factory=dict)


class RescanTally(_Frozen):
    rows_scanned: int = Field(ge=0)
    #: column -> entity -> findings that survived from the source.
    findings: dict[str, dict[str, NonNegativeInt]] = Field(default_factory=dict)
    #: entity -> findings that were replacements, not source data.
    replacements: dict[str, NonNegativeInt] = Field(default_factory=dict)


class ChunkSummary(_Frozen):
    version: Literal[1] = SUMMARY_VERSION
    chunk: int = Field(ge=0)
    lo: int = Field(ge=1)
    hi: int = Field(ge=1)
    #: Real rows and canary rows written to the partition.
    rows: int = Field(ge=0)
    canaries: int = Field(ge=0)
    #: ``"<check>|<column>"`` -> rows that broke a row check (all rows, canaries included):
    #: null_parity, format_preserved, no_raw_value_survives (same row).
    row_checks: dict[str, NonNegativeInt] = Field(default_factory=dict)
    #: expectation key (``validate.gx_suite.spec_key``) -> tally over the real rows.
    expectations: dict[str, Tally] = Field(default_factory=dict)
    formats: dict[str, FormatProof] = Field(default_factory=dict)
    text: TextWords | None = None
    canary: CanaryTally | None = None
    rescan: RescanTally | None = None
    #: deterministic column -> tokens of the chunk's first real rows that its operator,
    #: applied again to the raw values, does not give again (``token_rederived``).
    rederived: dict[str, Tally] = Field(default_factory=dict)
    #: sketch name -> entries, checked against the stored sketch.
    sketches: dict[str, NonNegativeInt] = Field(default_factory=dict)
    #: CPU-seconds the checks took in the transform task.
    cpu_seconds: float = Field(ge=0.0)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class MalformedSummary(ValueError):
    """A stored summary that is not a summary this code can trust (never quotes it)."""


def parse_summary(data: object, chunk: int, lo: int, hi: int, rows: int) -> ChunkSummary:
    """The summary of chunk ``chunk`` (rows ``lo <= _vf_row < hi``, ``rows`` real rows
    recorded beside it), or ``MalformedSummary`` naming what is wrong. ``rows`` counts canary rows too."""
    if data is None:
        raise MalformedSummary(f"chunk {chunk} has no gate summary")
    if not isinstance(data, dict):
        raise MalformedSummary(f"chunk {chunk}: the gate summary is not an object")
    try:
        summary = ChunkSummary.model_validate(data)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"][:2]) or "-" for e in exc.errors()})
        raise MalformedSummary(
            f"chunk {chunk}: the gate summary is malformed at {', '.join(fields[:5])}"
        ) from None
    if (summary.chunk, summary.lo, summary.hi) != (chunk, lo, hi):
        raise MalformedSummary(f"chunk {chunk}: the gate summary describes another key range")
    if summary.rows + summary.canaries != rows:
        raise MalformedSummary(f"chunk {chunk}: the gate summary counts other rows")
    return summary
