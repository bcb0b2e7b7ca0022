"""Airflow for end-to-end tests: its own metadata database on the session's server, its own
AIRFLOW_HOME, and a helper to run `airflow` commands against the test's zones database."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AirflowCli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def airflow_session(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for `airflow` subprocesses, with its metadata DB migrated once."""
    from veilflow.zones.db import ensure_database, with_database

    ensure_database(pg_server, "airflow_test")
    home = tmp_path_factory.mktemp("airflow_home")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": with_database(
            pg_server, "airflow_test", driver="psycopg2"
        ),
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
    }
    out = subprocess.run(
        ["airflow", "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return env


@pytest.fixture
def airflow_cli(
    airflow_session: dict[str, str], zones_db: str, tmp_path: Path
) -> Iterator[tuple[AirflowCli, Path]]:
    """Run `airflow ...` against this test's zones DB and a private policies folder."""
    policies = tmp_path / "policies"
    policies.mkdir()

    def run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
        env = {
            **airflow_session,
            "VEILFLOW_DATABASE_URL": zones_db,
            "VEILFLOW_POLICIES": str(policies),
        }
        return subprocess.run(
            ["airflow", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    yield run, policies
