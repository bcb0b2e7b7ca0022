"""Erasure requests end to end on the embedded PostgreSQL: a steward states one, the pipeline's
login applies it, and no row of the subject is left in the published table, a quarantined
candidate, or the tables' files; later runs leave the subject out; the audit chain holds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from veilflow.cli import app as cli_app
from veilflow.errors import AccessDenied, ValidationFailed
from veilflow.pipeline.plan import plan_policy
from veilflow.pipeline.runner import run_policy
from veilflow.policy import load_policy, parse_policy
from veilflow.policy.model import Policy
from veilflow.transform.base import STRING, ChunkContext
from veilflow.vault.audit import verify
from veilflow.vault.erasure import ErasureError, apply, request
from veilflow.vault.master import default_master_key
from veilflow.vault.provider import VaultKeyProvider
from veilflow.zones.db import with_database

REASON = "GDPR art. 17 request #4411 from the data subject"


def _url(zones_db: str, login: str) -> str:
    return with_database(zones_db, zones_db.rsplit("/", 1)[1].split("?")[0], user=login)


@pytest.fixture
def as_login(zones_db: str) -> Callable[[str], psycopg.Connection]:
    def connect(login: str) -> psycopg.Connection:
        return psycopg.connect(_url(zones_db, login), autocommit=True)

    return connect


def _token_of(policy: Policy, zones_db: str, key: str) -> str:
    """What the test knows: the subject's token, made the way a run makes it."""
    keys = VaultKeyProvider(default_master_key(), lambda: psycopg.connect(zones_db))
    (op,) = [c.operator for c in plan_policy(policy, keys).columns if c.name == "customer_id"]
    assert op is not None
    ids = pd.Series(pd.array([key], dtype=STRING))
    out = op.apply(ids, ChunkContext(frame=pd.DataFrame({"customer_id": ids}), key_column="c"))
    return str(out.iloc[0])


def _rows_of(conn: psycopg.Connection, token: str) -> dict[str, int]:
    tables = ["anonymized.customers"] + [
        r[0]
        for r in conn.execute(
            "SELECT quarantine_table FROM governance.quarantined WHERE quarantine_table IS NOT NULL"
        ).fetchall()
    ]
    found = {}
    for qualified in tables:
        schema, name = qualified.split(".")
        n = conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE customer_id = %s").format(
                sql.Identifier(schema, name)
            ),
            (token,),
        ).fetchone()
        found[qualified] = int(n[0]) if n else 0
    return found


def _in_files(conn: psycopg.Connection, table: str, needle: bytes) -> bool:
    conn.execute("CHECKPOINT")
    data_dir = Path(str(conn.execute("SHOW data_directory").fetchone()[0]))  # type: ignore[index]
    rel = conn.execute("SELECT pg_relation_filepath(%s::regclass)", (table,)).fetchone()
    base = data_dir / str(rel[0])  # type: ignore[index]
    files = [base, *base.parent.glob(f"{base.name}.*")]
    return any(needle in f.read_bytes() for f in files if f.is_file())


def test_an_erased_subject_leaves_every_table_and_stays_out(
    seeded_db: str,
    conn: psycopg.Connection,
    customers_policy_path: Path,
    role_logins: dict[str, str],
    as_login: Callable[[str], psycopg.Connection],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Runs as the pipeline's login, as every run does: its tables are that login's own.
    monkeypatch.setenv("VEILFLOW_DATABASE_URL", _url(seeded_db, role_logins["pipeline"]))
    policy = load_policy(customers_policy_path)
    run_policy(policy)
    # A refused run of the same dataset leaves a quarantined candidate holding the subject.
    strict = parse_policy(
        customers_policy_path.read_text().replace("  k: 1\n", "  k: 500\n"),
        str(customers_policy_path),
    )
    with pytest.raises(ValidationFailed):
        run_policy(strict)
    subject = str(
        conn.execute("SELECT min(customer_id) FROM restricted.customers").fetchone()[0]  # type: ignore[index]
    )
    token = _token_of(policy, seeded_db, subject)
    before = _rows_of(conn, token)
    assert before["anonymized.customers"] == 1 and len(before) == 2 and min(before.values()) == 1

    # Only a steward, with a reason, may request; the key is not stored.
    steward = role_logins["steward"]

    def keys_as(login: str) -> VaultKeyProvider:
        return VaultKeyProvider(
            default_master_key(), lambda: as_login(login), operation="reidentify", purpose=REASON
        )

    for role in ("pipeline", "ml_engineer", "auditor"):
        with as_login(role_logins[role]) as c, pytest.raises(AccessDenied):
            request(c, policy, subject, REASON, keys_as(role_logins[role]))
    with as_login(steward) as c:
        with pytest.raises(ErasureError, match="reason"):
            request(c, policy, subject, "because", keys_as(steward))
        request_id = request(c, policy, subject, REASON, keys_as(steward))
        with pytest.raises(AccessDenied):  # the steward cannot apply it: not its tables
            apply(c, policy)
    stored = conn.execute(
        "SELECT subject_tokens, reason FROM governance.erasure_requests WHERE id = %s",
        (request_id,),
    ).fetchone()
    assert stored is not None and stored[0] == [token]  # the token, not the key

    with as_login(role_logins["pipeline"]) as c:
        (report,) = apply(c, policy)
        assert apply(c, policy) == []  # applied once
    assert report.request == request_id and report.left == 0
    assert report.removed == before
    assert set(_rows_of(conn, token).values()) == {0}
    assert not _in_files(conn, "anonymized.customers", token.encode())

    # A later run publishes everyone else, and not the subject.
    summary = run_policy(policy)
    assert summary.rows_published == 1999
    assert _rows_of(conn, token)["anonymized.customers"] == 0
    # It left the subject out at extract, so its gate counted the rows it published.
    manifest = conn.execute(
        "SELECT manifest FROM governance.runs WHERE run_id = %s", (summary.run_id,)
    ).fetchone()[0]  # type: ignore[index]
    assert manifest["erased_left_out"] == 1 and manifest["rows_in"] == 1999

    audit = conn.execute(
        "SELECT action, actor, outcome, count FROM governance.audit_log"
        " WHERE action LIKE 'erasure.%' ORDER BY seq"
    ).fetchall()
    assert ("erasure.request", steward, "ok", 1) in audit
    assert ("erasure.apply", role_logins["pipeline"], "ok", 2) in audit
    assert {a[1] for a in audit if a[2] == "denied"} >= {
        role_logins["pipeline"],
        role_logins["ml_engineer"],
        role_logins["auditor"],
    }
    assert verify(conn).ok


def test_a_dataset_whose_key_is_not_tokenized_cannot_erase(
    zones_db: str,
    customers_policy_path: Path,
    role_logins: dict[str, str],
    as_login: Callable[[str], psycopg.Connection],
) -> None:
    text = customers_policy_path.read_text().replace(
        "  customer_id: {action: tokenize}", "  customer_id: {action: ff1, alphabet: digits}"
    )
    policy = parse_policy(text, "customers.yaml")
    keys = VaultKeyProvider(
        default_master_key(),
        lambda: as_login(role_logins["steward"]),
        operation="reidentify",
        purpose=REASON,
    )
    with as_login(role_logins["steward"]) as c, pytest.raises(ErasureError, match="tokenized"):
        request(c, policy, "1", REASON, keys)


def test_the_erase_command(
    seeded_db: str,
    conn: psycopg.Connection,
    customers_policy_path: Path,
    role_logins: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VEILFLOW_POLICIES", str(customers_policy_path.parent))
    policy = load_policy(customers_policy_path)
    monkeypatch.setenv("VEILFLOW_DATABASE_URL", _url(seeded_db, role_logins["pipeline"]))
    run_policy(policy)
    subject = str(
        conn.execute("SELECT max(customer_id) FROM restricted.customers").fetchone()[0]  # type: ignore[index]
    )
    runner = CliRunner()
    monkeypatch.setenv("VEILFLOW_DATABASE_URL", _url(seeded_db, role_logins["steward"]))
    r = runner.invoke(
        cli_app,
        ["erase", "--dataset", "customers", "--subject", "-", "--reason", REASON],
        input=subject + "\n",
    )
    assert r.exit_code == 0, r.output
    assert "recorded for customers" in r.output and subject not in r.output
    monkeypatch.setenv("VEILFLOW_DATABASE_URL", _url(seeded_db, role_logins["pipeline"]))
    r = runner.invoke(cli_app, ["erase", "--dataset", "customers", "--apply"])
    assert r.exit_code == 0, r.output
    assert "1 row(s) removed (anonymized.customers 1); 0 left" in r.output
    r = runner.invoke(cli_app, ["erase", "--dataset", "customers", "--apply"])
    assert "no pending erasure request for customers" in r.output
    token = _token_of(policy, seeded_db, subject)
    assert _rows_of(conn, token)["anonymized.customers"] == 0
