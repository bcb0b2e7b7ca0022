"""What the gate is given about a run: the policy, the run's tables and the column plan."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
