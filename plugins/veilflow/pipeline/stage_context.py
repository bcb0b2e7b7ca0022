"""What every stage of a run does around its work: emit its lineage events, audit the
run's outcome, and — for a refused or failed run — quarantine the candidate, record the
run as finished, drop its staging and say so in lineage and the audit log.

``StageContext`` holds the connection, policy, run and lineage parent a stage's task
works with, so a stage names only what differs: the event, the manifest, the error.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from veilflow.errors import VeilflowError
from veilflow.lineage.emitter import emit_stage
from veilflow.lineage.events import ParentRun
from veilflow.policy.model import Policy
from veilflow.zones import runs
from veilflow.zones.manifest import QuarantineEntry, RunManifest
from veilflow.zones.publish import quarantine_candidate
from veilflow.zones.run_tables import RunTables, drop_run_tables

log = logging.getLogger(__name__)


def audit_run(
    conn: psycopg.Connection,
    *,
    target: str,
    dataset: str,
    policy_hash: str,
    run_id: str,
    outcome: str,
    count: int | None,
    **details: Any,
) -> None:
    """Record a run's outcome in the audit log (names and counts only): a table's run, or
    a dataset's run of several tables (``target`` the dataset). Never raises for the audit
    log being unavailable: the run's own outcome is what matters."""
    from veilflow.vault.audit import record

    try:
        record(
            conn,
            "policy_run",
            target=target,
            count=count,
            outcome=outcome,
            details={"run_id": run_id, "dataset": dataset, "policy_hash": policy_hash, **details},
        )
    except VeilflowError as exc:
        log.error("could not audit run %s: %s", run_id, exc)


@dataclass(frozen=True)
class StageContext:
    """One task of one stage of a run (``chunk`` for a transform task)."""

    conn: psycopg.Connection
    policy: Policy
    run_id: str
    stage: str
    parent: ParentRun | None = None
    chunk: int | None = None

    @property
    def tables(self) -> RunTables:
        return RunTables(self.policy.dataset, self.run_id)

    def emit(
        self,
        event_type: str,
        manifest: RunManifest,
        *,
        stage: str | None = None,
        error: str | None = None,
    ) -> None:
        """The stage's lineage event (``stage`` for another stage's, as a quarantine)."""
        emit_stage(
            self.conn,
            stage=stage or self.stage,
            event_type=event_type,
            policy=self.policy,
            run_id=self.run_id,
            manifest=manifest,
            parent=self.parent,
            error=error,
            chunk=self.chunk,
        )

    def audit(self, outcome: str, count: int | None, **details: Any) -> None:
        """Record the run's outcome in the audit log (``audit_run``)."""
        audit_run(
            self.conn,
            target=self.policy.target.table,
            dataset=self.policy.dataset,
            policy_hash=self.policy.hash,
            run_id=self.run_id,
            outcome=outcome,
            count=count,
            **details,
        )

    def quarantine(
        self,
        manifest: RunManifest,
        reasons: Sequence[dict[str, Any]],
        *,
        status: str,
        error: str,
        event_type: str,
        audit: dict[str, Any] | None,
    ) -> tuple[str | None, RunManifest]:
        """End a refused (``status`` quarantined) or failed run: move its candidate to the
        quarantine zone with ``reasons``, record the run finished with ``error``, drop its
        staging, emit the quarantine event and audit the outcome. A quarantined run's
        manifest records where the candidate went; ``audit`` adds details to the audit
        entry, or is None where the caller audits (a dataset's tables, once for the
        dataset). Returns the quarantine table and the manifest as recorded."""
        table = quarantine_candidate(self.conn, self.tables, list(reasons))
        if status == "failed":
            runs.finish_failed(self.conn, self.run_id, error)
        else:
            manifest = manifest.but(quarantine=QuarantineEntry(table=table, reasons=tuple(reasons)))
            runs.save_manifest(
                self.conn, self.run_id, manifest, status=status, finished_at=True, error=error
            )
        self.conn.commit()
        drop_run_tables(self.conn, self.tables)
        self.conn.commit()
        self.emit(
            event_type,
            manifest,
            stage="quarantine",
            error=error if event_type == "FAIL" else None,
        )
        if audit is not None:
            self.audit("error", manifest.rows_in, status=status, **audit)
        return table, manifest
