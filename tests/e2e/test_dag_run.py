"""The customers policy as a real Airflow DAG: parsed by Airflow, run with `airflow dags test`
(dynamically mapped transform tasks), published, recorded."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from tests.conftest import small_data_policy
from tests.e2e.conftest import AirflowCli
from veilflow.cli import app

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def write_policy(folder: Path, source: Path, chunk_rows: int = 700) -> None:
    text = source.read_text().replace("chunk_rows: 50000", f"chunk_rows: {chunk_rows}")
    (folder / "customers.yaml").write_text(text)


def test_one_dag_per_policy_imports_cleanly(
    airflow_cli: tuple[AirflowCli, Path], customers_policy_path: Path
) -> None:
    run, policies = airflow_cli
    write_policy(policies, customers_policy_path)
    (policies / "orders.yaml").write_text(
        customers_policy_path.read_text()
        .replace("dataset: customers", "dataset: orders")
        .replace("anonymized.customers", "anonymized.orders")
    )
    out = run("dags", "reserialize")
    assert out.returncode == 0, out.stderr[-2000:]
    listed = run("dags", "list", "--output", "plain")
    assert "veilflow_customers" in listed.stdout and "veilflow_orders" in listed.stdout
    assert "veilflow_audit" in listed.stdout  # the audit log's housekeeping DAG
    errors = run("dags", "list-import-errors", "--output", "plain")
    assert "veilflow" not in errors.stdout


def test_a_broken_policy_is_an_import_error_and_the_good_dag_stays(
    airflow_cli: tuple[AirflowCli, Path], customers_policy_path: Path, pg_server: str
) -> None:
    """Through Airflow's own parsing into its metadata database, where an import error of a
    file also marks every DAG of that file stale (retired from the scheduler and the UI)."""
    from veilflow.zones.db import with_database

    run, policies = airflow_cli
    write_policy(policies, customers_policy_path)
    (policies / "orders.yaml").write_text(
        customers_policy_path.read_text()
        .replace("dataset: customers", "dataset: orders")
        .replace("anonymized.customers", "anonymized.orders")
        .replace("chunk_rows: 700", "chunk_rows: lots")
    )
    out = run("dags", "reserialize")
    assert out.returncode == 0, out.stderr[-2000:]
    with psycopg.connect(with_database(pg_server, "airflow_test")) as meta:
        customers = meta.execute(
            "SELECT is_stale, has_import_errors FROM dag WHERE dag_id = 'veilflow_customers'"
        ).fetchone()
    assert customers == (False, False)
    errors = run("dags", "list-import-errors", "--output", "plain")
    assert "veilflow_policy_errors.py" in errors.stdout, errors.stdout + errors.stderr
    assert f"{policies / 'orders.yaml'}:9, field 'chunk_rows'" in errors.stdout
    assert "veilflow_policies.py" not in errors.stdout


def test_dag_runs_publish_through_mapped_chunks_then_append_as_the_demo_does(
    airflow_cli: tuple[AirflowCli, Path], seeded_db: str, demo_policy_path: Path
) -> None:
    """The demo's sequence (`make demo`): a full run of the incremental demo policy, the
    source grows (`veilflow seed --append`), the next DAG run appends the new rows, and
    `veilflow risk history` shows one point per run."""
    run, policies = airflow_cli
    text = small_data_policy(demo_policy_path.read_text(), incremental=True)
    assert "\nincremental: {cursor: customer_id}\n" in text, "the demo's policy is incremental"
    (policies / "customers.yaml").write_text(text)
    assert run("dags", "reserialize").returncode == 0
    out = run("dags", "test", "veilflow_customers", "--conf", '{"full": true}')
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    assert "state=success" in log
    assert "gate: no raw value survives: " in log  # the validate task logs the gate's progress
    # Three chunks of 700 rows: three mapped transform task instances ran.
    assert log.count("task_id='transform'") >= 3
    with psycopg.connect(seeded_db) as conn:
        assert conn.execute("SELECT count(*) FROM anonymized.customers").fetchone() == (2000,)
        runs = conn.execute("SELECT run_id, status, rows_out FROM governance.runs").fetchall()
        chunks = conn.execute("SELECT count(*) FROM governance.run_chunks").fetchone()
        first = conn.execute("SELECT manifest->'incremental' FROM governance.runs").fetchone()
    assert len(runs) == 1 and runs[0][0].startswith("customers:manual__")
    assert runs[0][1:] == ("published", 2000)
    assert chunks == (3,)
    assert (first[0]["mode"], first[0]["reason"]) == ("full", "a full run was asked for")

    added = CliRunner().invoke(app, ["seed", "--rows", "300", "--append", "--seed", "7"])
    assert added.exit_code == 0, added.output
    out = run("dags", "test", "veilflow_customers")
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    with psycopg.connect(seeded_db) as conn:
        second = conn.execute(
            "SELECT run_id, status, rows_in, manifest->'incremental' FROM governance.runs"
            " WHERE run_id <> %s",
            (runs[0][0],),
        ).fetchone()
        assert conn.execute("SELECT count(*) FROM anonymized.customers").fetchone() == (2300,)
    assert second is not None and second[1:3] == ("published", 300)
    inc = second[3]
    assert (inc["mode"], inc["from"], inc["to"], inc["rows_taken"]) == (
        "append",
        "2000",
        "2300",
        300,
    )

    history = CliRunner().invoke(app, ["risk", "history", "customers", "--format", "json"])
    assert history.exit_code == 0, history.output
    points = json.loads(history.output)
    assert [p["run_id"] for p in points] == [runs[0][0], second[0]]
    assert [p["rows"] for p in points] == [2000, 2300]  # k = 1: nothing suppressed
    assert all(p["passed"] for p in points)
    table = CliRunner().invoke(app, ["risk", "history", "customers"])
    assert "customers: 2 run(s)" in table.output.splitlines()[0]
