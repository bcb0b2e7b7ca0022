"""Applying an erasure request to a dataset of two tables keeps every published table's k
and makes no orphan (ADR 0023), on hand-made tables whose classes are known.

members: 1-5 in zip 10001 (a class of exactly k = 5), 6-12 in zip 20002.
visits (two per member, ``visits.member_id`` refers to ``members``; k = 2 on ward): the
members of 10001 in ward A, those of 20002 in ward B, except that member 1 and member 6 have
one visit each in ward C, a class of exactly 2.

Erasing member 3 removes them and their 2 visits. Zip 10001 is then a class of 4, so members
1, 2, 4 and 5 are suppressed; their 8 visits go with them (they would be orphans); ward C is
then member 6's one visit, a class of 1, suppressed too. Left: the 7 members of 20002 and
their 13 visits in ward B.
"""

from __future__ import annotations

import psycopg
import pytest

from veilflow.pipeline.dataset_run import run_dataset
from veilflow.pipeline.erased_dataset import apply_dataset_erasures
from veilflow.policy import DatasetPolicy, parse_any_policy
from veilflow.vault.audit import verify
from veilflow.vault.erasure_dataset import request_dataset
from veilflow.vault.master import default_master_key
from veilflow.vault.provider import VaultKeyProvider

REASON = "GDPR art. 17 request #5120 from the data subject"

POLICY = """\
dataset: clinic
tables:
  members:
    source: {table: restricted.members, key: member_id}
    target: {table: anonymized.members}
    columns:
      member_id: {action: tokenize}
      zip: keep
      diagnosis: keep
    privacy: {quasi_identifiers: [zip], k: 5, on_violation: fail}
  visits:
    source: {table: restricted.visits, key: visit_id}
    target: {table: anonymized.visits}
    foreign_keys: {member_id: members}
    columns:
      visit_id: {action: tokenize}
      ward: keep
    privacy: {quasi_identifiers: [ward], k: 2, on_violation: fail}
"""


@pytest.fixture
def clinic(conn: psycopg.Connection) -> DatasetPolicy:
    conn.execute(
        "CREATE TABLE restricted.members (member_id integer PRIMARY KEY, zip text, diagnosis text)"
    )
    conn.execute(
        "INSERT INTO restricted.members SELECT i, CASE WHEN i <= 5 THEN '10001' ELSE '20002'"
        " END, (ARRAY['asthma', 'flu', 'migraine'])[1 + i % 3] FROM generate_series(1, 12) i"
    )
    conn.execute(
        "CREATE TABLE restricted.visits (visit_id integer PRIMARY KEY,"
        " member_id integer REFERENCES restricted.members, ward text)"
    )
    conn.execute(
        "INSERT INTO restricted.visits SELECT 10 * i + v, i,"
        " CASE WHEN v = 2 AND i IN (1, 6) THEN 'C' WHEN i <= 5 THEN 'A' ELSE 'B' END"
        " FROM generate_series(1, 12) i, generate_series(1, 2) v"
    )
    ds = parse_any_policy(POLICY, "clinic.yaml")
    assert isinstance(ds, DatasetPolicy)
    return ds


def _classes(conn: psycopg.Connection, table: str, column: str) -> dict[str, int]:
    return dict(
        conn.execute(f"SELECT {column}, count(*) FROM anonymized.{table} GROUP BY 1").fetchall()
    )


def test_applying_a_request_keeps_each_tables_k_and_makes_no_orphan(
    clinic: DatasetPolicy, zones_db: str, conn: psycopg.Connection
) -> None:
    run_dataset(clinic)
    assert _classes(conn, "members", "zip") == {"10001": 5, "20002": 7}
    assert _classes(conn, "visits", "ward") == {"A": 9, "B": 13, "C": 2}

    with psycopg.connect(zones_db, autocommit=True) as c:
        keys = VaultKeyProvider(
            default_master_key(),
            lambda: psycopg.connect(zones_db, autocommit=True),
            operation="reidentify",
            purpose=REASON,
        )
        request_dataset(c, clinic, "3", REASON, keys)
        (report,) = apply_dataset_erasures(c, clinic)

    assert report.removed == {"anonymized.members": 1, "anonymized.visits": 2}
    assert report.suppressed == 4 + 9
    assert _classes(conn, "members", "zip") == {"20002": 7}
    assert _classes(conn, "visits", "ward") == {"B": 13}
    orphans = conn.execute(
        "SELECT count(*) FROM anonymized.visits v"
        " WHERE NOT EXISTS (SELECT 1 FROM anonymized.members m WHERE m.member_id = v.member_id)"
    ).fetchone()
    assert orphans == (0,)
    (details,) = conn.execute(
        "SELECT details FROM governance.audit_log WHERE action = 'erasure.apply'"
    ).fetchone()  # type: ignore[misc]
    assert details["suppressed_below_k"] == {"anonymized.members": 4, "anonymized.visits": 9}
    assert verify(conn).ok
