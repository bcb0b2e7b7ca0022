"""The vault's commands, each run as a real login: what the login may do works and prints
no secret; what it may not do fails with AccessDenied and is audited."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner, Result

from veilflow.cli import app
from veilflow.errors import AccessDenied, VeilflowError
from veilflow.transform.operators.tokenize import tokenize_strings
from veilflow.vault.keys import resolve, unwrap
from veilflow.vault.master import default_master_key, master_key_from_file
from veilflow.zones.db import with_database

POLICY = """dataset: people
source: {table: restricted.people, key: id}
target: {table: anonymized.people}
columns:
  id: keep
  email: {action: tokenize}
"""
EMAILS = ["ann@example.org", "bob@example.net"]


def _as(
    login: str, zones_db: str, monkeypatch: pytest.MonkeyPatch, *args: str, stdin: str | None = None
) -> Result:
    db = zones_db.rsplit("/", 1)[1].split("?")[0]
    monkeypatch.setenv("VEILFLOW_DATABASE_URL", with_database(zones_db, db, user=login))
    try:
        return CliRunner().invoke(app, list(args), input=stdin)
    finally:
        monkeypatch.setenv("VEILFLOW_DATABASE_URL", zones_db)


def test_keys_access_audit_and_reidentify_commands(
    zones_db: str,
    conn: psycopg.Connection,
    role_logins: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    admin, steward, auditor = role_logins["admin"], role_logins["steward"], role_logins["auditor"]
    mle = role_logins["ml_engineer"]

    r = _as(admin, zones_db, monkeypatch, "keys", "create", "people/token")
    assert r.exit_code == 0 and "created people/token@v1" in r.output
    r = _as(admin, zones_db, monkeypatch, "keys", "rotate", "people/token")
    assert "people/token@v2 is active" in r.output
    r = _as(admin, zones_db, monkeypatch, "keys", "list")
    assert "people/token@v1" in r.output and "retired" in r.output and "active" in r.output
    material = unwrap(default_master_key(), resolve(conn, "people", "token", 2)).material
    assert material.hex() not in r.output and material.hex()[:16] not in r.output

    r = _as(mle, zones_db, monkeypatch, "keys", "rotate", "people/token")
    assert isinstance(r.exception, AccessDenied)
    r = _as(admin, zones_db, monkeypatch, "keys", "destroy", "people/token@v1")
    assert isinstance(r.exception, VeilflowError) and "--yes" in str(r.exception)

    r = _as(admin, zones_db, monkeypatch, "access", "grant", role_logins["nobody"], "auditor")
    assert r.exit_code == 0 and "granted veilflow_auditor" in r.output
    r = _as(admin, zones_db, monkeypatch, "access", "list")
    assert r.exit_code == 0 and "restricted:" in r.output and steward in r.output
    r = _as(steward, zones_db, monkeypatch, "access", "list")
    assert isinstance(r.exception, AccessDenied)

    conn.execute("CREATE TABLE restricted.people (id int PRIMARY KEY, email text)")
    conn.execute("INSERT INTO restricted.people VALUES (1, %s), (2, %s)", EMAILS)
    policy = tmp_path / "people.yaml"
    policy.write_text(POLICY)
    key = unwrap(default_master_key(), resolve(conn, "people", "token", None))
    tokens = tokenize_strings(EMAILS, key)
    stdin = "\n".join(t or "" for t in tokens) + "\nnot-a-token\n"
    args = (
        "reidentify",
        "--policy",
        str(policy),
        "--column",
        "email",
        "--purpose",
        "ticket 9: customer asked for their data",
    )
    r = _as(steward, zones_db, monkeypatch, *args, stdin=stdin)
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[:3] == [*EMAILS, ""]
    r = _as(mle, zones_db, monkeypatch, *args, stdin=stdin)
    assert isinstance(r.exception, AccessDenied)

    r = _as(auditor, zones_db, monkeypatch, "audit", "tail", "-n", "50")
    assert r.exit_code == 0
    assert "reidentify" in r.output and "denied" in r.output and "key.rotate" in r.output
    assert not any(e in r.output for e in EMAILS)
    r = _as(auditor, zones_db, monkeypatch, "audit", "verify")
    assert r.exit_code == 0 and "audit chain intact" in r.output
    r = _as(admin, zones_db, monkeypatch, "audit", "tail")
    assert isinstance(r.exception, AccessDenied)

    new_key = tmp_path / "new-master.key"
    r = _as(admin, zones_db, monkeypatch, "keys", "rewrap", "--new-key-file", str(new_key))
    assert r.exit_code == 0 and "rewrapped 2 data key version(s)" in r.output
    assert (new_key.stat().st_mode & 0o777) == 0o600
    assert (
        unwrap(master_key_from_file(new_key), resolve(conn, "people", "token", 2)).material
        == material
    )
    r = _as(admin, zones_db, monkeypatch, "keys", "rotate", "people/token")
    assert isinstance(r.exception, VeilflowError)  # the old master key no longer matches
    assert "Nothing was changed" in str(r.exception)
    monkeypatch.setenv("VEILFLOW_MASTER_KEY", new_key.read_text().strip())
    r = _as(admin, zones_db, monkeypatch, "keys", "rotate", "people/token")
    assert r.exit_code == 0 and "people/token@v3 is active" in r.output
    r = _as(admin, zones_db, monkeypatch, "keys", "destroy", "people/token@v1", "--yes")
    assert r.exit_code == 0 and "no longer be reversed" in r.output
