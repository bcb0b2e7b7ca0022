"""What the gate is given about a run: the policy, the run's tables and the column plan."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from veilflow.policy.model import Policy
from veilflow.zones.run_tables import RunTables


@dataclass(frozen=True)
class GateColumn:
    """One output column: its source column, operator name and whether the operator must
    hide every raw value."""

    name: str
    action: str
    hides_raw: bool
    source_type: str
    output_type: str
    not_null: bool


@dataclass(frozen=True)
class GateContext:
    policy: Policy
    tables: RunTables
    columns: list[GateColumn]
    #: Real source rows in the snapshot (canaries excluded).
    rows_in: int
    #: Folder for this run's reports (GX Data Docs, ...).
    report_dir: Path
    #: Per text, the (entity, found text) findings among the entity types asked for, for
    #: the residual-PII rescan; None = the detection engine configured by the policy.
    scanner: Callable[[Sequence[str], frozenset[str]], list[list[tuple[str, str]]]] | None = None
    #: The run's operator for a column applied to raw values (the pipeline's plan); given,
    #: the gate re-derives a sample of deterministic tokens to prove they join across tables.
    recompute: Callable[[str, pd.Series], pd.Series] | None = None
    #: Run the Great Expectations suite (and write Data Docs when the policy asks).
    great_expectations: bool = True
    #: Canary rows planted in the snapshot, and the run's chunks (key ranges of
    #: ``policy.chunk_rows`` rows over real rows and canaries): what the gate expects a
    #: summary of.
    canaries: int = 0
    chunks: int = 0
    #: The published table an incremental run appends to (``schema.table``): the global
    #: checks then take the published version's kept sketches with the run's (ADR 0017).
    appends_to: str | None = None
    #: The policy is incremental: the gate leaves the class histogram of what the run
    #: publishes for publish to keep.
    keeps_published: bool = False
