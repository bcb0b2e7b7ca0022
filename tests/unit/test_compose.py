"""docker-compose.yml, validated statically (no Docker engine here) by docker-compose itself,
and checked to be the topology the README describes."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_SERVICES = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    exe = shutil.which("docker-compose")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is missing; scripts/system-deps.sh installs it")
        pytest.skip("docker-compose not installed (apt-get install docker-compose)")
    env = {**os.environ, "VEILFLOW_MASTER_KEY": "dGVzdA==", "AIRFLOW_JWT_SECRET": "x" * 64}
    out = subprocess.run(
        [exe, "-f", str(ROOT / "docker-compose.yml"), "config"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    parsed: dict[str, Any] = yaml.safe_load(out.stdout)
    return parsed


def _bind(volume: str | dict[str, str]) -> tuple[str, str]:
    """(target, source folder name) of a volume in short or long syntax."""
    if isinstance(volume, dict):
        return volume["target"], Path(volume["source"]).name
    source, target = volume.split(":")[:2]
    return target, Path(source).name


def test_services_are_the_documented_stack(compose: dict[str, Any]) -> None:
    services = set(compose["services"])
    assert AIRFLOW_SERVICES | {"postgres", "redis", "marquez", "airflow-init"} <= services
    readme = (ROOT / "README.md").read_text()
    for name in AIRFLOW_SERVICES | {"postgres", "redis", "marquez"}:
        assert name in readme, f"README does not mention service {name}"


def test_airflow_runs_celery_against_postgres_and_redis(compose: dict[str, Any]) -> None:
    for name in AIRFLOW_SERVICES:
        env = compose["services"][name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
        assert env["VEILFLOW_DATABASE_URL"].startswith("postgresql://")
    assert compose["services"]["airflow-worker"]["command"] in (
        "celery worker",
        ["celery", "worker"],
    )


def test_the_audit_dag_reads_the_server_log_as_the_servers_superuser(
    compose: dict[str, Any],
) -> None:
    superuser = compose["services"]["postgres"]["environment"]["POSTGRES_USER"]
    for name in AIRFLOW_SERVICES:
        env = compose["services"][name]["environment"]
        audit = urlparse(env["VEILFLOW_AUDIT_DATABASE_URL"])
        zones = urlparse(env["VEILFLOW_DATABASE_URL"])
        assert audit.username == superuser != zones.username
        assert (audit.hostname, audit.path) == (zones.hostname, zones.path)


def test_dags_plugins_and_policies_are_mounted(compose: dict[str, Any]) -> None:
    for name in AIRFLOW_SERVICES:
        targets = dict(_bind(v) for v in compose["services"][name]["volumes"])
        assert targets["/opt/airflow/dags"] == "dags"
        assert targets["/opt/airflow/plugins"] == "plugins"
        assert targets["/opt/airflow/policies"] == "policies"


def test_secrets_are_required_not_defaulted() -> None:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.skip("docker-compose not installed")
    env = {k: v for k, v in os.environ.items() if k != "VEILFLOW_MASTER_KEY"}
    env["AIRFLOW_JWT_SECRET"] = "x" * 64
    out = subprocess.run(
        [exe, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert out.returncode != 0 and "VEILFLOW_MASTER_KEY" in out.stderr


def test_the_jwt_secret_is_required_too() -> None:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.skip("docker-compose not installed")
    env = {k: v for k, v in os.environ.items() if k != "AIRFLOW_JWT_SECRET"}
    env["VEILFLOW_MASTER_KEY"] = "dGVzdA=="
    out = subprocess.run(
        [exe, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert out.returncode != 0 and "AIRFLOW_JWT_SECRET" in out.stderr
