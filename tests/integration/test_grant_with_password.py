"""`access grant --create --password-file`: the new login can log in at once with the password
in the file (0600), the server holds only its SCRAM verifier, and no grant can set the
password of a login that exists (a service login's, another person's)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner, Result

from veilflow.cli import app
from veilflow.errors import AccessDenied, VeilflowError
from veilflow.zones.db import with_database


@pytest.fixture
def new_login(conn: psycopg.Connection) -> Iterator[str]:
    name = f"vf_person_{os.getpid()}_{id(conn) % 100000}"
    yield name
    conn.execute(f'DROP ROLE IF EXISTS "{name}"')


def _as(login: str, zones_db: str, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    db = zones_db.rsplit("/", 1)[1].split("?")[0]
    monkeypatch.setenv("VEILFLOW_DATABASE_URL", with_database(zones_db, db, user=login))
    try:
        return CliRunner().invoke(app, list(args))
    finally:
        monkeypatch.setenv("VEILFLOW_DATABASE_URL", zones_db)


def _log_in(zones_db: str, login: str, password: str) -> str:
    db = zones_db.rsplit("/", 1)[1].split("?")[0]
    url = with_database(zones_db, db, user=login)
    with psycopg.connect(url, password=password) as c:
        return str(c.info.user)


def test_a_created_login_logs_in_with_the_password_in_its_file(
    zones_db: str,
    conn: psycopg.Connection,
    role_logins: dict[str, str],
    new_login: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    secret = tmp_path / "password"
    r = _as(
        role_logins["admin"], zones_db, monkeypatch,
        "access", "grant", new_login, "ml_engineer", "--create", "--password-file", str(secret),
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert f"created login {new_login}" in r.output and str(secret) in r.output
    password = secret.read_text().strip()
    assert len(password) >= 40 and password not in r.output
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600

    assert _log_in(zones_db, new_login, password) == new_login
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        _log_in(zones_db, new_login, password + "x")
    (stored,) = conn.execute(
        "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (new_login,)
    ).fetchone() or (None,)
    assert str(stored).startswith("SCRAM-SHA-256$") and password not in str(stored)
    (details,) = conn.execute(
        "SELECT details FROM governance.audit_log WHERE action = 'access.grant' AND target = %s",
        (new_login,),
    ).fetchone() or (None,)
    assert details == {"role": "veilflow_ml_engineer", "login_created": True, "password_set": True}


def test_an_existing_logins_password_is_never_changed_by_a_grant(
    zones_db: str,
    conn: psycopg.Connection,
    role_logins: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Else an admin could set the pipeline service's password, or a steward's, and log in
    as it. The file is not left behind, and the old password still works."""
    from tests.conftest import TEST_LOGIN_PASSWORD

    target = role_logins["steward"]
    secret = tmp_path / "password"
    r = _as(
        role_logins["admin"], zones_db, monkeypatch,
        "access", "grant", target, "auditor", "--create", "--password-file", str(secret),
    )  # fmt: skip
    assert isinstance(r.exception, VeilflowError), r.output
    assert "exists" in str(r.exception) and not secret.exists()
    assert _log_in(zones_db, target, TEST_LOGIN_PASSWORD) == target
    assert not conn.execute(
        "SELECT pg_has_role(%s, 'veilflow_auditor', 'MEMBER')", (target,)
    ).fetchone()[0]  # type: ignore[index]


def test_only_a_verifier_and_only_with_create(
    zones_db: str, conn: psycopg.Connection, role_logins: dict[str, str], new_login: str
) -> None:
    """Straight at the SQL API: a clear-text password is refused (it would reach the server),
    and so is a verifier without creation."""
    db = zones_db.rsplit("/", 1)[1].split("?")[0]
    with psycopg.connect(with_database(zones_db, db, user=role_logins["admin"])) as admin:
        for create, verifier, message in [
            (True, "hunter2-in-the-clear", "SCRAM-SHA-256 verifier"),
            (False, "SCRAM-SHA-256$4096:c2FsdA==$a2V5:a2V5", "a login that the grant creates"),
        ]:
            with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
                admin.execute(
                    "SELECT governance_api.grant_role(%s, 'veilflow_viewer', %s, %s)",
                    (new_login, create, verifier),
                )
            admin.rollback()
    assert not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (new_login,)).fetchone()


def test_a_non_admin_creates_nothing_and_leaves_no_file(
    zones_db: str,
    conn: psycopg.Connection,
    role_logins: dict[str, str],
    new_login: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    secret = tmp_path / "password"
    r = _as(
        role_logins["steward"], zones_db, monkeypatch,
        "access", "grant", new_login, "steward", "--create", "--password-file", str(secret),
    )  # fmt: skip
    assert isinstance(r.exception, AccessDenied), r.output
    assert not secret.exists()
    assert not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (new_login,)).fetchone()


def test_password_file_needs_create_and_a_new_file(
    zones_db: str,
    role_logins: dict[str, str],
    new_login: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    admin = role_logins["admin"]
    secret = tmp_path / "password"
    r = _as(admin, zones_db, monkeypatch, "access", "grant", new_login, "viewer",
            "--password-file", str(secret))  # fmt: skip
    assert isinstance(r.exception, VeilflowError) and "--create" in str(r.exception)
    secret.write_text("someone else's\n")
    r = _as(admin, zones_db, monkeypatch, "access", "grant", new_login, "viewer",
            "--create", "--password-file", str(secret))  # fmt: skip
    assert isinstance(r.exception, VeilflowError) and "exists" in str(r.exception)
    assert secret.read_text() == "someone else's\n"
