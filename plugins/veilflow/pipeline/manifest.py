"""The run manifest: what a run did, column by column, kept in ``governance.runs``.

Counts and names only — never a value, never key material.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import psycopg

from veilflow.errors import VeilflowError
from veilflow.pipeline.plan import Plan
from veilflow.zones.manifest import ColumnEntry, RunManifest
from veilflow.zones.run_tables import SourceColumn


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


def load_manifest(conn: psycopg.Connection, run_id: str) -> RunManifest:
    row = conn.execute(
        "SELECT manifest FROM governance.runs WHERE run_id = %s", (run_id,)
    ).fetchone()
    if row is None:
        raise VeilflowError(f"run {run_id} has no record; run extract first")
    return RunManifest.of(row[0])


def save_manifest(
    conn: psycopg.Connection, run_id: str, manifest: RunManifest, **fields: Any
) -> None:
    sets = ["manifest = %s"]
    params: list[Any] = [json.dumps(manifest.to_json())]
    for name, value in fields.items():
        if name not in ("status", "rows_in", "rows_out", "error", "finished_at"):
            raise ValueError(name)
        if name == "finished_at":
            sets.append("finished_at = now()")
            continue
        sets.append(f"{name} = %s")
        params.append(value)
    params.append(run_id)
    conn.execute(f"UPDATE governance.runs SET {', '.join(sets)} WHERE run_id = %s", params)


def chunk_counters(
    conn: psycopg.Connection, run_id: str
) -> tuple[int, int, dict[str, dict[str, int]]]:
    """(chunks done, rows written, counters summed over chunks) from ``governance.run_chunks``."""
    total: dict[str, Counter[str]] = {}
    done = rows = 0
    for n, counters in conn.execute(
        "SELECT rows, counters FROM governance.run_chunks WHERE run_id = %s", (run_id,)
    ):
        done += 1
        rows += int(n)
        for col, counts in counters.items():
            total.setdefault(col, Counter()).update(counts)
    return done, rows, {c: dict(v) for c, v in sorted(total.items())}
