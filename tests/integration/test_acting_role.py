"""Rights follow the role in force (sql/0060_acting_role.sql): a login that is a member of
``veilflow_admin`` only ``WITH INHERIT FALSE, SET TRUE`` (as the UI's service login is) may
grant, revoke and rotate only after ``SET ROLE veilflow_admin``, and is refused without it,
by veilflow's checks and by the SQL functions alike; a plain member (INHERIT TRUE) works as
before without any SET ROLE. The audit actor stays the login that connected."""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest

from veilflow.errors import AccessDenied
from veilflow.vault import access
from veilflow.vault.keys import ensure_key, rotate_key
from veilflow.vault.master import default_master_key
from veilflow.zones.access import roles_of
from veilflow.zones.db import with_database

TAG = f"{os.getpid()}"
SET_ONLY = f"vf_setonly_{TAG}"
PLAIN = f"vf_plainadmin_{TAG}"
TARGET = f"vf_acting_target_{TAG}"


@pytest.fixture
def logins(conn: psycopg.Connection) -> Iterator[None]:
    from tests.conftest import make_login

    make_login(conn, SET_ONLY)
    for group in ("veilflow_admin", "veilflow_auditor"):
        conn.execute(f'GRANT {group} TO "{SET_ONLY}" WITH INHERIT FALSE, SET TRUE')
    make_login(conn, PLAIN, "veilflow_admin")
    make_login(conn, TARGET)
    ensure_key(conn, default_master_key(), "people", "token")
    yield
    for login in (SET_ONLY, PLAIN, TARGET):
        conn.execute(f'DROP OWNED BY "{login}"')
        conn.execute(f'DROP ROLE IF EXISTS "{login}"')


def login_as(zones_db: str, login: str) -> psycopg.Connection:
    database = zones_db.rsplit("/", 1)[-1].split("?", 1)[0]
    return psycopg.connect(with_database(zones_db, database, user=login), autocommit=True)


def member(conn: psycopg.Connection, group: str) -> bool:
    row = conn.execute("SELECT pg_has_role(%s, %s, 'USAGE')", (TARGET, group)).fetchone()
    return bool(row and row[0])


def versions(conn: psycopg.Connection) -> list[tuple[int, str, str]]:
    return [
        (int(v), str(s), str(by))
        for v, s, by in conn.execute(
            "SELECT version, state, created_by FROM governance.data_keys"
            " WHERE dataset = 'people' ORDER BY version"
        ).fetchall()
    ]


def test_acting_role_is_the_set_role_else_the_login(
    zones_db: str, conn: psycopg.Connection, logins: None
) -> None:
    def acting(c: psycopg.Connection) -> object:
        row = c.execute("SELECT governance.acting_role()::text").fetchone()
        return row and row[0]

    with login_as(zones_db, PLAIN) as c:
        assert acting(c) == PLAIN
    with login_as(zones_db, SET_ONLY) as c:
        c.execute("SET ROLE veilflow_admin")
        assert acting(c) == "veilflow_admin"
    assert acting(conn) == "postgres"
    # inside a SECURITY DEFINER function too, where current_user is the owner
    conn.execute(
        "CREATE FUNCTION public.vf_acting_probe() RETURNS text LANGUAGE sql SECURITY DEFINER"
        " AS $$ SELECT governance.acting_role()::text || ' ' || current_user::text $$"
    )
    try:
        with login_as(zones_db, SET_ONLY) as c:
            c.execute("SET ROLE veilflow_auditor")
            row = c.execute("SELECT public.vf_acting_probe()").fetchone()
            assert row == ("veilflow_auditor postgres",)
    finally:
        conn.execute("DROP FUNCTION public.vf_acting_probe()")


def test_a_set_only_admin_is_refused_without_set_role(
    zones_db: str, conn: psycopg.Connection, logins: None
) -> None:
    with login_as(zones_db, SET_ONLY) as c:
        assert roles_of(c) == frozenset()
        with pytest.raises(AccessDenied):
            access.grant(c, TARGET, "steward")
        with pytest.raises(AccessDenied):
            access.require(c, "keys.manage", action="key.rotate", target="people/token")
        # the database refuses too, past veilflow's Python checks
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="only veilflow_admin"):
            c.execute("SELECT governance_api.grant_role(%s, 'veilflow_steward')", (TARGET,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            rotate_key(c, default_master_key(), "people", "token")
        # another role it may SET is not admin: the role in force counts, not the login's
        # other memberships
        c.execute("SET ROLE veilflow_auditor")
        assert roles_of(c) == frozenset({"auditor"})
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="only veilflow_admin"):
            c.execute("SELECT governance_api.grant_role(%s, 'veilflow_steward')", (TARGET,))
    assert not member(conn, "veilflow_steward")
    assert versions(conn) == [(1, "active", "postgres")]


def test_a_set_only_admin_grants_revokes_and_rotates_after_set_role(
    zones_db: str, conn: psycopg.Connection, logins: None
) -> None:
    with login_as(zones_db, SET_ONLY) as c:
        c.execute("SET ROLE veilflow_admin")
        assert roles_of(c) == frozenset({"admin"})
        assert access.grant(c, TARGET, "steward") is False
        assert member(conn, "veilflow_steward")
        assert access.revoke(c, TARGET, "steward") is True
        assert not member(conn, "veilflow_steward")
        # the SQL function itself, and creating a login, as the role in force
        c.execute("SELECT governance_api.grant_role(%s, 'veilflow_ml_engineer', true)", (TARGET,))
        assert member(conn, "veilflow_ml_engineer")
        access.require(c, "keys.manage", action="key.rotate", target="people/token")
        rotate_key(c, default_master_key(), "people", "token")  # past data_keys_guard
    # who did it is the login that connected, in the audit log and on the key version
    assert versions(conn) == [(1, "retired", "postgres"), (2, "active", SET_ONLY)]
    actors = conn.execute(
        "SELECT action, actor FROM governance.audit_log"
        " WHERE action IN ('access.grant', 'access.revoke', 'key.rotate') ORDER BY seq"
    ).fetchall()
    assert actors == [
        ("access.grant", SET_ONLY),
        ("access.revoke", SET_ONLY),
        ("access.grant", SET_ONLY),
        ("key.rotate", SET_ONLY),
    ]


def test_a_plain_admin_member_works_as_before_without_set_role(
    zones_db: str, conn: psycopg.Connection, logins: None
) -> None:
    with login_as(zones_db, PLAIN) as c:
        assert c.execute("SELECT governance.acting_role()::text").fetchone() == (PLAIN,)
        assert roles_of(c) == frozenset({"admin"})
        assert access.grant(c, TARGET, "auditor") is False
        assert member(conn, "veilflow_auditor")
        assert access.revoke(c, TARGET, "auditor") is True
        rotate_key(c, default_master_key(), "people", "token")
    assert versions(conn) == [(1, "retired", "postgres"), (2, "active", PLAIN)]


def test_a_superuser_that_took_a_lesser_role_has_only_its_rights(
    conn: psycopg.Connection,
) -> None:
    assert access.allowed(conn, "keys.manage")
    with conn.transaction():
        conn.execute("SET LOCAL ROLE veilflow_auditor")
        assert not access.allowed(conn, "keys.manage")
        assert access.allowed(conn, "audit.read")
    assert access.allowed(conn, "keys.manage")
