"""Who may do what, proven with real PostgreSQL logins: one login per veilflow role (and one
with no role) tries every operation; each is allowed or denied exactly as the role model
says, and every denial that passes through veilflow leaves an audit row."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import psycopg
import pytest

from veilflow.errors import AccessDenied
from veilflow.policy import parse_policy
from veilflow.transform.operators.tokenize import tokenize_strings
from veilflow.vault import access, audit
from veilflow.vault.keys import ensure_key, resolve, rotate_key, unwrap
from veilflow.vault.master import default_master_key
from veilflow.vault.provider import VaultKeyProvider
from veilflow.vault.reidentify import reidentify
from veilflow.zones.db import connect

POLICY = parse_policy("""
dataset: people
source: {table: restricted.people, key: id}
target: {table: anonymized.people}
columns:
  id: keep
  email: {action: tokenize}
""")
PURPOSE = "ticket 42: data subject access request"

Op = Callable[[psycopg.Connection, str], object]


def _sql(statement: str) -> Op:
    def run(c: psycopg.Connection, login: str) -> object:
        return (
            c.execute(statement.format(login=login)).fetchall()
            if statement.startswith("SELECT")
            else c.execute(statement.format(login=login))
        )

    return run


def _tokenize(c: psycopg.Connection, login: str) -> object:
    provider = VaultKeyProvider(
        default_master_key(), lambda: connect(user=login), operation="encrypt"
    )
    return provider.data_key("people", "token")


def _reidentify(c: psycopg.Connection, login: str) -> object:
    return reidentify(c, default_master_key(), POLICY, "email", TOKENS, PURPOSE)


def _read_audit(c: psycopg.Connection, login: str) -> object:
    access.require(c, "audit.read", action="audit.tail", target="governance.audit_log")
    return audit.tail(c, 5)


def _rotate(c: psycopg.Connection, login: str) -> object:
    access.require(c, "keys.manage", action="key.rotate", target="people/token")
    return rotate_key(c, default_master_key(), "people", "token")


def _grant(c: psycopg.Connection, login: str) -> object:
    return access.grant(c, TARGET, "ml_engineer")


#: operation -> (function, roles allowed, audit action of a denial or None when PostgreSQL
#: itself refuses a plain SQL statement).
OPERATIONS: dict[str, tuple[Op, set[str], str | None]] = {
    "read restricted": (
        _sql("SELECT count(*) FROM restricted.people"),
        {"pipeline", "steward"},
        None,
    ),
    "read anonymized": (
        _sql("SELECT count(*) FROM anonymized.people"),
        {"steward", "ml_engineer"},
        None,
    ),
    "write staging": (_sql("CREATE TABLE staging.s_{login} (x int)"), {"pipeline"}, None),
    "write anonymized": (_sql("CREATE TABLE anonymized.a_{login} (x int)"), {"pipeline"}, None),
    "write quarantine": (_sql("CREATE TABLE quarantine.q_{login} (x int)"), {"pipeline"}, None),
    "encrypt/tokenize": (_tokenize, {"pipeline"}, "key.use"),
    "reidentify": (_reidentify, {"steward"}, "reidentify"),
    "read audit log": (_read_audit, {"auditor"}, "audit.tail"),
    "read audit table": (_sql("SELECT count(*) FROM governance.audit_log"), {"auditor"}, None),
    "manage keys": (_rotate, {"admin"}, "key.rotate"),
    "grant access": (_grant, {"admin"}, "access.grant"),
    "read keys table": (
        _sql("SELECT count(*) FROM governance.data_keys"),
        {"pipeline", "steward", "admin"},
        None,
    ),
}
TOKENS: list[str | None] = []
TARGET = ""
EMAILS = ["ann@example.org", "bob@example.net", "cy@example.com"]


@pytest.fixture
def people(conn: psycopg.Connection, role_logins: dict[str, str]) -> Iterator[dict[str, str]]:
    from tests.conftest import make_login

    global TARGET
    conn.execute("CREATE TABLE restricted.people (id int PRIMARY KEY, email text)")
    conn.execute("INSERT INTO restricted.people VALUES (1, %s), (2, %s), (3, %s)", EMAILS)
    conn.execute("CREATE TABLE anonymized.people (id int, email text)")
    ensure_key(conn, default_master_key(), "people", "token")
    key = unwrap(default_master_key(), resolve(conn, "people", "token", None))
    TOKENS[:] = tokenize_strings(EMAILS, key)
    TARGET = role_logins["nobody"] + "_target"
    make_login(conn, TARGET)
    yield role_logins
    conn.execute(f'DROP ROLE IF EXISTS "{TARGET}"')


def _denials(conn: psycopg.Connection, login: str, action: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM governance.audit_log WHERE actor = %s"
        " AND action = %s AND outcome = 'denied'",
        (login, action),
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_every_role_gets_exactly_its_rights_and_every_denial_is_audited(
    zones_db: str, conn: psycopg.Connection, people: dict[str, str]
) -> None:
    seen: dict[tuple[str, str], bool] = {}
    for role, login in people.items():
        for name, (op, allowed_roles, audited_as) in OPERATIONS.items():
            before = _denials(conn, login, audited_as) if audited_as else 0
            with connect(zones_db, user=login, autocommit=True) as c:
                try:
                    result = op(c, login)
                    ok = True
                except (AccessDenied, psycopg.errors.InsufficientPrivilege):
                    ok = False
            seen[(role, name)] = ok
            assert ok == (role in allowed_roles), f"{role} / {name}: allowed={ok}"
            if name == "reidentify" and ok:
                assert result.values == EMAILS  # type: ignore[attr-defined]
            if audited_as and not ok:
                assert _denials(conn, login, audited_as) == before + 1, f"{role} / {name}"
    assert len(seen) == len(people) * len(OPERATIONS)
    # The allowed acts that matter left their trace too, with the true login as actor.
    steward, admin = people["steward"], people["admin"]
    rows = conn.execute(
        "SELECT actor, action, purpose, count, outcome FROM governance.audit_log"
        " WHERE outcome = 'ok' AND actor IN (%s, %s) ORDER BY seq",
        (steward, admin),
    ).fetchall()
    assert (steward, "reidentify", PURPOSE, 3, "ok") in rows
    assert (admin, "key.rotate", None, None, "ok") in rows
    assert (admin, "access.grant", None, None, "ok") in rows
    assert audit.verify(conn).ok


def test_reidentify_without_a_purpose_is_denied_and_audited(
    zones_db: str, conn: psycopg.Connection, people: dict[str, str]
) -> None:
    steward = people["steward"]
    with connect(zones_db, user=steward, autocommit=True) as c:
        for purpose in ("", "   ", "because"):
            with pytest.raises(AccessDenied, match="stated purpose"):
                reidentify(c, default_master_key(), POLICY, "email", TOKENS, purpose)
    assert _denials(conn, steward, "reidentify") == 3


def test_identity_is_the_login_not_a_claim(
    zones_db: str, conn: psycopg.Connection, people: dict[str, str]
) -> None:
    """An ml_engineer cannot pose as a steward: SET ROLE to a role it is not a member of
    fails, and the audit row names the login that connected."""
    mle = people["ml_engineer"]
    with connect(zones_db, user=mle, autocommit=True) as c:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SET ROLE veilflow_steward")
        with pytest.raises(AccessDenied):
            reidentify(c, default_master_key(), POLICY, "email", TOKENS, PURPOSE)
    row = conn.execute(
        "SELECT actor FROM governance.audit_log WHERE action = 'reidentify'"
        " ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    assert row == (mle,)


def test_grant_and_revoke_change_what_a_login_can_read(
    zones_db: str, conn: psycopg.Connection, people: dict[str, str]
) -> None:
    admin, target = people["admin"], people["nobody"]
    with connect(zones_db, user=admin, autocommit=True) as c:
        assert access.grant(c, target, "ml_engineer") is False
        listed = {(a.login, a.zone): a for a in access.list_access(c)}
    assert listed[(target, "anonymized")].read
    assert listed[(target, "anonymized")].via == ("veilflow_ml_engineer",)
    assert not listed[(target, "restricted")].read
    assert listed[(people["steward"], "restricted")].read
    assert listed[(people["pipeline"], "staging")].write
    assert not listed[(people["admin"], "restricted")].read
    with connect(zones_db, user=target, autocommit=True) as t:
        assert t.execute("SELECT count(*) FROM anonymized.people").fetchone() == (0,)
    with connect(zones_db, user=admin, autocommit=True) as c:
        assert access.revoke(c, target, "ml_engineer") is True
    with (
        connect(zones_db, user=target, autocommit=True) as t,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        t.execute("SELECT count(*) FROM anonymized.people")
    actions = [
        r[0]
        for r in conn.execute(
            "SELECT action FROM governance.audit_log WHERE target = %s ORDER BY seq", (target,)
        ).fetchall()
    ]
    assert actions == ["access.grant", "access.revoke"]


def test_a_steward_cannot_grant_itself_admin_even_through_sql(
    zones_db: str, conn: psycopg.Connection, people: dict[str, str]
) -> None:
    steward = people["steward"]
    with connect(zones_db, user=steward, autocommit=True) as c:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SELECT governance_api.grant_role(%s, 'veilflow_admin')", (steward,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("GRANT veilflow_admin TO " + steward)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute(
                "INSERT INTO governance.data_keys (dataset, purpose, version, wrapped,"
                " master_key_id) VALUES ('people', 'token', 9, '\\x00', 'x')"
            )
    row = conn.execute("SELECT pg_has_role(%s, 'veilflow_admin', 'USAGE')", (steward,)).fetchone()
    assert row == (False,)


def test_the_auditor_reads_lineage_and_the_others_without_a_role_do_not(
    zones_db: str, conn: psycopg.Connection, people: dict[str, str]
) -> None:
    for role, expect in (("auditor", True), ("ml_engineer", False), ("nobody", False)):
        with connect(zones_db, user=people[role], autocommit=True) as c:
            try:
                c.execute("SELECT count(*) FROM governance.lineage_events")
                ok = True
            except psycopg.errors.InsufficientPrivilege:
                ok = False
        assert ok is expect, role


def test_an_unknown_capability_is_denied_to_every_role(
    zones_db: str, conn: psycopg.Connection, people: dict[str, str]
) -> None:
    for role, login in people.items():
        with connect(zones_db, user=login, autocommit=True) as c:
            assert not access.allowed(c, "keys.export"), role
            with pytest.raises(AccessDenied, match="requires no role"):
                access.require(c, "keys.export", action="keys.export", target="*")
    assert access.allowed(conn, "keys.export")  # a superuser passes every check
