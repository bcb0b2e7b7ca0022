"""docker-compose.yml, validated statically (no Docker engine here) by docker-compose itself,
and checked to be the topology and the role model the README describes: each container logs
in as its own login, only airflow-init holds the server's superuser, every secret comes from
the environment and none is optional."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest
import yaml

from tests.tooling import require

ROOT = Path(__file__).resolve().parents[2]
INIT_SCRIPT = ROOT / "docker" / "postgres-init.sh"
AIRFLOW_SERVICES = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
}
SUPERUSER = "postgres"

#: Every variable the stack needs, each set to a throwaway value of its own, so a value found
#: in the rendered file tells which variable it came from.
SECRETS = {
    "VEILFLOW_MASTER_KEY": "dGVzdA==",
    "AIRFLOW_JWT_SECRET": "jwt-" + "x" * 64,
    "POSTGRES_PASSWORD": "throwaway-superuser",
    "AIRFLOW_DB_PASSWORD": "throwaway-airflow",
    "MARQUEZ_DB_PASSWORD": "throwaway-marquez",
    "VEILFLOW_PIPELINE_PASSWORD": "throwaway-pipeline",
    "VEILFLOW_UI_PASSWORD": "throwaway-ui",
    "VEILFLOW_AUDIT_PASSWORD": "throwaway-audit",
    "REDIS_PASSWORD": "throwaway-redis",
}
PASSWORD_OF = {
    SUPERUSER: "POSTGRES_PASSWORD",
    "airflow": "AIRFLOW_DB_PASSWORD",
    "marquez": "MARQUEZ_DB_PASSWORD",
    "veilflow_pipeline_svc": "VEILFLOW_PIPELINE_PASSWORD",
    "veilflow_ui_svc": "VEILFLOW_UI_PASSWORD",
    "veilflow_audit_svc": "VEILFLOW_AUDIT_PASSWORD",
}


def _docker_compose() -> str:
    exe = shutil.which("docker-compose")
    require(exe is not None, "docker-compose", "scripts/system-deps.sh installs it")
    assert exe is not None
    return exe


def compose_config(
    secrets: dict[str, str], tmp_path: Path, *, quiet: bool = False
) -> subprocess.CompletedProcess[str]:
    """``docker-compose config`` with exactly ``secrets`` of the stack's variables set: an
    empty env file and a cleaned environment, so a developer's ``.env`` or shell cannot
    supply a missing one."""
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    env = {k: v for k, v in os.environ.items() if k not in SECRETS} | secrets
    return subprocess.run(
        [
            _docker_compose(),
            "--env-file",
            str(env_file),
            "-f",
            str(ROOT / "docker-compose.yml"),
            "config",
            *(["-q"] if quiet else []),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def compose(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = compose_config(SECRETS, tmp_path_factory.mktemp("compose"))
    assert out.returncode == 0, out.stderr
    parsed: dict[str, Any] = yaml.safe_load(out.stdout)
    return parsed


def _env(compose: dict[str, Any], service: str) -> dict[str, str]:
    return {k: str(v) for k, v in compose["services"][service].get("environment", {}).items()}


def _postgres_urls(env: dict[str, str]) -> dict[str, Any]:
    """The variables of ``env`` that hold a PostgreSQL URL, parsed."""
    urls = {}
    for name, value in env.items():
        url = urlparse(value.removeprefix("db+"))
        if url.scheme.startswith("postgresql"):
            urls[name] = url
    return urls


def _bind(volume: str | dict[str, str]) -> tuple[str, str]:
    """(target, source path relative to the checkout) of a volume in short or long syntax."""
    if isinstance(volume, dict):
        return volume["target"], volume["source"]
    source, target = volume.split(":")[:2]
    return target, source


def test_services_are_the_documented_stack(compose: dict[str, Any]) -> None:
    services = set(compose["services"])
    assert AIRFLOW_SERVICES | {"postgres", "redis", "marquez", "airflow-init"} <= services
    assert "veilflow-scrub" in services
    readme = (ROOT / "README.md").read_text()
    for name in AIRFLOW_SERVICES | {"postgres", "redis", "marquez", "veilflow-scrub"}:
        assert name in readme, f"README does not mention service {name}"


def test_airflow_runs_celery_against_postgres_and_redis(compose: dict[str, Any]) -> None:
    for name in AIRFLOW_SERVICES:
        env = _env(compose, name)
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
        assert env["VEILFLOW_DATABASE_URL"].startswith("postgresql://")
    assert compose["services"]["airflow-worker"]["command"] in (
        "celery worker",
        ["celery", "worker"],
    )


def test_the_broker_requires_a_password(compose: dict[str, Any]) -> None:
    """Redis starts with ``requirepass``; the Airflow containers' broker URL and the health
    check carry that same password, and no other container gets it."""
    redis = compose["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--requirepass") + 1] == SECRETS["REDIS_PASSWORD"]
    assert _env(compose, "redis")["REDISCLI_AUTH"] == SECRETS["REDIS_PASSWORD"]
    for service in compose["services"]:
        env = _env(compose, service)
        if service in AIRFLOW_SERVICES | {"airflow-init"}:
            broker = urlparse(env["AIRFLOW__CELERY__BROKER_URL"])
            assert (broker.hostname, broker.password) == ("redis", SECRETS["REDIS_PASSWORD"])
        elif service != "redis":
            assert SECRETS["REDIS_PASSWORD"] not in str(env), service


def test_the_servers_superuser_is_postgres_with_a_password_from_the_environment(
    compose: dict[str, Any],
) -> None:
    env = _env(compose, "postgres")
    assert env["POSTGRES_USER"] == SUPERUSER
    assert env["POSTGRES_PASSWORD"] == SECRETS["POSTGRES_PASSWORD"]
    # The init script's passwords, and nothing else the server does not need.
    assert env["AIRFLOW_DB_PASSWORD"] == SECRETS["AIRFLOW_DB_PASSWORD"]
    assert env["MARQUEZ_DB_PASSWORD"] == SECRETS["MARQUEZ_DB_PASSWORD"]
    assert not {k for k in env if k.startswith("VEILFLOW_")}
    assert compose["services"]["postgres"]["healthcheck"]["test"][-1] == SUPERUSER


def test_no_container_but_airflow_init_holds_the_superuser(compose: dict[str, Any]) -> None:
    """Neither its name in a URL nor its password anywhere, in any container but the
    server itself and airflow-init, and there only in VEILFLOW_MIGRATE_DATABASE_URL."""
    superuser_password = SECRETS["POSTGRES_PASSWORD"]
    holders = {}
    for service in compose["services"]:
        env = _env(compose, service)
        logins = {name: url.username for name, url in _postgres_urls(env).items()}
        with_password = {name for name, value in env.items() if superuser_password in value}
        superuser_urls = {name for name, login in logins.items() if login == SUPERUSER}
        if superuser_urls or with_password:
            holders[service] = superuser_urls | with_password
    assert holders == {
        "postgres": {"POSTGRES_PASSWORD"},
        "airflow-init": {"VEILFLOW_MIGRATE_DATABASE_URL"},
    }


def test_each_container_logs_in_as_its_own_login(compose: dict[str, Any]) -> None:
    """Per container, which login each of its URLs names, on which database, with the
    password of that very login's variable."""
    zones = {"VEILFLOW_DATABASE_URL": ("veilflow_pipeline_svc", "veilflow")}
    airflow = {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": ("airflow", "airflow"),
        "AIRFLOW__CELERY__RESULT_BACKEND": ("airflow", "airflow"),
    }
    expected = {name: airflow | zones for name in AIRFLOW_SERVICES | {"airflow-init"}}
    expected["airflow-init"] |= {"VEILFLOW_MIGRATE_DATABASE_URL": (SUPERUSER, "veilflow")}
    expected["airflow-apiserver"] |= {"VEILFLOW_UI_DATABASE_URL": ("veilflow_ui_svc", "veilflow")}
    expected["airflow-worker"] |= {
        "VEILFLOW_AUDIT_DATABASE_URL": ("veilflow_audit_svc", "veilflow")
    }
    expected["veilflow-scrub"] = zones
    for service, wanted in expected.items():
        urls = _postgres_urls(_env(compose, service))
        found = {name: (url.username, url.path.lstrip("/")) for name, url in urls.items()}
        assert found == wanted, service
        for name, url in urls.items():
            assert unquote(url.password or "") == SECRETS[PASSWORD_OF[url.username]], (
                service,
                name,
            )
            assert (url.hostname, url.port) == ("postgres", 5432), (service, name)

    marquez = _env(compose, "marquez")
    assert (marquez["POSTGRES_USER"], marquez["POSTGRES_DB"]) == ("marquez", "marquez")
    assert marquez["POSTGRES_PASSWORD"] == SECRETS["MARQUEZ_DB_PASSWORD"]


def test_only_airflow_init_sets_the_service_logins_passwords(compose: dict[str, Any]) -> None:
    """`veilflow db upgrade` reads them to create the logins; every other container holds at
    most its own login's password, inside its URL."""
    variables = {"VEILFLOW_PIPELINE_PASSWORD", "VEILFLOW_UI_PASSWORD", "VEILFLOW_AUDIT_PASSWORD"}
    for service in compose["services"]:
        env = _env(compose, service)
        if service == "airflow-init":
            assert {k: env[k] for k in variables} == {k: SECRETS[k] for k in variables}
        else:
            assert not variables & set(env), service
    assert SECRETS["VEILFLOW_UI_PASSWORD"] not in str(_env(compose, "airflow-worker"))
    assert SECRETS["VEILFLOW_AUDIT_PASSWORD"] not in str(_env(compose, "airflow-apiserver"))
    for service in AIRFLOW_SERVICES - {"airflow-apiserver", "airflow-worker"}:
        text = str(_env(compose, service))
        assert SECRETS["VEILFLOW_UI_PASSWORD"] not in text, service
        assert SECRETS["VEILFLOW_AUDIT_PASSWORD"] not in text, service


def test_the_init_script_is_the_servers_and_valid_shell(compose: dict[str, Any]) -> None:
    mounts = dict(_bind(v) for v in compose["services"]["postgres"]["volumes"])
    target = next(t for t in mounts if t.startswith("/docker-entrypoint-initdb.d/"))
    # The image runs *.sh (and *.sql as plain SQL, which could not take the passwords).
    assert target.endswith(".sh")
    assert Path(mounts[target]).resolve() == INIT_SCRIPT
    assert not list((ROOT / "docker").glob("*.sql")), "a SQL init script is left in docker/"
    # Executable: the image runs it in a shell of its own instead of sourcing it.
    assert INIT_SCRIPT.stat().st_mode & stat.S_IXUSR
    checked = subprocess.run(
        ["bash", "-n", str(INIT_SCRIPT)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize("variable", ["AIRFLOW_DB_PASSWORD", "MARQUEZ_DB_PASSWORD"])
def test_the_init_script_stops_before_the_server_without_a_password(
    variable: str, tmp_path: Path
) -> None:
    """Run with an empty PATH: had it reached psql, the error would name psql, not the
    variable."""
    env = {"AIRFLOW_DB_PASSWORD": "a", "MARQUEZ_DB_PASSWORD": "m", variable: "", "PATH": ""}
    bash = shutil.which("bash") or "/bin/bash"
    out = subprocess.run(
        [bash, str(INIT_SCRIPT)], env=env, capture_output=True, text=True, check=False
    )
    assert out.returncode != 0
    assert variable in out.stderr and "psql" not in out.stderr, out.stderr


#: A literal after PASSWORD in SQL ('…' or "…"), as opposed to a psql variable (:'name').
_SQL_PASSWORD_LITERAL = re.compile(r"PASSWORD\s+(E?'|\"|\$\$)", re.IGNORECASE)
_FROM_ENVIRONMENT = re.compile(r"^\$\{[A-Z][A-Z0-9_]*:\?[^}]*\}$")


def _strings(node: object, path: str = "") -> list[tuple[str, str]]:
    """(where, value) of every scalar in a YAML document, keys included in ``where``."""
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in _strings(v, f"{path}.{k}")]
    if isinstance(node, list):
        return [s for i, v in enumerate(node) for s in _strings(v, f"{path}[{i}]")]
    return [(path, str(node))] if node is not None else []


def test_no_password_is_written_in_the_repository() -> None:
    """In docker-compose.yml every password (a *PASSWORD variable, a URL's) is a required
    variable, and docker/ gives none to SQL as a literal."""
    document = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    passwords = []
    for where, value in _strings(document):
        if where.upper().endswith("PASSWORD"):
            passwords.append((where, value))
        for found in re.finditer(r"://[^:/@\s]+:(\$\{[^}]*\}|[^@\s]*)@", value):
            passwords.append((where, found.group(1)))
    assert passwords, "no password found at all: the test no longer reads the file"
    for where, value in passwords:
        assert _FROM_ENVIRONMENT.match(value), f"{where}: {value!r} is not ${{VAR:?message}}"
    for path in sorted((ROOT / "docker").iterdir()):
        text = path.read_text()
        assert not _SQL_PASSWORD_LITERAL.search(text), f"{path.name}: a password literal"
        for default in re.finditer(r"\$\{(\w*PASSWORD\w*):?[-=]([^}]*)\}", text):
            pytest.fail(f"{path.name}: {default.group(1)} has a default")


def _required() -> set[str]:
    text = (ROOT / "docker-compose.yml").read_text()
    return set(re.findall(r"\$\{([A-Z][A-Z0-9_]*):\?", text))


def test_every_secret_is_required_and_exported_in_the_readme() -> None:
    assert _required() == set(SECRETS)
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Production-like stack", 1)[1].split("\n## ", 1)[0]
    commands = section.split("```bash", 1)[1].split("```", 1)[0]
    exported = set(re.findall(r"\b([A-Z][A-Z0-9_]*)=", commands))
    assert set(SECRETS) <= exported


@pytest.mark.parametrize("value", [None, ""], ids=["unset", "empty"])
@pytest.mark.parametrize("variable", sorted(SECRETS))
def test_config_fails_without_a_secret(variable: str, value: str | None, tmp_path: Path) -> None:
    secrets = {k: v for k, v in SECRETS.items() if k != variable}
    if value is not None:
        secrets[variable] = value
    out = compose_config(secrets, tmp_path, quiet=True)
    assert out.returncode != 0 and variable in out.stderr, out.stderr


def test_dags_plugins_and_policies_are_mounted(compose: dict[str, Any]) -> None:
    for name in AIRFLOW_SERVICES:
        targets = {t: Path(s).name for t, s in map(_bind, compose["services"][name]["volumes"])}
        assert targets["/opt/airflow/dags"] == "dags"
        assert targets["/opt/airflow/plugins"] == "plugins"
        assert targets["/opt/airflow/policies"] == "policies"


def test_the_scrub_api_runs_as_the_pipeline_login_on_read_only_policies(
    compose: dict[str, Any],
) -> None:
    scrub = compose["services"]["veilflow-scrub"]
    assert "veilflow serve" in " ".join(scrub["command"])
    env = _env(compose, "veilflow-scrub")
    assert not {k for k in env if k.startswith(("AIRFLOW__", "VEILFLOW_MIGRATE", "VEILFLOW_UI"))}
    for volume in scrub["volumes"]:
        read_only = volume.get("read_only") if isinstance(volume, dict) else volume.endswith(":ro")
        assert read_only, volume
    assert scrub["healthcheck"]["test"][-1].endswith(":8088/health")
