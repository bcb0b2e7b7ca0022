"""The audit log's housekeeping DAG (``veilflow_audit``): SQL refusals imported, hash chain
verified. All logic lives in ``veilflow.airflow.audit_dag``."""

from __future__ import annotations

from veilflow.airflow.audit_dag import AUDIT_DAG_ID, audit_schedule, build_audit_dag

_schedule = audit_schedule()
if _schedule is not None:
    globals()[AUDIT_DAG_ID] = build_audit_dag(_schedule)
