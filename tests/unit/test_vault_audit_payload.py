"""The audit chain's payload is written twice — in the insert trigger (sql/0010_vault.sql) and
in ``veilflow.vault.audit`` (verification recomputes it) — and both must stay the same."""

from __future__ import annotations

import re
from pathlib import Path

from veilflow.vault import audit

SQL = Path(__file__).resolve().parents[2] / "sql" / "0010_vault.sql"


def _normal(text: str) -> str:
    return re.sub(r"\s+", "", text).replace("NEW.", "")


def test_trigger_and_verifier_hash_the_same_payload() -> None:
    trigger = SQL.read_text()
    m = re.search(
        r"NEW\.row_hash := encode\(sha256\(convert_to\(NEW\.prev_hash \|\| "
        r"(jsonb_build_array\(.*?\)::text), 'UTF8'\)\), 'hex'\);",
        trigger,
        re.DOTALL,
    )
    assert m is not None
    assert _normal(m.group(1)) == _normal(audit._PAYLOAD_SQL)


def test_outcomes_match_the_table_check() -> None:
    m = re.search(r"outcome\s+text NOT NULL CHECK \(outcome IN \(([^)]*)\)\)", SQL.read_text())
    assert m is not None
    assert tuple(re.findall(r"'(\w+)'", m.group(1))) == audit.OUTCOMES
