"""The audit DAG (``veilflow_audit``): the audit log's housekeeping, on a schedule.

    import_denials ──► verify_chain ──► all_checked
          └─────────────────────────────────┘

``import_denials`` appends plain-SQL privilege refusals from the server log as ``sql.denied``
rows; ``verify_chain`` then walks the whole hash chain, imported rows included, and runs even
when the import failed (a login that may not read the server log still gets its chain
checked). ``all_checked`` succeeds only when both did, so either failing fails the DAG run
(and whatever alerting the deployment has on failed runs). ``verify_chain`` returns the chain's length
and head hash as its XCom: Airflow keeps it in its own metadata database, outside the audit
log, and the next run checks that the chain still holds it, which catches the one change a
chain cannot show on its own: its newest rows removed.

``VEILFLOW_AUDIT_SCHEDULE`` sets the schedule (cron or preset, default every 15 minutes);
``off`` leaves the DAG out. ``VEILFLOW_AUDIT_DATABASE_URL`` is the login the tasks use
(default: the audit service login, ``veilflow_audit_svc`` on the embedded server): reading
the server log needs the rights ``veilflow.vault.denials.LOG_READER_RIGHTS`` names, which
read any file under the data directory and which the pipeline's own login does not have.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta
from typing import Any

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, BaseOperator

log = logging.getLogger(__name__)

AUDIT_DAG_ID = "veilflow_audit"
DEFAULT_SCHEDULE = "*/15 * * * *"
VERIFY_TASK = "verify_chain"


def audit_schedule() -> str | None:
    """The schedule from ``VEILFLOW_AUDIT_SCHEDULE``; None when it says ``off``."""
    value = os.environ.get("VEILFLOW_AUDIT_SCHEDULE", "").strip() or DEFAULT_SCHEDULE
    return None if value.lower() == "off" else value


class VeilflowAuditOperator(BaseOperator):
    """One housekeeping job on the audit log: ``denials`` or ``verify``."""

    ui_color = "#f3ecfb"

    def __init__(self, *, job: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if job not in ("denials", "verify"):
            raise ValueError(f"unknown audit job {job!r}")
        self.job = job

    def execute(self, context: Any) -> Any:
        from veilflow.zones.db import connect

        with connect(duty="audit") as conn:
            if self.job == "denials":
                return _import_denials(conn)
            earlier = context["ti"].xcom_pull(task_ids=VERIFY_TASK, include_prior_dates=True)
            return _verify(conn, earlier)


def _import_denials(conn: Any) -> dict[str, int]:
    from veilflow.vault.denials import import_denials

    result = import_denials(conn)
    log.info("%s", result)
    return {"imported": result.imported, "files": result.files}


def _verify(conn: Any, earlier: Any) -> dict[str, Any]:
    """Verify the chain and the previous run's anchor; the new anchor is the XCom."""
    from airflow.sdk.exceptions import AirflowFailException

    from veilflow.vault.audit import Anchor, anchor_broken, verify

    report = verify(conn)
    if not report.ok:
        raise AirflowFailException(report.failure())
    if isinstance(earlier, dict) and "rows" in earlier and "head" in earlier:
        anchor = Anchor(int(earlier["rows"]), str(earlier["head"]))
        why = anchor_broken(conn, anchor)
        if why is not None:
            raise AirflowFailException(f"audit chain does not hold the previous anchor: {why}")
        log.info("audit chain holds the previous anchor (%d row(s))", anchor.rows)
    log.info("audit chain intact: %d row(s), head %s", report.rows, report.head)
    return {"rows": report.rows, "head": report.head}


def build_audit_dag(schedule: str | None = DEFAULT_SCHEDULE) -> DAG:
    """The audit DAG on ``schedule`` (None: only when triggered)."""
    with DAG(
        dag_id=AUDIT_DAG_ID,
        description="Import SQL refusals into the audit log and verify its hash chain",
        schedule=schedule,
        start_date=datetime(2024, 1, 1),
        catchup=False,
        max_active_runs=1,
        tags=["veilflow", "audit"],
        doc_md=__doc__,
        default_args={"retries": 1, "retry_delay": timedelta(seconds=30)},
    ) as dag:
        denials = VeilflowAuditOperator(task_id="import_denials", job="denials")
        # A broken chain does not mend on a retry.
        verify = VeilflowAuditOperator(
            task_id=VERIFY_TASK, job="verify", retries=0, trigger_rule="all_done"
        )
        done = EmptyOperator(task_id="all_checked")
        denials >> verify >> done
        denials >> done
    return dag
