"""How a run ends when a task fails for good: a failed chunk marks the run failed (its
siblings may still be running); once no task works on the run's tables, ``fail_run``
quarantines the candidate, records the run finished and drops its staging."""

from __future__ import annotations

import logging

from veilflow.errors import VeilflowError
from veilflow.lineage.events import ParentRun
from veilflow.pipeline.stage_context import StageContext
from veilflow.policy.model import Policy
from veilflow.zones import runs
from veilflow.zones.db import connect

log = logging.getLogger(__name__)


def fail_chunk(
    policy: Policy, run_id: str, chunk: int, error: str, parent: ParentRun | None = None
) -> None:
    """Record that chunk ``chunk`` failed for good: the run becomes failed (the first error
    recorded is kept), its tables stay. Other chunks of the run may still be reading the
    snapshot and writing the candidate; ``fail_run`` quarantines and drops once every chunk
    has stopped (in a DAG, the ``cleanup`` teardown, which waits for all mapped tasks).
    Never raises for a database that is down: the original error is what matters."""
    try:
        with connect() as conn:
            runs.mark_failed(conn, run_id, error)
            conn.commit()
            stage = StageContext(conn, policy, run_id, "transform", parent, chunk)
            stage.emit("FAIL", runs.load_manifest(conn, run_id), error=error)
    except VeilflowError as exc:
        log.error("could not record the failure of run %s chunk %d: %s", run_id, chunk, exc)


def fail_run(policy: Policy, run_id: str, error: str, parent: ParentRun | None = None) -> None:
    """Finish a failed run: record it, quarantine its candidate (if any) and drop its raw
    snapshot. Call it only once no task of the run works on its tables any more. An error a
    chunk recorded (``fail_chunk``) is kept over ``error``; a run already finished is left
    as it is, so a second call records nothing twice. Never raises for a database that is
    down: the original error is what matters."""
    try:
        with connect() as conn:
            stage = StageContext(conn, policy, run_id, "quarantine", parent)
            state = runs.run_state(conn, run_id)
            if state is None:  # stopped before extract recorded the run (drift, bad source)
                stage.audit("error", None, status="failed", error=error[:300])
                return
            if state.status in ("published", "quarantined") or (
                state.status == "failed" and state.finished
            ):
                return
            error = state.error or error
            stage.quarantine(
                runs.load_manifest(conn, run_id),
                [{"check": "run_failed", "error": error}],
                status="failed",
                error=error,
                event_type="FAIL",
                audit={"error": error[:300]},
            )
    except VeilflowError as exc:
        log.error("could not record the failure of run %s: %s", run_id, exc)
