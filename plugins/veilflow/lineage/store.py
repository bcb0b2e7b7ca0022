"""The governance store of lineage events (``governance.lineage_events``): append, track
delivery, and read back per dataset and run.

When the database itself cannot take an event, the event goes to a spool folder
(``$VEILFLOW_HOME/lineage/spool``) and ``import_spool`` moves it in later: an event is never
dropped.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from veilflow.config import settings

log = logging.getLogger(__name__)

COLUMNS = (
    "event_id",
    "run_id",
    "ol_run_id",
    "parent_run_id",
    "parent_job",
    "dataset",
    "policy_hash",
    "job_namespace",
    "job_name",
    "stage",
    "event_type",
    "event_time",
    "inputs",
    "outputs",
    "event",
    "delivered",
    "delivery_attempts",
    "delivery_error",
)


@dataclass(frozen=True)
class EventRecord:
    """What the store keeps beside the event JSON (all derived from the event itself)."""

    run_id: str
    dataset: str
    stage: str
    policy_hash: str | None
    event: dict[str, Any]

    def row(self) -> dict[str, Any]:
        ev = self.event
        parent = (ev.get("run", {}).get("facets") or {}).get("parent") or {}
        pjob = parent.get("job") or {}
        return {
            "run_id": self.run_id,
            "ol_run_id": ev["run"]["runId"],
            "parent_run_id": (parent.get("run") or {}).get("runId"),
            "parent_job": f"{pjob['namespace']}/{pjob['name']}" if pjob else None,
            "dataset": self.dataset,
            "policy_hash": self.policy_hash,
            "job_namespace": ev["job"]["namespace"],
            "job_name": ev["job"]["name"],
            "stage": self.stage,
            "event_type": ev.get("eventType") or "OTHER",
            "event_time": ev["eventTime"],
            "inputs": [table_name(d["name"]) for d in ev.get("inputs") or []],
            "outputs": [table_name(d["name"]) for d in ev.get("outputs") or []],
        }


@dataclass(frozen=True)
class StoredEvent:
    event_id: int
    run_id: str
    ol_run_id: str
    parent_run_id: str | None
    parent_job: str | None
    dataset: str
    policy_hash: str | None
    job_namespace: str
    job_name: str
    stage: str
    event_type: str
    event_time: datetime
    inputs: list[str]
    outputs: list[str]
    event: dict[str, Any]
    delivered: bool | None
    delivery_attempts: int
    delivery_error: str | None


def table_name(dataset_name: str) -> str:
    """``database.schema.table`` → ``schema.table`` (what users and the store index by)."""
    parts = dataset_name.split(".")
    return ".".join(parts[-2:]) if len(parts) >= 2 else dataset_name


def store_event(conn: psycopg.Connection, record: EventRecord, *, delivered: bool | None) -> int:
    """Append one event. Inside the caller's transaction this is a savepoint (it commits with
    the caller); on an idle connection it commits at once. Returns the event id."""
    row = record.row()
    with conn.transaction():
        cur = conn.execute(
            "INSERT INTO governance.lineage_events (run_id, ol_run_id, parent_run_id, parent_job,"
            " dataset, policy_hash, job_namespace, job_name, stage, event_type, event_time,"
            " inputs, outputs, event, delivered) VALUES (%(run_id)s, %(ol_run_id)s,"
            " %(parent_run_id)s, %(parent_job)s, %(dataset)s, %(policy_hash)s,"
            " %(job_namespace)s, %(job_name)s, %(stage)s, %(event_type)s, %(event_time)s,"
            " %(inputs)s, %(outputs)s, %(event)s, %(delivered)s) RETURNING event_id",
            {**row, "event": json.dumps(record.event), "delivered": delivered},
        )
        got = cur.fetchone()
    assert got is not None
    return int(got[0])


def mark_delivery(conn: psycopg.Connection, event_id: int, error: str | None) -> None:
    """Record one delivery attempt: delivered when ``error`` is None, else pending + why."""
    with conn.transaction():
        conn.execute(
            "UPDATE governance.lineage_events SET delivery_attempts = delivery_attempts + 1,"
            " delivered = %s, delivery_error = %s,"
            " delivered_at = CASE WHEN %s THEN now() END WHERE event_id = %s",
            (error is None, error, error is None, event_id),
        )


def pending_events(conn: psycopg.Connection, limit: int = 1000) -> list[tuple[int, dict[str, Any]]]:
    """Events not yet delivered to the configured transports, oldest first."""
    rows = conn.execute(
        "SELECT event_id, event FROM governance.lineage_events WHERE delivered = false"
        " ORDER BY event_id LIMIT %s",
        (limit,),
    ).fetchall()
    return [(int(r[0]), r[1]) for r in rows]


def _where_dataset(dataset: str) -> tuple[str, list[Any]]:
    """A policy dataset (``customers``) or a table (``anonymized.customers``, with or without
    the database) → SQL condition and parameters."""
    if "." not in dataset:
        return "dataset = %s", [dataset]
    table = table_name(dataset)
    return "(outputs @> ARRAY[%s]::text[] OR inputs @> ARRAY[%s]::text[])", [table, table]


def dataset_events(
    conn: psycopg.Connection, dataset: str, *, run_id: str | None = None, limit: int | None = None
) -> list[StoredEvent]:
    """Stored events of a dataset (optionally one run), oldest first."""
    where, params = _where_dataset(dataset)
    if run_id is not None:
        where += " AND run_id = %s"
        params.append(run_id)
    sql = (
        f"SELECT {', '.join(COLUMNS)} FROM governance.lineage_events WHERE {where}"
        " ORDER BY event_time, event_id"
    )
    if limit is not None:
        sql += " LIMIT %s"
        params.append(limit)
    return [_stored(r) for r in conn.execute(sql, params).fetchall()]


def latest_run(conn: psycopg.Connection, dataset: str) -> str | None:
    """The veilflow run id of the dataset's most recent event."""
    where, params = _where_dataset(dataset)
    row = conn.execute(
        f"SELECT run_id FROM governance.lineage_events WHERE {where}"
        " ORDER BY event_time DESC, event_id DESC LIMIT 1",
        params,
    ).fetchone()
    return None if row is None else str(row[0])


def dataset_runs(
    conn: psycopg.Connection, dataset: str, limit: int = 100
) -> list[tuple[str, datetime, datetime, str]]:
    """(run id, first event, last event, last event type) per run of a dataset, newest first."""
    where, params = _where_dataset(dataset)
    rows = conn.execute(
        "SELECT run_id, min(event_time), max(event_time),"
        " (array_agg(stage || ':' || event_type ORDER BY event_time DESC, event_id DESC))[1]"
        f" FROM governance.lineage_events WHERE {where}"
        " GROUP BY run_id ORDER BY max(event_time) DESC LIMIT %s",
        [*params, limit],
    ).fetchall()
    return [(str(r[0]), r[1], r[2], str(r[3])) for r in rows]


def _stored(r: tuple[Any, ...]) -> StoredEvent:
    d = dict(zip(COLUMNS, r, strict=True))
    d["ol_run_id"] = str(d["ol_run_id"])
    d["parent_run_id"] = None if d["parent_run_id"] is None else str(d["parent_run_id"])
    return StoredEvent(**d)


# ------------------------------------------------------------------------------ spool
def spool_dir() -> Path:
    return settings().home / "lineage" / "spool"


def spool_event(record: EventRecord, *, delivered: bool | None) -> Path:
    """Keep an event the database could not take, as a file, until ``import_spool``."""
    folder = spool_dir()
    folder.mkdir(parents=True, exist_ok=True)
    ev = record.event
    path = folder / f"{time.time_ns()}-{ev['run']['runId']}-{ev.get('eventType', 'OTHER')}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(
        json.dumps(
            {
                "run_id": record.run_id,
                "dataset": record.dataset,
                "stage": record.stage,
                "policy_hash": record.policy_hash,
                "delivered": delivered,
                "event": ev,
            },
            sort_keys=True,
        )
    )
    tmp.replace(path)
    return path


def import_spool(conn: psycopg.Connection) -> int:
    """Move spooled events into the store (each file removed once its row is committed)."""
    folder = spool_dir()
    if not folder.is_dir():
        return 0
    moved = 0
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text())
        record = EventRecord(
            run_id=data["run_id"],
            dataset=data["dataset"],
            stage=data["stage"],
            policy_hash=data.get("policy_hash"),
            event=data["event"],
        )
        store_event(conn, record, delivered=data.get("delivered"))
        if not conn.autocommit:
            conn.commit()
        path.unlink()
        moved += 1
    if moved:
        log.info("moved %d spooled lineage event(s) into the governance store", moved)
    return moved
