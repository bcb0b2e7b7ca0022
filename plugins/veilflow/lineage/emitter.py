"""The one entry point the pipeline calls: ``emit_stage``.

It builds the stage's OpenLineage event, appends it to the governance store (always), then
hands the stored JSON to the configured transports (Marquez over HTTP, files). It never
raises: lineage must not fail a run. What cannot be delivered stays pending in the store and
is reported (log + ``delivery_error``) until ``retry_pending`` delivers it.

``VEILFLOW_LINEAGE=off`` turns emission off (for measuring its cost; never in production).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg
from psycopg import sql

from veilflow.lineage.events import ParentRun, build_stage_event, event_dict
from veilflow.lineage.naming import Naming, naming_of
from veilflow.lineage.store import (
    EventRecord,
    import_spool,
    mark_delivery,
    pending_events,
    spool_event,
    store_event,
)
from veilflow.lineage.transports import Delivery, deliver, deliveries, describe_error
from veilflow.policy.model import Policy
from veilflow.zones.manifest import QuarantineEntry, RunManifest

log = logging.getLogger(__name__)

__all__ = [
    "LineageEmitter",
    "ParentRun",
    "RetryResult",
    "emit_stage",
    "lineage_enabled",
    "retry_pending",
]


class LineageEmitter(Protocol):
    """The port the stages emit through: ``emit_stage`` here, ``InMemoryLineage``
    (``veilflow.lineage.memory``) in tests."""

    def __call__(
        self,
        conn: psycopg.Connection | None,
        *,
        stage: str,
        event_type: str,
        policy: Policy,
        run_id: str,
        manifest: RunManifest | Mapping[str, Any],
        parent: ParentRun | None = None,
        error: str | None = None,
        chunk: int | None = None,
    ) -> None: ...


def lineage_enabled() -> bool:
    return os.environ.get("VEILFLOW_LINEAGE", "on").strip().lower() not in (
        "off",
        "0",
        "false",
        "no",
    )


def _policy_hash(policy: Policy, manifest: RunManifest) -> str:
    """The hash of the policy as the run recorded it at extract (else the loaded one)."""
    return manifest.policy.hash or policy.hash


def _quarantined_rows(conn: psycopg.Connection, manifest: RunManifest) -> int | None:
    q = manifest.quarantine or QuarantineEntry()
    if q.rows is not None:
        return q.rows
    table = q.table
    if not table or "." not in table:
        return None
    schema, name = table.split(".", 1)
    try:
        with conn.transaction():
            row = conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, name))
            ).fetchone()
    except psycopg.Error:
        return None
    return None if row is None else int(row[0])


def emit_stage(
    conn: psycopg.Connection | None,
    *,
    stage: str,
    event_type: str,
    policy: Policy,
    run_id: str,
    manifest: RunManifest | Mapping[str, Any],
    parent: ParentRun | None = None,
    error: str | None = None,
    chunk: int | None = None,
) -> None:
    """Emit the ``event_type`` (START/COMPLETE/FAIL) event of ``stage`` for ``run_id``.

    Call it on an idle connection (after the stage committed) so the event commits on its
    own; inside an open transaction it rides on a savepoint and commits with the caller.
    ``conn`` None opens a connection to the zones database. Never raises."""
    if not lineage_enabled():
        return
    try:
        _emit(
            conn,
            stage=stage,
            event_type=event_type,
            policy=policy,
            run_id=run_id,
            manifest=manifest,
            parent=parent,
            error=error,
            chunk=chunk,
        )
    except Exception as exc:  # lineage never fails a run
        log.error(
            "lineage: could not emit %s %s for run %s of %s: %s",
            stage,
            event_type,
            run_id,
            policy.dataset,
            describe_error(exc),
        )


def _emit(
    conn: psycopg.Connection | None,
    *,
    stage: str,
    event_type: str,
    policy: Policy,
    run_id: str,
    manifest: RunManifest | Mapping[str, Any],
    parent: ParentRun | None,
    error: str | None,
    chunk: int | None,
) -> None:
    manifest = RunManifest.of(manifest)
    own = None
    if conn is None:
        from veilflow.zones.db import connect

        try:
            conn = own = connect()
        except Exception as exc:  # the event is spooled instead
            log.error("lineage: database unavailable (%s); spooling the event", describe_error(exc))
    try:
        naming = (
            naming_of(conn.info)
            if conn is not None
            else Naming("postgres://localhost:5432", "veilflow")
        )
        rows_q = _quarantined_rows(conn, manifest) if stage == "quarantine" and conn else None
        event = event_dict(
            build_stage_event(
                policy,
                run_id,
                manifest,
                stage=stage,
                event_type=event_type,
                naming=naming,
                parent=parent,
                error=error,
                chunk=chunk,
                rows_quarantined=rows_q,
            )
        )
        record = EventRecord(
            run_id=run_id,
            dataset=policy.dataset,
            stage=stage,
            policy_hash=_policy_hash(policy, manifest),
            event=event,
        )
        config_error = None
        try:
            targets = deliveries()
        except Exception as exc:  # a bad transport config must not lose events
            targets, config_error = [], f"transport configuration: {describe_error(exc)}"
            log.error("lineage: %s; the event stays pending in the governance store", config_error)
        event_id = _store(conn, record, delivered=False if targets or config_error else None)
        if event_id is None or conn is None or (not targets and not config_error):
            return  # spooled events are delivered once imported (store first, then deliver)
        failure = deliver(event, targets) if targets else config_error
        try:
            mark_delivery(conn, event_id, failure)
            if own is not None:
                own.commit()
        except psycopg.Error as exc:
            log.error(
                "lineage: could not record the delivery of event %d: %s",
                event_id,
                describe_error(exc),
            )
    finally:
        if own is not None:
            own.close()


def _store(
    conn: psycopg.Connection | None, record: EventRecord, *, delivered: bool | None
) -> int | None:
    """Store the event; on any database failure spool it to a file. None when spooled."""
    if conn is not None:
        try:
            return store_event(conn, record, delivered=delivered)
        except psycopg.Error as exc:
            log.error(
                "lineage: the governance store refused the event (%s); spooling it",
                describe_error(exc),
            )
    path = spool_event(record, delivered=delivered)
    log.error("lineage: event kept in %s until `veilflow lineage retry` imports it", path)
    return None


@dataclass(frozen=True)
class RetryResult:
    imported: int
    delivered: int
    pending: int
    error: str | None


def retry_pending(
    conn: psycopg.Connection, *, limit: int = 1000, targets: list[Delivery] | None = None
) -> RetryResult:
    """Import spooled events, then send every pending one again (oldest first), stopping at
    the first failure so an unreachable server costs one attempt."""
    imported = import_spool(conn)
    targets = deliveries() if targets is None else targets
    todo = pending_events(conn, limit)
    if not targets:
        return RetryResult(
            imported,
            0,
            len(todo),
            "no transport configured (set OPENLINEAGE_URL, an openlineage.yml "
            "or VEILFLOW_LINEAGE_FILE_DIR)"
            if todo
            else None,
        )
    done = 0
    for event_id, event in todo:
        failure = deliver(event, targets, force=True)
        mark_delivery(conn, event_id, failure)
        if not conn.autocommit:
            conn.commit()
        if failure:
            return RetryResult(imported, done, len(todo) - done, failure)
        done += 1
    return RetryResult(imported, done, len(todo) - done, None)
