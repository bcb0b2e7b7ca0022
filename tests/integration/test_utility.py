"""The utility report: a model trained on the source and on the masked table, scored on the
same held-out records. Where the masking removes the signal the model needs, the report
shows the cost; only metrics reach the manifest and lineage."""

from __future__ import annotations

import json

import psycopg
import pytest

from tests.conftest import DEMO_POLICY, small_data_policy
from veilflow.pipeline.runner import run_policy
from veilflow.policy import parse_policy

pytestmark = pytest.mark.slow

UTILITY = """
utility:
  target: gender
  features: [amount, diagnosis]
  seed: 3
"""


def test_the_report_shows_what_coarse_buckets_cost_the_model(
    seeded_db: str, conn: psycopg.Connection
) -> None:
    # A target the source's amount predicts exactly; buckets of 500 leave almost nothing.
    conn.execute(
        "UPDATE restricted.customers SET gender = CASE WHEN amount < 110 THEN 'F' ELSE 'M' END"
    )
    text = small_data_policy(DEMO_POLICY.read_text()).replace(
        "  amount:      keep\n", "  amount:      {action: generalize, bucket: 500}\n"
    )
    assert "bucket: 500" in text
    summary = run_policy(parse_policy(text + UTILITY))
    m = conn.execute(
        "SELECT manifest FROM governance.runs WHERE run_id = %s", (summary.run_id,)
    ).fetchone()[0]
    u = m["utility"]
    assert u["records"] == {"train": 1400, "test": 600}
    src, masked = u["variants"]["source"], u["variants"]["masked"]
    assert src["features"]["numeric"] == ["amount"]
    assert masked["features"]["categorical"] == ["amount", "diagnosis"]
    assert src["auc"] > 0.95 and masked["auc"] < 0.8
    assert u["cost"]["auc"] == pytest.approx(src["auc"] - masked["auc"], abs=1e-3)
    # Only metrics leave: no record, no value of the columns, in the manifest or lineage.
    event = conn.execute(
        "SELECT event FROM governance.lineage_events WHERE run_id = %s"
        " AND stage = 'publish' AND event_type = 'COMPLETE'",
        (summary.run_id,),
    ).fetchone()
    facet = event[0]["run"]["facets"]["veilflow_anonymization"]["utility"]
    assert facet["cost"]["auc"] == u["cost"]["auc"]
    raw = conn.execute("SELECT array_agg(DISTINCT diagnosis) FROM restricted.customers").fetchone()[
        0
    ]
    dumped = json.dumps(u)
    assert not any(f'"{d}"' in dumped for d in raw if d)
