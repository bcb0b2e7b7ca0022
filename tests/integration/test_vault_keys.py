"""The key life cycle against a real database: first use, rotation, rewrap, disable,
crypto-shredding, and a wrong master key that stops everything and changes nothing."""

from __future__ import annotations

import base64
import json

import pandas as pd
import psycopg
import pytest

from veilflow.errors import KeyNotFound
from veilflow.policy import parse_policy
from veilflow.transform.base import STRING, ChunkContext, ColumnContext
from veilflow.transform.operators.fpe import FF1Config, FF1Encrypt
from veilflow.transform.operators.tokenize import tokenize_strings
from veilflow.vault.keys import (
    KeyDestroyed,
    KeyDisabled,
    destroy_key,
    disable_key,
    enable_key,
    ensure_key,
    list_keys,
    rewrap_keys,
    rotate_key,
)
from veilflow.vault.master import LocalMasterKey, MasterKeyError, default_master_key
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
  ssn: {action: ff1, alphabet: digits}
""")
EMAILS = ["ann@example.org", "bob@example.net", "cy@example.com", "di@example.org"]
SSNS = ["123-45-6789", "987-65-4321", "555-12-3456", "111-22-3333"]
PURPOSE = "ticket 7: verify a fraud report"
OTHER = LocalMasterKey(bytes(range(1, 33)), source="test")


@pytest.fixture
def people(conn: psycopg.Connection) -> str:
    conn.execute("CREATE TABLE restricted.people (id int PRIMARY KEY, email text, ssn text)")
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO restricted.people VALUES (%s, %s, %s)",
            [(i, e, s) for i, (e, s) in enumerate(zip(EMAILS, SSNS, strict=True))],
        )
    return "people"


def _provider(login: str | None = None, master: LocalMasterKey | None = None) -> VaultKeyProvider:
    return VaultKeyProvider(
        master or default_master_key(), lambda: connect(user=login), operation="encrypt"
    )


def _snapshot(conn: psycopg.Connection) -> tuple[object, ...]:
    keys = conn.execute(
        "SELECT dataset, purpose, version, state, wrapped, master_key_id"
        " FROM governance.data_keys ORDER BY 1, 2, 3"
    ).fetchall()
    audit = conn.execute("SELECT count(*) FROM governance.audit_log").fetchone()
    runs = conn.execute("SELECT count(*) FROM governance.runs").fetchone()
    return (tuple(keys), audit, runs)


def _ff1(provider: VaultKeyProvider, values: list[str]) -> list[str]:
    op = FF1Encrypt(
        FF1Config(alphabet="digits"), ColumnContext(dataset="people", column="ssn", keys=provider)
    )
    frame = pd.DataFrame({"id": range(len(values))})
    out = op.apply(pd.Series(pd.array(values, dtype=STRING)), ChunkContext(frame, "id"))
    return [str(v) for v in out]


def _publish_run(conn: psycopg.Connection, run_id: str, ff1_ref: str) -> None:
    manifest = {
        "columns": [
            {"name": "ssn", "action": "ff1", "key": ff1_ref},
            {"name": "email", "action": "tokenize", "key": None},
        ]
    }
    conn.execute(
        "INSERT INTO governance.runs (run_id, dataset, policy_hash, status, manifest)"
        " VALUES (%s, 'people', 'h', 'published', %s)",
        (run_id, json.dumps(manifest)),
    )


def test_first_use_by_the_pipeline_creates_version_1_once(
    zones_db: str, conn: psycopg.Connection, role_logins: dict[str, str]
) -> None:
    login = role_logins["pipeline"]
    p = _provider(login)
    key = p.data_key("people", "token")
    assert key.ref == "people/token@v1" and len(key.material) == 32
    for _ in range(100):  # cached: one unwrap for the whole chunk, not one per value
        assert p.data_key("people", "token") is key
    assert p.unwraps == 1
    again = _provider(login).data_key("people", "token")
    assert again.material == key.material  # the same stored key, not a new one
    rows = conn.execute("SELECT version, state, created_by FROM governance.data_keys").fetchall()
    assert rows == [(1, "active", login)]
    audit = conn.execute("SELECT actor, action, target FROM governance.audit_log").fetchall()
    assert audit == [(login, "key.create", "people/token@v1")]


def test_rotation_keeps_old_versions_reversible(
    zones_db: str, conn: psycopg.Connection, people: str, role_logins: dict[str, str]
) -> None:
    v1 = _provider(role_logins["pipeline"]).data_key("people", "token")
    tokens_v1 = tokenize_strings(EMAILS, v1)
    v2 = rotate_key(conn, default_master_key(), "people", "token")
    assert v2.version == 2
    fresh = _provider(role_logins["pipeline"]).data_key("people", "token")
    assert fresh.version == 2 and fresh.material != v1.material
    tokens_v2 = tokenize_strings(EMAILS, fresh)
    pinned = _provider(role_logins["pipeline"])
    pinned.pin("people", "token", 1)  # a later task of a run that started before the rotation
    assert pinned.data_key("people", "token").material == v1.material
    assert all(t and t.startswith("tok_v2_") for t in tokens_v2)
    states = {v.version: v.state for v in list_keys(conn, "people")}
    assert states == {1: "retired", 2: "active"}
    with connect(user=role_logins["steward"], autocommit=True) as st:
        mixed = [tokens_v1[0], tokens_v2[1], "tok_v2_aaaaaaaaaaaaaaaaaaaaaaaaaa", None]
        got = reidentify(st, default_master_key(), POLICY, "email", mixed, PURPOSE)
    assert got.values == [EMAILS[0], EMAILS[1], None, None]
    assert sorted(got.versions) == ["people/token@v1", "people/token@v2"]


def test_destroyed_version_can_no_longer_be_reversed_but_the_newer_one_can(
    zones_db: str, conn: psycopg.Connection, people: str, role_logins: dict[str, str]
) -> None:
    pipeline, steward = role_logins["pipeline"], role_logins["steward"]
    tokens_v1 = tokenize_strings(EMAILS, _provider(pipeline).data_key("people", "token"))
    rotate_key(conn, default_master_key(), "people", "token")
    tokens_v2 = tokenize_strings(EMAILS, _provider(pipeline).data_key("people", "token"))
    destroyed = destroy_key(conn, "people", "token", 1)
    assert destroyed.state == "destroyed" and destroyed.wrapped is None
    raw = conn.execute("SELECT wrapped FROM governance.data_keys WHERE version = 1").fetchone()
    assert raw == (None,)  # the material is gone from the database, not just flagged
    with connect(user=steward, autocommit=True) as st:
        assert (
            reidentify(st, default_master_key(), POLICY, "email", tokens_v2, PURPOSE).values
            == EMAILS
        )
        with pytest.raises(KeyDestroyed, match="can no longer be reversed"):
            reidentify(st, default_master_key(), POLICY, "email", tokens_v1, PURPOSE)
    last = conn.execute(
        "SELECT actor, outcome, details->>'error' FROM governance.audit_log"
        " ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    assert last == (steward, "error", "KeyDestroyed")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="destroyed"):
        conn.execute("UPDATE governance.data_keys SET state = 'retired' WHERE version = 1")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="never deleted"):
        conn.execute("DELETE FROM governance.data_keys")


def test_ff1_columns_decrypt_with_the_version_the_run_recorded(
    zones_db: str, conn: psycopg.Connection, people: str, role_logins: dict[str, str]
) -> None:
    p1 = _provider(role_logins["pipeline"])
    cipher_v1 = _ff1(p1, SSNS)
    assert cipher_v1 != SSNS and all(len(c) == 11 and c[3] == "-" for c in cipher_v1)
    _publish_run(conn, "run-1", p1.data_key("people", "ff1").ref)
    rotate_key(conn, default_master_key(), "people", "ff1")
    with connect(user=role_logins["steward"], autocommit=True) as st:
        got = reidentify(st, default_master_key(), POLICY, "ssn", cipher_v1, PURPOSE)
        assert got.values == SSNS and got.versions == ["people/ff1@v1"]
        p2 = _provider(role_logins["pipeline"])
        cipher_v2 = _ff1(p2, SSNS)
        conn.execute("UPDATE governance.runs SET started_at = now() - interval '1 day'")
        _publish_run(conn, "run-2", p2.data_key("people", "ff1").ref)
        assert (
            reidentify(st, default_master_key(), POLICY, "ssn", cipher_v2, PURPOSE).values == SSNS
        )
        assert (
            reidentify(
                st, default_master_key(), POLICY, "ssn", cipher_v1, PURPOSE, run_id="run-1"
            ).values
            == SSNS
        )
        disable_key(conn, "people", "ff1", 1)
        with pytest.raises(KeyDisabled):
            reidentify(st, default_master_key(), POLICY, "ssn", cipher_v1, PURPOSE, run_id="run-1")
        enable_key(conn, "people", "ff1", 1)
        assert (
            reidentify(
                st, default_master_key(), POLICY, "ssn", cipher_v1, PURPOSE, run_id="run-1"
            ).values
            == SSNS
        )


def test_rewrap_changes_the_wrapping_not_the_keys(
    zones_db: str, conn: psycopg.Connection, role_logins: dict[str, str]
) -> None:
    old = default_master_key()
    before = {
        purpose: _provider(master=old).data_key("people", purpose).material
        for purpose in ("token", "ff1")
    }
    rotate_key(conn, old, "people", "token")
    v2 = _provider(master=old).data_key("people", "token").material
    assert rewrap_keys(conn, old, OTHER) == 3
    assert {
        r[0] for r in conn.execute("SELECT master_key_id FROM governance.data_keys").fetchall()
    } == {OTHER.key_id}
    p = VaultKeyProvider(OTHER, connect, operation="encrypt")
    assert p.data_key("people", "ff1").material == before["ff1"]
    assert p.data_key("people", "token", 1).material == before["token"]
    assert p.data_key("people", "token").material == v2
    with pytest.raises(MasterKeyError, match="not the one that wrapped"):
        _provider(master=old).data_key("people", "token")
    rewraps = conn.execute(
        "SELECT count(*) FROM governance.audit_log WHERE action = 'key.rewrap'"
    ).fetchone()
    assert rewraps == (3,)


def test_a_wrong_master_key_fails_clearly_and_changes_nothing(
    zones_db: str,
    conn: psycopg.Connection,
    role_logins: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _provider().data_key("people", "token")
    before = _snapshot(conn)
    wrong = _provider(role_logins["pipeline"], master=OTHER)
    with pytest.raises(MasterKeyError, match="is not the one that wrapped"):
        wrong.data_key("people", "token")
    with pytest.raises(MasterKeyError):  # a new key is not created under the wrong master
        wrong.data_key("other_dataset", "token")
    with pytest.raises(MasterKeyError):
        rotate_key(conn, OTHER, "people", "token")
    with pytest.raises(MasterKeyError):
        rewrap_keys(conn, OTHER, default_master_key())
    with pytest.raises(MasterKeyError):
        ensure_key(conn, OTHER, "people", "surrogate")
    # A whole pipeline run with the wrong key stops before anything is written.
    from veilflow.pipeline.runner import run_policy

    monkeypatch.setenv("VEILFLOW_MASTER_KEY", base64.b64encode(bytes(range(1, 33))).decode())
    conn.execute("CREATE TABLE restricted.people (id int PRIMARY KEY, email text, ssn text)")
    conn.execute("INSERT INTO restricted.people VALUES (1, 'a@b.org', '123-45-6789')")
    tokens_only = parse_policy(
        "dataset: people\nsource: {table: restricted.people, key: id}\n"
        "target: {table: anonymized.people}\nunlisted: drop\n"
        "columns:\n  id: keep\n  email: {action: tokenize}\n"
    )
    with pytest.raises(MasterKeyError, match="Nothing was changed"):
        run_policy(tokens_only)
    keys_after, audit_after, runs_after = _snapshot(conn)
    assert (keys_after, runs_after) == (before[0], before[2])
    # The only trace is the audit row of the refused run itself.
    assert audit_after == (before[1][0] + 1,)  # type: ignore[index]
    last = conn.execute(
        "SELECT action, outcome FROM governance.audit_log ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    assert last == ("policy_run", "error")
    exists = conn.execute("SELECT to_regclass('anonymized.people')").fetchone()
    assert exists == (None,)


def test_a_steward_cannot_draw_encryption_keys_and_re_identification_names_versions(
    zones_db: str, role_logins: dict[str, str]
) -> None:
    from veilflow.errors import AccessDenied

    with pytest.raises(AccessDenied):
        _provider(role_logins["steward"]).data_key("people", "token")
    p = VaultKeyProvider(
        default_master_key(),
        lambda: connect(user=role_logins["steward"]),
        operation="reidentify",
        purpose=PURPOSE,
    )
    with pytest.raises(KeyNotFound, match="explicitly"):
        p.data_key("people", "token")
