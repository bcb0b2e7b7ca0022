"""Crypto-shredding reaches the table's files: after ``keys destroy``, no copy of the
destroyed version's wrapped bytes is left in governance.data_keys's relation files (heap,
TOAST, indexes), where a dead row version would otherwise keep it until its space is reused."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from veilflow.cli import app
from veilflow.errors import VeilflowError
from veilflow.vault.keys import destroy_key, ensure_key, rotate_key
from veilflow.vault.master import default_master_key
from veilflow.zones.db import connect, with_database


def _wrapped(conn: psycopg.Connection, version: int) -> bytes:
    row = conn.execute(
        "SELECT wrapped FROM governance.data_keys"
        " WHERE dataset = 'people' AND purpose = 'token' AND version = %s",
        (version,),
    ).fetchone()
    assert row is not None and row[0] is not None
    return bytes(row[0])


def _relation_files(conn: psycopg.Connection) -> list[Path]:
    """Every file of governance.data_keys on disk: the heap, its TOAST table and TOAST
    index, its indexes, each with its forks and segments."""
    data_dir = Path(conn.execute("SHOW data_directory").fetchone()[0])  # type: ignore[index]
    relations = conn.execute(
        "SELECT c.oid::regclass::text, pg_relation_filepath(c.oid) FROM pg_class c"
        " WHERE c.oid = 'governance.data_keys'::regclass"
        "    OR c.oid = (SELECT reltoastrelid FROM pg_class"
        "                WHERE oid = 'governance.data_keys'::regclass)"
        "    OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid IN ("
        "        'governance.data_keys'::regclass,"
        "        (SELECT reltoastrelid FROM pg_class"
        "         WHERE oid = 'governance.data_keys'::regclass)))"
    ).fetchall()
    names = {name for name, _ in relations}
    assert "governance.data_keys" in names and any("pg_toast" in n for n in names)
    assert any("data_keys_pkey" in n for n in names)  # the indexes are read too
    files: list[Path] = []
    for _, rel in relations:
        base = data_dir / rel
        files += [base, *base.parent.glob(f"{base.name}.*"), *base.parent.glob(f"{base.name}_*")]
    return [f for f in files if f.is_file()]


def _copies(conn: psycopg.Connection, needle: bytes) -> list[str]:
    conn.execute("CHECKPOINT")  # shared buffers written to the files
    return [f.name for f in _relation_files(conn) if needle in f.read_bytes()]


@pytest.mark.parametrize("destroyed", [1, 2, 3])
def test_destroy_leaves_no_copy_of_the_wrapped_bytes_in_the_tables_files(
    zones_db: str,
    conn: psycopg.Connection,
    role_logins: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    destroyed: int,
) -> None:
    master = default_master_key()
    ensure_key(conn, master, "people", "token")
    rotate_key(conn, master, "people", "token")
    rotate_key(conn, master, "people", "token")
    wrapped = {v: _wrapped(conn, v) for v in (1, 2, 3)}
    assert all(_copies(conn, w) for w in wrapped.values())  # the scan finds what is there

    db = zones_db.rsplit("/", 1)[1].split("?")[0]
    admin = with_database(zones_db, db, user=role_logins["admin"])
    monkeypatch.setenv("VEILFLOW_DATABASE_URL", admin)
    result = CliRunner().invoke(app, ["keys", "destroy", f"people/token@v{destroyed}", "--yes"])
    assert result.exit_code == 0, result.output
    assert f"people/token@v{destroyed} is destroyed" in result.output

    assert _copies(conn, wrapped[destroyed]) == []
    for v, w in wrapped.items():
        if v != destroyed:
            assert _copies(conn, w)  # the rewrite kept the live rows
    states = conn.execute(
        "SELECT version, wrapped IS NULL FROM governance.data_keys ORDER BY version"
    ).fetchall()
    assert states == [(v, v == destroyed) for v in (1, 2, 3)]


def test_destroy_inside_a_transaction_block_is_refused_before_anything_changes(
    zones_db: str, conn: psycopg.Connection, role_logins: dict[str, str]
) -> None:
    ensure_key(conn, default_master_key(), "people", "token")
    with connect(user=role_logins["admin"]) as admin:
        admin.execute("SELECT 1")  # a transaction block is open
        with pytest.raises(VeilflowError, match=r"outside one\. Nothing was changed"):
            destroy_key(admin, "people", "token", 1)
        admin.rollback()
        destroyed = destroy_key(admin, "people", "token", 1)  # idle, without autocommit
        assert destroyed.state == "destroyed" and not admin.autocommit


def test_destroy_without_the_maintain_privilege_is_refused_before_anything_changes(
    zones_db: str, conn: psycopg.Connection, role_logins: dict[str, str]
) -> None:
    ensure_key(conn, default_master_key(), "people", "token")
    conn.execute("REVOKE MAINTAIN ON governance.data_keys FROM veilflow_admin")
    with connect(user=role_logins["admin"], autocommit=True) as admin:
        with pytest.raises(VeilflowError, match="MAINTAIN"):
            destroy_key(admin, "people", "token", 1)
    state = conn.execute("SELECT state FROM governance.data_keys").fetchone()
    assert state == ("active",)


def test_a_transaction_older_than_the_destroy_is_reported_and_a_repeat_shreds(
    zones_db: str, conn: psycopg.Connection, role_logins: dict[str, str]
) -> None:
    """VACUUM FULL copies a dead row version that an open transaction could still see."""
    ensure_key(conn, default_master_key(), "people", "token")
    wrapped = _wrapped(conn, 1)
    with (
        psycopg.connect(zones_db) as older,
        connect(user=role_logins["admin"], autocommit=True) as admin,
    ):
        older.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        older.execute("SELECT count(*) FROM governance.runs").fetchone()  # holds a snapshot
        with pytest.raises(VeilflowError, match=r"still open .* repeat 'veilflow keys destroy"):
            destroy_key(admin, "people", "token", 1)
        assert _copies(conn, wrapped)  # what the error is about
        older.rollback()
        assert destroy_key(admin, "people", "token", 1).state == "destroyed"
    assert _copies(conn, wrapped) == []
