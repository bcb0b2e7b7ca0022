"""The scrub API on the embedded PostgreSQL, as the pipeline's login: it writes what a run of
the same policy wrote, refuses every kind of bad request with its own status, counts
everything in the audit log and never keeps a text."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from veilflow.cli import app as cli_app
from veilflow.errors import AccessDenied
from veilflow.pipeline.plan import plan_policy
from veilflow.pipeline.runner import run_policy
from veilflow.policy import load_policy
from veilflow.serve.app import ServeConfig, create_app
from veilflow.serve.tokens import issue, list_tokens, revoke, scope_of
from veilflow.transform.base import STRING, ChunkContext
from veilflow.vault.master import default_master_key
from veilflow.vault.provider import VaultKeyProvider
from veilflow.zones.db import with_database

CANARY = "Quentin Zabriskie-Vantongeren"


def _url(zones_db: str, login: str) -> str:
    return with_database(zones_db, zones_db.rsplit("/", 1)[1].split("?")[0], user=login)


@pytest.fixture
def policies(customers_policy_path: Path) -> Path:
    return customers_policy_path.parent


@pytest.fixture
def as_login(zones_db: str) -> Callable[[str], psycopg.Connection]:
    def connect(login: str) -> psycopg.Connection:
        return psycopg.connect(_url(zones_db, login), autocommit=True)

    return connect


@pytest.fixture
def token(
    tmp_path: Path, role_logins: dict[str, str], as_login: Callable[[str], psycopg.Connection]
) -> str:
    out = tmp_path / "token"
    with as_login(role_logins["admin"]) as c:
        issue(c, name="chat", dataset="customers", column="note", rate_per_second=1000, out=out)
    return out.read_text().strip()


def _client(
    policies: Path,
    pipeline_login: str,
    as_login: Callable[[str], psycopg.Connection],
    **config: object,
) -> TestClient:
    def connect() -> psycopg.Connection:
        return as_login(pipeline_login)

    settings = ServeConfig(policies_dir=policies, **config)  # type: ignore[arg-type]
    api = create_app(
        settings,
        keys=lambda: VaultKeyProvider(default_master_key(), connect, operation="encrypt"),
        connect=connect,
    )
    return TestClient(api)


@pytest.fixture
def client(
    policies: Path, role_logins: dict[str, str], as_login: Callable[[str], psycopg.Connection]
) -> Iterator[TestClient]:
    with _client(policies, role_logins["pipeline"], as_login, token_cache_seconds=0) as c:
        yield c


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_scrub_writes_what_a_run_wrote(
    seeded_db: str,
    conn: psycopg.Connection,
    customers_policy_path: Path,
    client: TestClient,
    token: str,
) -> None:
    """The notes of a published run, matched to their source rows through the key's token,
    are exactly what the API returns for the source notes: same tokens, same surrogates."""
    policy = load_policy(customers_policy_path)
    run_policy(policy)
    raw = conn.execute(
        "SELECT customer_id::text, note FROM restricted.customers"
        " WHERE note ~ '@|[0-9]{3}' ORDER BY customer_id LIMIT 40"
    ).fetchall()
    assert len(raw) == 40
    plan = plan_policy(
        policy,
        VaultKeyProvider(
            default_master_key(), lambda: psycopg.connect(seeded_db), operation="encrypt"
        ),
    )
    (key_op,) = [c.operator for c in plan.columns if c.name == "customer_id"]
    assert key_op is not None
    ids = pd.Series(pd.array([r[0] for r in raw], dtype=STRING))
    tokens = key_op.apply(
        ids, ChunkContext(frame=pd.DataFrame({"customer_id": ids}), key_column="customer_id")
    )
    published = dict(
        conn.execute("SELECT customer_id::text, note FROM anonymized.customers").fetchall()
    )
    expected = [published[t] for t in tokens.tolist()]

    r = client.post("/scrub", json={"texts": [n for _, n in raw]}, headers=_auth(token))
    assert r.status_code == 200, r.text
    assert r.json()["texts"] == expected
    assert r.json()["dataset"] == "customers" and r.json()["column"] == "note"
    assert any(a != b for a, b in zip(expected, [n for _, n in raw], strict=True))
    one = client.post("/scrub", json={"text": raw[0][1]}, headers=_auth(token))
    assert one.json()["text"] == expected[0]


def test_detect_reports_spans_and_never_the_text(client: TestClient, token: str) -> None:
    text = f"Please call {CANARY} on 412-555-0188 or write to qz@example.org."
    r = client.post("/detect", json={"text": text}, headers=_auth(token))
    assert r.status_code == 200, r.text
    assert CANARY not in r.text and "qz@example.org" not in r.text
    found = {(text[s["start"] : s["end"]], s["entity"]) for s in r.json()["spans"]}
    assert ("qz@example.org", "EMAIL_ADDRESS") in found
    assert ("412-555-0188", "PHONE_NUMBER") in found
    assert any(e == "PERSON" and "Zabriskie" in t for t, e in found)
    many = client.post("/detect", json={"texts": ["nothing to see", text]}, headers=_auth(token))
    assert [len(s) > 0 for s in many.json()["results"]] == [False, True]


def test_every_bad_request_gets_its_status_and_is_counted_without_text(
    zones_db: str,
    conn: psycopg.Connection,
    policies: Path,
    role_logins: dict[str, str],
    as_login: Callable[[str], psycopg.Connection],
    token: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    other = tmp_path / "other"
    with as_login(role_logins["admin"]) as c:
        issue(c, name="slow", dataset="customers", column="note", rate_per_second=1, out=other)
        issue(
            c,
            name="gone",
            dataset="customers",
            column="note",
            rate_per_second=5,
            out=tmp_path / "gone",
        )
        revoke(c, "gone")
    slow = other.read_text().strip()
    gone = (tmp_path / "gone").read_text().strip()
    body = {"text": f"{CANARY} lives at 12 Elm Street"}
    with _client(
        policies, role_logins["pipeline"], as_login, token_cache_seconds=0, max_bytes=2048
    ) as client:
        post = client.post
        statuses = {
            "no token": post("/scrub", json=body).status_code,
            "not bearer": post("/scrub", json=body, headers={"Authorization": f"Basic {token}"}).status_code,
            "malformed": post("/scrub", json=body, headers=_auth("vf_short")).status_code,
            "unknown": post("/scrub", json=body, headers=_auth("vf_" + "A" * 43)).status_code,
            "revoked": post("/scrub", json=body, headers=_auth(gone)).status_code,
            "too big": post("/scrub", content=b"{" + b" " * 4096 + b"}", headers=_auth(token)).status_code,
            "not utf-8": post("/scrub", content=b'{"text": "Zabriskie \xff"}', headers=_auth(token)).status_code,
            "not json": post("/scrub", content=CANARY.encode(), headers=_auth(token)).status_code,
            "no text": post("/scrub", json={"txt": CANARY}, headers=_auth(token)).status_code,
            "both": post("/scrub", json={"text": "a", "texts": ["b"]}, headers=_auth(token)).status_code,
            "not a string": post("/detect", json={"text": 5}, headers=_auth(token)).status_code,
            "other dataset": post("/scrub", json={**body, "dataset": "patients"}, headers=_auth(token)).status_code,
            "other column": post("/scrub", json={**body, "column": "email"}, headers=_auth(token)).status_code,
            "ok": post("/scrub", json=body, headers=_auth(token)).status_code,
            "first of slow": post("/scrub", json=body, headers=_auth(slow)).status_code,
            "over the rate": post("/scrub", json=body, headers=_auth(slow)).status_code,
        }  # fmt: skip
        over = post("/scrub", json=body, headers=_auth(slow))
        assert over.status_code == 429 and int(over.headers["Retry-After"]) >= 1
        assert client.get("/health").json()["status"] == "ok"
    assert statuses == {
        "no token": 401, "not bearer": 401, "malformed": 401, "unknown": 401, "revoked": 401,
        "too big": 413, "not utf-8": 400, "not json": 400, "no text": 400, "both": 400,
        "not a string": 400, "other dataset": 403, "other column": 403, "ok": 200,
        "first of slow": 200, "over the rate": 429,
    }  # fmt: skip
    # The service's shutdown wrote the counts: as the pipeline's login, per token, no text.
    rows = conn.execute(
        "SELECT actor, target, count, details FROM governance.audit_log"
        " WHERE action = 'api.usage' ORDER BY seq"
    ).fetchall()
    by_token = {r[3]["token"]: r for r in rows}
    assert {r[0] for r in rows} == {role_logins["pipeline"]}
    assert by_token["-"][3]["statuses"] == {"401": 5}
    assert by_token["chat"][2] == 9
    assert by_token["chat"][3]["statuses"] == {"200": 1, "400": 5, "403": 2, "413": 1}
    assert by_token["slow"][3]["statuses"] == {"200": 1, "429": 2}
    assert by_token["*"][3]["entities"].get("PERSON", 0) >= 1
    everything = json.dumps([list(map(str, r)) for r in conn.execute(
        "SELECT * FROM governance.audit_log").fetchall()])  # fmt: skip
    for secret in (CANARY, "Zabriskie", "Elm Street", token, slow, gone):
        assert secret not in everything
        assert secret not in caplog.text


def test_tokens_are_kept_as_hashes_and_managed_by_admins_only(
    conn: psycopg.Connection,
    role_logins: dict[str, str],
    as_login: Callable[[str], psycopg.Connection],
    tmp_path: Path,
) -> None:
    out = tmp_path / "t"
    with as_login(role_logins["admin"]) as c:
        issue(c, name="svc", dataset="customers", column="note", rate_per_second=10, out=out)
        assert [t.name for t in list_tokens(c)] == ["svc"]
    token = out.read_text().strip()
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    stored = conn.execute("SELECT token_sha256 FROM governance.api_tokens").fetchone()
    assert stored is not None and bytes(stored[0]) == hashlib.sha256(token.encode()).digest()
    dump = json.dumps([list(map(str, r)) for r in conn.execute(
        "SELECT * FROM governance.api_tokens").fetchall()])  # fmt: skip
    assert token not in dump and token[3:] not in dump

    # The pipeline's login looks a token up by its hash, and can do nothing else.
    with as_login(role_logins["pipeline"]) as c:
        scope = scope_of(c, token)
        assert scope is not None and (scope.dataset, scope.column) == ("customers", "note")
        assert scope_of(c, "vf_" + "B" * 43) is None
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SELECT name FROM governance.api_tokens")
        with pytest.raises(AccessDenied):
            issue(
                c,
                name="mine",
                dataset="customers",
                column="note",
                rate_per_second=1,
                out=tmp_path / "m",
            )
        assert not (tmp_path / "m").exists()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SELECT governance_api.revoke_api_token('svc')")
    with as_login(role_logins["auditor"]) as c:
        assert [t.state for t in list_tokens(c)] == ["live"]
        with pytest.raises(AccessDenied):
            revoke(c, "svc")
    denied = conn.execute(
        "SELECT action, actor FROM governance.audit_log WHERE outcome = 'denied' ORDER BY seq"
    ).fetchall()
    assert ("api_token.issue", role_logins["pipeline"]) in denied
    assert ("api_token.revoke", role_logins["auditor"]) in denied

    # A name is used once; the refused issue leaves no file behind.
    with as_login(role_logins["admin"]) as c:
        with pytest.raises(Exception, match="exists"):
            issue(
                c,
                name="svc",
                dataset="customers",
                column="note",
                rate_per_second=1,
                out=tmp_path / "again",
            )
        assert not (tmp_path / "again").exists()
        assert revoke(c, "svc") and not revoke(c, "svc")
    with as_login(role_logins["pipeline"]) as c:
        assert scope_of(c, token) is None


def _as(login: str, zones_db: str, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    monkeypatch.setenv("VEILFLOW_DATABASE_URL", _url(zones_db, login))
    try:
        return CliRunner().invoke(cli_app, list(args))
    finally:
        monkeypatch.setenv("VEILFLOW_DATABASE_URL", zones_db)


def test_token_commands(
    zones_db: str,
    role_logins: dict[str, str],
    policies: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("VEILFLOW_POLICIES", str(policies))
    admin = role_logins["admin"]
    out = tmp_path / "tok"
    r = _as(admin, zones_db, monkeypatch, "api", "token", "issue", "bot", "--dataset", "customers", "--out", str(out))  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "customers.note" in r.output and out.read_text().strip() not in r.output
    r = _as(admin, zones_db, monkeypatch, "api", "token", "issue", "bot2", "--dataset", "nope", "--out", str(tmp_path / "x"))  # fmt: skip
    assert r.exit_code != 0 and "no usable policy for dataset 'nope'" in str(
        r.exception or r.output
    )
    r = _as(admin, zones_db, monkeypatch, "api", "token", "issue", "bot3", "--dataset", "customers", "--column", "email", "--out", str(tmp_path / "y"))  # fmt: skip
    assert r.exit_code != 0 and "not a scrub_text column" in str(r.exception or r.output)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    r = _as(admin, zones_db, monkeypatch, "api", "token", "list")
    assert r.exit_code == 0 and "bot" in r.output and "live" in r.output
    r = _as(admin, zones_db, monkeypatch, "api", "token", "revoke", "bot")
    assert r.exit_code == 0 and "revoked token bot" in r.output
