"""Shared pieces of the lineage tests: where the official OpenLineage schemas are, and a
hand-made policy and run manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.tooling import require
from veilflow.pipeline.manifest import column_entries
from veilflow.pipeline.plan import plan_policy
from veilflow.policy import parse_policy
from veilflow.policy.model import Policy
from veilflow.transform.keys import LocalKeyProvider
from veilflow.zones.run_tables import SourceColumn

REPO = Path(__file__).resolve().parents[2]
#: The official schemas sit beside the checkout (``../shared/openlineage-spec`` in CI).
SPEC_DIR = REPO.parent / "shared" / "openlineage-spec"

MASTER = bytes(range(100, 132))
KEYS = LocalKeyProvider(MASTER)

POLICY = """\
dataset: patients
source: {table: restricted.patients, key: patient_id}
target: {table: anonymized.patients}
columns:
  patient_id: {action: tokenize}
  email: {action: tokenize, keep_domain: true}
  phone: {action: mask, keep_last: 2}
  zip: {action: generalize, keep_prefix: 3}
  notes: {action: redact}
  ward: keep
  fax: drop
"""

SOURCE = [
    SourceColumn("patient_id", "bigint", True),
    SourceColumn("email", "text", True),
    SourceColumn("phone", "text", False),
    SourceColumn("zip", "text", True),
    SourceColumn("notes", "text", False),
    SourceColumn("ward", "text", True),
    SourceColumn("fax", "text", False),
]
RUN_ID = "scheduled__2026-11-27T06:00:00+00:00"


def require_spec() -> Path:
    require(
        (SPEC_DIR / "OpenLineage.json").is_file(),
        f"the official OpenLineage schemas at {SPEC_DIR}",
        "copy spec/OpenLineage.json and spec/facets/ of github.com/OpenLineage/OpenLineage"
        " to ../shared/openlineage-spec beside the checkout",
    )
    return SPEC_DIR


def policy() -> Policy:
    return parse_policy(POLICY, file=str(REPO / "policies" / "patients.yaml"))


def manifest(*, passed: bool = True) -> dict[str, Any]:
    """A run's manifest as the stages write it: columns from the real plan, the rest by hand."""
    pol = policy()
    plan = plan_policy(pol, KEYS)
    checks = [
        {
            "name": "row_count_parity",
            "passed": True,
            "observed": 1000,
            "threshold": 1000,
            "column": None,
            "details": {},
            "seconds": 0.01,
        },
        {
            "name": "no_raw_value_survives",
            "passed": passed,
            "observed": 0 if passed else 3,
            "threshold": 0,
            "column": "email",
            "details": {},
            "seconds": 0.02,
        },
        {
            "name": "k_anonymity",
            "passed": True,
            "observed": 7,
            "threshold": 5,
            "column": None,
            "details": {"quasi_identifiers": ["zip"]},
            "seconds": 0.03,
        },
    ]
    m: dict[str, Any] = {
        "run_id": RUN_ID,
        "dataset": pol.dataset,
        "policy": {"file": pol.file, "hash": pol.hash, "dataset": pol.dataset},
        "source": {
            "table": pol.source.table,
            "key": pol.source.key,
            "columns": [{"name": c.name, "type": c.type, "not_null": c.not_null} for c in SOURCE],
        },
        "target": {"table": pol.target.table},
        "columns": [e.to_json() for e in column_entries(plan, {c.name: c for c in SOURCE})],
        "rows_in": 1000,
        "canaries": 20,
        "chunks": 1,
        "counters": {
            "notes": {"entity:PERSON": 41, "entity:EMAIL_ADDRESS": 9},
            "email": {"fallback_token": 2},
        },
        "gate": {
            "passed": passed,
            "checks": checks,
            "suppressed_rows": 4,
            "metrics": {},
            "data_docs": "file:///tmp/docs/index.html",
        },
    }
    if passed:
        m["rows_out"] = 996
    else:
        m["quarantine"] = {
            "table": "quarantine.patients__x",
            "reasons": [
                {"check": "no_raw_value_survives", "column": "email", "observed": 3, "threshold": 0}
            ],
        }
    return m
