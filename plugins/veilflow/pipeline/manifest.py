"""The run manifest's column entries, built from a run's plan: what each column's operator
is and states about itself. The record is ``veilflow.zones.manifest``; reading and saving it
is ``veilflow.zones.runs`` (re-exported here for callers of the stages).

Counts and names only — never a value, never key material.
"""

from __future__ import annotations

from veilflow.pipeline.plan import Plan
from veilflow.zones.manifest import ColumnEntry
from veilflow.zones.run_tables import SourceColumn
from veilflow.zones.runs import chunk_counters, load_manifest, save_manifest

__all__ = ["chunk_counters", "column_entries", "load_manifest", "save_manifest"]


def column_entries(plan: Plan, source: dict[str, SourceColumn]) -> list[ColumnEntry]:
    """Each policy column with its operator's facts, as the operator states them."""
    entries = []
    for col in plan.columns:
        op = col.operator
        src = source.get(col.name)
        key = op.key
        entry = ColumnEntry(
            name=col.name,
            action=col.action,
            source_type=src.type if src else None,
            not_null=bool(src.not_null) if src else False,
            output_type=None if col.dropped else op.output_type(src.type if src else "text"),
            gdpr=op.gdpr,
            gdpr_reason=op.gdpr_reason,
            masking=op.masking,
            hides_raw=op.hides_raw,
            key=key.ref if key else None,
            params=op.params(),
            description=op.describe(),
        )
        if not col.dropped:  # a removed column has no output for lineage to describe
            entry = entry.but(lineage_type=op.lineage_type, lineage_subtype=op.lineage_subtype)
        entries.append(entry)
    return entries
