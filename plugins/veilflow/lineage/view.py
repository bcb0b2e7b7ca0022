"""Column lineage read back from the governance store: for each column of an anonymized (or
staging / quarantine) table, the restricted column it came from, the operator with its
parameters, the key version, masking and the GDPR class. The CLI prints it; the UI draws it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from veilflow.lineage.facets import FACET_KEY
from veilflow.lineage.store import StoredEvent, dataset_events, latest_run, table_name

#: Which stage's event best describes a run's output, most telling first.
STAGE_PREFERENCE = ("publish", "quarantine", "transform", "validate", "extract")


@dataclass(frozen=True)
class ColumnEdge:
    """One output column and where it came from."""

    output_table: str
    column: str
    input_table: str
    input_column: str
    operator: str
    description: str
    transformation: str  # "DIRECT/TRANSFORMATION", "DIRECT/IDENTITY", ...
    masking: bool
    key: str | None  # "customers/token@v1"
    gdpr_class: str | None
    gdpr_reason: str | None


@dataclass(frozen=True)
class RunLineage:
    dataset: str
    run_id: str
    stage: str
    event_type: str
    event_time: datetime
    policy_hash: str | None
    edges: list[ColumnEdge]
    facet: dict[str, Any]


def _describing_event(events: list[StoredEvent]) -> StoredEvent | None:
    with_outputs = [e for e in events if e.outputs]
    for stage in STAGE_PREFERENCE:
        candidates = [e for e in with_outputs if e.stage == stage]
        if candidates:
            return max(candidates, key=lambda e: (e.event_time, e.event_id))
    return None


def edges_of(event: dict[str, Any]) -> list[ColumnEdge]:
    """The column edges of every output dataset of one event."""
    facet = (event.get("run", {}).get("facets") or {}).get(FACET_KEY) or {}
    columns = {c["name"]: c for c in facet.get("columns", [])}
    order = {name: i for i, name in enumerate(columns)}
    edges = []
    for out in event.get("outputs") or []:
        lineage = (out.get("facets") or {}).get("columnLineage") or {}
        for name, spec in (lineage.get("fields") or {}).items():
            col = columns.get(name, {})
            key = col.get("key")
            for inp in spec.get("inputFields") or []:
                t = (inp.get("transformations") or [{}])[0]
                edges.append(
                    ColumnEdge(
                        output_table=table_name(out["name"]),
                        column=name,
                        input_table=table_name(inp["name"]),
                        input_column=inp["field"],
                        operator=col.get("operator") or "copy",
                        description=t.get("description")
                        or spec.get("transformationDescription")
                        or "",
                        transformation=f"{t.get('type', '?')}/{t.get('subtype', '?')}",
                        masking=bool(t.get("masking")),
                        key=f"{key['id']}@v{key['version']}" if key else None,
                        gdpr_class=col.get("gdprClass"),
                        gdpr_reason=col.get("gdprReason"),
                    )
                )
    # jsonb keeps object keys in its own order; the policy's column order is the facet's
    return sorted(edges, key=lambda e: (e.output_table, order.get(e.column, len(order))))


def run_lineage(
    conn: psycopg.Connection, dataset: str, *, run_id: str | None = None, column: str | None = None
) -> RunLineage | None:
    """Column lineage of ``dataset`` (policy dataset or table) for ``run_id`` or the latest
    run; only ``column`` when given. None when nothing is stored."""
    run_id = run_id or latest_run(conn, dataset)
    if run_id is None:
        return None
    events = dataset_events(conn, dataset, run_id=run_id)
    chosen = _describing_event(events)
    if chosen is None:
        return None
    edges = edges_of(chosen.event)
    if "." in dataset:  # a table was asked for: its edges only, when it is an output
        wanted = table_name(dataset)
        edges = [e for e in edges if e.output_table == wanted or e.input_table == wanted]
    if column is not None:
        edges = [e for e in edges if column in (e.column, e.input_column)]
    facet = (chosen.event.get("run", {}).get("facets") or {}).get(FACET_KEY) or {}
    return RunLineage(
        dataset=chosen.dataset,
        run_id=run_id,
        stage=chosen.stage,
        event_type=chosen.event_type,
        event_time=chosen.event_time,
        policy_hash=chosen.policy_hash,
        edges=edges,
        facet=facet,
    )
