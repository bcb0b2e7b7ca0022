"""An erasure never leaves the published table below its k (ADR 0022), on a hand-made table
whose classes are known: zip 10001 holds exactly k = 5 members, zip 20002 seven.

- A run after a request leaves the subject out at extract, so the gate measures the rows it
  publishes: the subject's class of 5 is 4 there, and the gate refuses it (it used to pass
  on the 5 it counted and publish a class of 4).
- Applying a request to a published table suppresses the rest of any class it left below k.
- An appending run after that measures k on the published table itself, not on the class
  histogram kept from before the erasure, which still counts the rows that are gone.
"""

from __future__ import annotations

import psycopg
import pytest

from veilflow.errors import ValidationFailed
from veilflow.pipeline.erased import apply_erasures
from veilflow.pipeline.runner import run_policy
from veilflow.policy import parse_policy
from veilflow.policy.model import Policy
from veilflow.vault.erasure import request
from veilflow.vault.master import default_master_key
from veilflow.vault.provider import VaultKeyProvider

REASON = "GDPR art. 17 request #5120 from the data subject"

POLICY = """\
dataset: members
source: {{table: restricted.members, key: member_id}}
target: {{table: anonymized.members}}
columns:
  member_id: {{action: tokenize}}
  zip: {{action: keep}}
  diagnosis: {{action: keep}}
privacy:
  quasi_identifiers: [zip]
  k: 5
  on_violation: {on_violation}
  max_suppression: 0.5
{extra}"""


def _policy(on_violation: str = "fail", extra: str = "") -> Policy:
    return parse_policy(POLICY.format(on_violation=on_violation, extra=extra), "members.yaml")


@pytest.fixture
def members(conn: psycopg.Connection) -> None:
    """Members 1-5 live in zip 10001 (a class of exactly k), 6-12 in zip 20002."""
    conn.execute(
        "CREATE TABLE restricted.members (member_id integer PRIMARY KEY, zip text, diagnosis text)"
    )
    conn.execute(
        "INSERT INTO restricted.members SELECT i, CASE WHEN i <= 5 THEN '10001' ELSE '20002'"
        " END, (ARRAY['asthma', 'flu', 'migraine'])[1 + i % 3] FROM generate_series(1, 12) i"
    )


def _erase(conn: psycopg.Connection, zones_db: str, policy: Policy, subject: str) -> None:
    keys = VaultKeyProvider(
        default_master_key(),
        lambda: psycopg.connect(zones_db, autocommit=True),
        operation="reidentify",
        purpose=REASON,
    )
    request(conn, policy, subject, REASON, keys)


def _classes(conn: psycopg.Connection) -> dict[str, int]:
    return dict(
        conn.execute("SELECT zip, count(*) FROM anonymized.members GROUP BY zip").fetchall()
    )


def test_the_gate_measures_k_without_the_erased_subject(
    members: None, zones_db: str, conn: psycopg.Connection
) -> None:
    policy = _policy()
    run_policy(policy)
    assert _classes(conn) == {"10001": 5, "20002": 7}
    _erase(conn, zones_db, policy, "3")

    with pytest.raises(ValidationFailed) as refused:
        run_policy(policy)
    assert "k_anonymity" in str(refused.value)
    status, manifest = conn.execute(
        "SELECT status, manifest FROM governance.runs ORDER BY started_at DESC LIMIT 1"
    ).fetchone()  # type: ignore[misc]
    gate = manifest["gate"]
    assert status == "quarantined"
    assert manifest["erased_left_out"] == 1 and manifest["rows_in"] == 11
    (k_check,) = [c for c in gate["checks"] if c["name"] == "k_anonymity"]
    assert k_check["observed"] == 4 and not k_check["passed"]
    assert _classes(conn) == {"10001": 5, "20002": 7}  # the refused run published nothing

    # With suppression the run publishes the seven members whose class still holds k.
    run_policy(_policy("suppress"))
    assert _classes(conn) == {"20002": 7}


def test_applying_a_request_suppresses_the_class_it_leaves_below_k(
    members: None, zones_db: str, conn: psycopg.Connection
) -> None:
    policy = _policy()
    run_policy(policy)
    _erase(conn, zones_db, policy, "3")
    with psycopg.connect(zones_db, autocommit=True) as c:
        (report,) = apply_erasures(c, policy)
    assert report.removed["anonymized.members"] == 1 and report.suppressed == 4
    assert _classes(conn) == {"20002": 7}
    audit = conn.execute(
        "SELECT details FROM governance.audit_log WHERE action = 'erasure.apply'"
    ).fetchone()
    assert audit is not None and audit[0]["suppressed_below_k"] == 4


def test_an_appending_run_after_an_erasure_measures_the_published_table(
    members: None, zones_db: str, conn: psycopg.Connection
) -> None:
    policy = _policy(extra="incremental: {cursor: member_id}\n")
    run_policy(policy)
    _erase(conn, zones_db, policy, "3")
    with psycopg.connect(zones_db, autocommit=True) as c:
        (report,) = apply_erasures(c, policy)
    assert report.suppressed == 4 and _classes(conn) == {"20002": 7}
    # Three new members in zip 20002: a class of 10 after the append, which a run that
    # counted only its own rows (3) would refuse.
    conn.execute(
        "INSERT INTO restricted.members SELECT i, '20002', 'flu' FROM generate_series(13, 15) i"
    )
    run_policy(policy)
    assert _classes(conn) == {"20002": 10}
    # Three in zip 10001: a class of 3 in the published table after the append. The
    # histogram kept from the first run still counts five there and would pass it.
    conn.execute(
        "INSERT INTO restricted.members SELECT i, '10001', 'flu' FROM generate_series(16, 18) i"
    )
    with pytest.raises(ValidationFailed) as refused:
        run_policy(policy)
    assert "k_anonymity" in str(refused.value)
    assert _classes(conn) == {"20002": 10}
