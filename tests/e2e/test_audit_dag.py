"""The audit DAG, run by Airflow (`airflow dags test veilflow_audit`): it brings a plain-SQL
refusal into the audit log, verifies the chain, keeps an anchor in Airflow's own database,
and its next run fails when the newest audit rows have been removed."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from tests.conftest import make_login
from tests.e2e.conftest import AirflowCli
from veilflow.airflow.audit_dag import AUDIT_DAG_ID
from veilflow.vault import audit
from veilflow.vault.denials import ACTION
from veilflow.zones.db import connect

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def refusal_logged(conn: psycopg.Connection, login: str, timeout: float = 20) -> None:
    """Wait until the server log holds the refusal of ``login`` (the logging collector
    writes a moment after the error)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logs = conn.execute(
            "SELECT string_agg(pg_read_file(current_setting('log_directory') || '/' || name),"
            " '') FROM pg_ls_logdir() WHERE name LIKE '%.json'"
        ).fetchone()
        if logs and logs[0] and f'"user":"{login}"' in logs[0] and "42501" in logs[0]:
            return
        time.sleep(0.2)
    raise AssertionError(f"no refusal of {login} in the server log after {timeout} s")


def test_the_audit_dag_imports_refusals_and_catches_removed_rows(
    airflow_cli: tuple[AirflowCli, Path], zones_db: str, conn: psycopg.Connection
) -> None:
    run, _ = airflow_cli
    for i in range(2):
        audit.record(conn, "policy.run", target=f"dataset_{i}", details={"status": "published"})
    make_login(conn, "mle_dag", "veilflow_ml_engineer")
    with connect(zones_db, user="mle_dag", autocommit=True) as mle:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            mle.execute("SELECT * FROM restricted.customers")
    refusal_logged(conn, "mle_dag")

    assert run("dags", "reserialize").returncode == 0
    first = run("dags", "test", AUDIT_DAG_ID)
    log = first.stdout + first.stderr
    assert first.returncode == 0, log[-4000:]
    assert "state=success" in log
    denied = conn.execute(
        "SELECT details->>'login' FROM governance.audit_log WHERE action = %s", (ACTION,)
    ).fetchall()
    assert ("mle_dag",) in denied
    assert audit.verify(conn).rows == 3  # the anchor the run kept covers the imported row

    # A superuser removes the newest two rows behind the triggers. The shorter chain verifies
    # on its own; the next import even brings the refusal back from the server log (as row
    # 2), but the chain no longer holds the anchor the first run kept.
    conn.execute("ALTER TABLE governance.audit_log DISABLE TRIGGER audit_log_append_only")
    conn.execute("DELETE FROM governance.audit_log WHERE seq >= 2")
    conn.execute("ALTER TABLE governance.audit_log ENABLE TRIGGER audit_log_append_only")
    assert audit.verify(conn).ok

    second = run("dags", "test", AUDIT_DAG_ID)
    log = second.stdout + second.stderr
    assert "does not hold the previous anchor" in log, log[-4000:]
    assert "row 3, the head an earlier check saw, is gone: the chain now has 2 row(s)" in log
    assert "state=failed" in log
