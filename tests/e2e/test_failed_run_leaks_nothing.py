"""A DAG run that fails on a bad value leaves no raw value in any record.

The source's key and the bad value are canary strings. A transform fails on that row
(``ff1`` with ``on_invalid: fail``), the DAG run fails, and then neither canary may be found
in the governance tables (the run's error and manifest, lineage, the audit log, quarantine
reasons), in the zones a run writes to, in Airflow's metadata database (XCom and every other
table) nor in the task log files Airflow's executor wrote."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql

from tests.e2e.conftest import AirflowCli

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CANARY_KEY = "CANARY-KEY-7Q2X"
CANARY_VALUE = "CANARY-VAL-9M4T"  # letters: outside the ff1 column's digits alphabet
CANARIES = (CANARY_KEY, CANARY_VALUE)

POLICY = """\
dataset: accounts
description: Accounts with one card number FF1 cannot take.
source: {table: restricted.accounts, key: account_id}
target: {table: anonymized.accounts}
chunk_rows: 100
columns:
  account_id: {action: tokenize}
  card: {action: ff1, alphabet: digits, on_invalid: fail}
"""


def tables_holding(conn: psycopg.Connection, schemas: tuple[str, ...]) -> dict[str, int]:
    """Rows of every table in ``schemas`` whose text form holds a canary, by table."""
    tables = conn.execute(
        "SELECT schemaname, tablename FROM pg_tables WHERE schemaname = ANY(%s) ORDER BY 1, 2",
        (list(schemas),),
    ).fetchall()
    assert tables, f"no tables in {schemas}"
    found = {}
    for schema, table in tables:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {} t WHERE t::text LIKE ANY(%s)").format(
                sql.Identifier(schema, table)
            ),
            ([f"%{c}%" for c in CANARIES],),
        ).fetchone()
        if row and row[0]:
            found[f"{schema}.{table}"] = int(row[0])
    return found


def files_holding(folder: Path) -> list[str]:
    return [
        str(p)
        for p in folder.rglob("*")
        if p.is_file() and any(c in p.read_text(errors="replace") for c in CANARIES)
    ]


@contextmanager
def execution_api(env: dict[str, str], home: Path) -> Iterator[dict[str, str]]:
    """An api-server for the executor's task processes (they report to the Execution API,
    as in production); yields ``env`` for processes that use it. Stopped at the end."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = {
        **env,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
    }
    log = home / "api-server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            ["airflow", "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, log.read_text(errors="replace")[-3000:]
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=3)
                if health.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(2)
        yield env
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)


def test_a_failed_run_leaves_no_raw_value_in_any_record(
    airflow_cli: tuple[AirflowCli, Path],
    airflow_session: dict[str, str],
    pg_server: str,
    zones_db: str,
    conn: psycopg.Connection,
    tmp_path: Path,
) -> None:
    from veilflow.zones.db import with_database

    run, policies = airflow_cli
    conn.execute("CREATE TABLE restricted.accounts (account_id text PRIMARY KEY, card text)")
    conn.execute(
        "INSERT INTO restricted.accounts SELECT 'acct-' || lpad(i::text, 4, '0'),"
        " lpad((i * 7919)::text, 10, '0') FROM generate_series(1, 299) i"
    )
    conn.execute("INSERT INTO restricted.accounts VALUES (%s, %s)", CANARIES)
    (policies / "accounts.yaml").write_text(POLICY)
    assert run("dags", "reserialize").returncode == 0

    # Through the executor, so each task runs as Airflow runs it in production: a task
    # process whose log goes through its supervisor into a log file.
    env = {**airflow_session, "VEILFLOW_DATABASE_URL": zones_db, "VEILFLOW_POLICIES": str(policies)}
    with execution_api(env, tmp_path) as env:
        out = subprocess.run(
            ["airflow", "dags", "test", "veilflow_accounts", "--use-executor"],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    cli_output = out.stdout + out.stderr
    assert "state=failed" in cli_output, cli_output[-4000:]

    # The run failed on that row, and its record says where without saying what.
    status, error = conn.execute("SELECT status, error FROM governance.runs").fetchone() or (
        "no run recorded",
        "",
    )
    assert status == "failed", cli_output[-4000:]
    assert "column 'card': 1 value(s) cannot be FF1-encrypted" in error
    assert "snapshot row " in error

    # Nothing holds a canary: not a governance record, not the zones a run writes to.
    assert tables_holding(conn, ("governance", "staging", "anonymized", "quarantine")) == {}
    # The check does find it where it belongs.
    assert tables_holding(conn, ("restricted",)) == {"restricted.accounts": 1}

    # Nor Airflow's metadata database: XCom, and every other table.
    with psycopg.connect(with_database(pg_server, "airflow_test")) as airflow_db:
        xcoms = airflow_db.execute(
            "SELECT count(*) FROM xcom WHERE dag_id = 'veilflow_accounts'"
        ).fetchone()
        assert xcoms is not None and xcoms[0] > 0  # extract's chunk references, at least
        assert tables_holding(airflow_db, ("public",)) == {}

    # Nor the task logs. They are there, and the transform task's says what failed.
    logs = Path(airflow_session["AIRFLOW_HOME"]) / "logs"
    transform_logs = list(logs.rglob("dag_id=veilflow_accounts/**/task_id=transform/**/*.log"))
    assert transform_logs, sorted(str(p) for p in logs.rglob("*"))[:50]
    assert any("snapshot row " in p.read_text() for p in transform_logs)
    assert files_holding(logs) == []
    assert not any(c in cli_output for c in CANARIES)
