"""After a real run and a re-identification, no key material and no raw personal data is
found in the governance tables or in anything logged."""

from __future__ import annotations

import base64
import logging
import os
import re
from pathlib import Path

import psycopg
import pytest

from veilflow.pipeline.runner import run_policy
from veilflow.policy import parse_policy
from veilflow.vault.keys import list_keys, unwrap
from veilflow.vault.master import default_master_key
from veilflow.vault.reidentify import reidentify

pytestmark = pytest.mark.slow

#: Source column -> the shape a leaked value would have in text.
SHAPES = {
    "email": r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+",
    "ssn": r"\d{3}-\d{2}-\d{4}",
    "full_name": r"[A-Z][a-z]+(?: [A-Z][a-z']+)+",
    "phone": r"[\d()+][\d ().-]{7,}\d",
    "credit_card": r"\d[\d -]{11,22}\d",
    "iban": r"[A-Z]{2}\d{2}[A-Z0-9 ]{10,30}",
}


def _governance_text(conn: psycopg.Connection) -> str:
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'governance' AND c.relkind IN ('r', 'p')"
        ).fetchall()
    ]
    assert {"audit_log", "data_keys", "runs"} <= set(tables)
    chunks = []
    for t in tables:
        chunks += [r[0] for r in conn.execute(f'SELECT t::text FROM governance."{t}" t').fetchall()]  # type: ignore[arg-type]
    return "\n".join(chunks)


def test_no_key_material_or_raw_pii_after_a_run(
    seeded_db: str,
    conn: psycopg.Connection,
    customers_policy_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    policy = parse_policy(customers_policy_path.read_text())
    caplog.set_level(logging.DEBUG)
    run_policy(policy)
    tokens = [
        r[0]
        for r in conn.execute(
            "SELECT ssn FROM anonymized.customers ORDER BY ssn LIMIT 50"
        ).fetchall()
    ]
    got = reidentify(
        conn, default_master_key(), policy, "ssn", tokens, "leak test: audit of re-identification"
    )
    assert got.matched == 50
    text = _governance_text(conn) + "\n" + caplog.text
    # Key material, in every form it could take in text.
    master = default_master_key()
    secrets_found = []
    materials = [base64.b64decode(os.environ["VEILFLOW_MASTER_KEY"])]
    materials += [unwrap(master, v).material for v in list_keys(conn) if v.wrapped]
    assert len(materials) >= 2
    for m in materials:
        for form in (
            m.hex(),
            base64.b64encode(m).decode(),
            base64.b64encode(m).decode()[:20],
            "\\x" + m.hex(),
            m.hex()[:24],
        ):
            if form in text:
                secrets_found.append(form[:6] + "…")
    assert not secrets_found
    # Raw personal data: every source value of every identifying column.
    leaked: dict[str, int] = {}
    for column, shape in SHAPES.items():
        values = {
            r[0]
            for r in conn.execute(f"SELECT {column}::text FROM restricted.customers").fetchall()  # type: ignore[arg-type]
            if r[0]
        }
        candidates = set(re.findall(shape, text))
        hits = values & candidates
        if hits:
            leaked[column] = len(hits)
    assert leaked == {}
    # The scan itself can see a leak: a planted value is found.
    planted = next(
        iter(
            {
                r[0]
                for r in conn.execute("SELECT email FROM restricted.customers LIMIT 1").fetchall()
            }
        )
    )
    assert planted in set(re.findall(SHAPES["email"], text + f"\n{planted}\n"))
