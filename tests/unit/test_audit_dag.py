"""The audit DAG's shape and schedule, as Airflow parses them."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from veilflow.airflow.audit_dag import (
    AUDIT_DAG_ID,
    DEFAULT_SCHEDULE,
    audit_schedule,
    build_audit_dag,
)

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "veilflow_audit.py"


def test_verify_follows_the_import_and_either_failing_fails_the_run() -> None:
    dag = build_audit_dag("@hourly")
    assert dag.dag_id == AUDIT_DAG_ID
    verify, done = dag.get_task("verify_chain"), dag.get_task("all_checked")
    assert verify.upstream_task_ids == {"import_denials"}
    assert verify.trigger_rule == "all_done"  # the chain is checked even if the import fails
    assert done.upstream_task_ids == {"import_denials", "verify_chain"}
    assert done.trigger_rule == "all_success" and not done.downstream_task_ids
    assert verify.retries == 0  # a broken chain does not mend
    assert dag.max_active_runs == 1 and not dag.catchup


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, DEFAULT_SCHEDULE), ("", DEFAULT_SCHEDULE), ("@daily", "@daily"), ("OFF", None)],
)
def test_the_schedule_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str | None, expected: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("VEILFLOW_AUDIT_SCHEDULE", raising=False)
    else:
        monkeypatch.setenv("VEILFLOW_AUDIT_SCHEDULE", value)
    assert audit_schedule() == expected


def test_the_dag_file_defines_the_dag_unless_switched_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VEILFLOW_AUDIT_SCHEDULE", "@daily")
    assert AUDIT_DAG_ID in runpy.run_path(str(DAG_FILE))
    monkeypatch.setenv("VEILFLOW_AUDIT_SCHEDULE", "off")
    assert AUDIT_DAG_ID not in runpy.run_path(str(DAG_FILE))


def test_an_unknown_job_is_refused() -> None:
    from veilflow.airflow.audit_dag import VeilflowAuditOperator

    with pytest.raises(ValueError, match="unknown audit job"):
        VeilflowAuditOperator(task_id="x", job="shred")


def test_the_tasks_log_in_as_the_audit_login_when_one_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from veilflow.airflow.audit_dag import VeilflowAuditOperator
    from veilflow.errors import DatabaseUnavailable

    monkeypatch.setenv("VEILFLOW_DATABASE_URL", "postgresql://pipeline@127.0.0.1:1/veilflow")
    monkeypatch.setenv("VEILFLOW_AUDIT_DATABASE_URL", "postgresql://auditor@127.0.0.1:2/veilflow")
    op = VeilflowAuditOperator(task_id="import_denials", job="denials")
    with pytest.raises(DatabaseUnavailable, match=r"127\.0\.0\.1:2\b"):
        op.execute({})
