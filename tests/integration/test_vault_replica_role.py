"""The audit log and the data keys hold in a session that sets
``session_replication_role = replica``, the switch that skips ordinary triggers (logical
replication and restore tools use it): their triggers are ENABLE ALWAYS."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

from veilflow.vault import audit
from veilflow.vault.keys import disable_key, ensure_key, rotate_key
from veilflow.vault.master import default_master_key

ALWAYS = {
    ("audit_log", "audit_log_chain"),
    ("audit_log", "audit_log_append_only"),
    ("data_keys", "data_keys_guard_row"),
    ("data_keys", "data_keys_guard_truncate"),
    ("data_keys", "data_keys_audited"),
}


@contextmanager
def replica_role(conn: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """The test's superuser connection, with ordinary triggers switched off."""
    conn.execute("SET session_replication_role = replica")
    try:
        yield conn
    finally:
        conn.execute("RESET session_replication_role")


def test_the_governance_triggers_fire_always(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        "SELECT c.relname, t.tgname, t.tgenabled FROM pg_trigger t"
        " JOIN pg_class c ON c.oid = t.tgrelid"
        " WHERE c.relnamespace = 'governance'::regnamespace AND NOT t.tgisinternal"
        " AND c.relname IN ('audit_log', 'data_keys')"
    ).fetchall()
    assert {(table, name) for table, name, _ in rows} == ALWAYS
    assert {enabled for _, _, enabled in rows} == {"A"}


def test_the_audit_log_stays_append_only(conn: psycopg.Connection) -> None:
    audit.record(conn, "policy.run", target="people", count=1)
    with replica_role(conn) as replica:
        for statement in (
            "UPDATE governance.audit_log SET count = 999",
            "DELETE FROM governance.audit_log",
            "TRUNCATE governance.audit_log",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                replica.execute(statement)
    assert conn.execute("SELECT count(*) FROM governance.audit_log").fetchone() == (1,)
    assert audit.verify(conn).ok


def test_inserts_are_still_chained(conn: psycopg.Connection) -> None:
    audit.record(conn, "policy.run", target="people", count=1)
    with replica_role(conn) as replica:
        audit.record(replica, "policy.run", target="people", count=2)
        replica.execute(
            "INSERT INTO governance.audit_log (seq, at, actor, action, target, outcome,"
            " prev_hash, row_hash) VALUES (99, '2000-01-01', 'someone_else', 'x', 'y',"
            " 'ok', 'forged', 'forged')"
        )
    rows = conn.execute(
        "SELECT seq, actor, prev_hash <> 'forged', at > '2001-01-01'"
        " FROM governance.audit_log ORDER BY seq"
    ).fetchall()
    assert rows == [(n, "postgres", True, True) for n in (1, 2, 3)]
    assert audit.verify(conn).ok


def test_data_keys_are_still_guarded_and_audited(conn: psycopg.Connection) -> None:
    with replica_role(conn) as replica:
        _change_keys(replica)
    assert audit.verify(conn).ok


def _change_keys(replica: psycopg.Connection) -> None:
    master = default_master_key()
    ensure_key(replica, master, "people", "token")
    rotate_key(replica, master, "people", "token")
    disable_key(replica, "people", "token", 1)
    replica.execute(
        "UPDATE governance.data_keys SET state = 'destroyed', wrapped = NULL WHERE version = 1"
    )
    actions = replica.execute(
        "SELECT action, target FROM governance.audit_log ORDER BY seq"
    ).fetchall()
    assert actions == [
        ("key.create", "people/token@v1"),
        ("key.retire", "people/token@v1"),
        ("key.rotate", "people/token@v2"),
        ("key.disable", "people/token@v1"),
        ("key.destroy", "people/token@v1"),
    ]
    refused = {
        "UPDATE governance.data_keys SET state = 'retired' WHERE version = 1": "destroyed",
        "UPDATE governance.data_keys SET created_by = 'someone_else' WHERE version = 2": "identity",
        "DELETE FROM governance.data_keys": "never deleted",
        "TRUNCATE governance.data_keys": "never deleted",
    }
    for statement, why in refused.items():
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match=why):
            replica.execute(statement)
    forged = replica.execute(
        "INSERT INTO governance.data_keys (dataset, purpose, version, state, wrapped,"
        " master_key_id, created_by, created_at) VALUES ('people', 'ff1', 1, 'active',"
        " '\\x00', 'm', 'someone_else', '2000-01-01') RETURNING created_by, created_at > '2001-01-01'"
    ).fetchone()
    assert forged == ("postgres", True)
