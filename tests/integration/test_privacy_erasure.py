"""An erased data subject stays out of what the privacy package computes: the DP releases'
cells and the synthetic table's fit, as they stay out of the published table."""

from __future__ import annotations

import psycopg
import pytest

from tests.conftest import DEMO_POLICY, small_data_policy
from veilflow.pipeline.runner import run_policy
from veilflow.policy import parse_policy
from veilflow.privacy import erased
from veilflow.privacy.budget import set_budget

pytestmark = pytest.mark.slow

SECTIONS = """
releases:
  - name: diagnosis_counts
    statistic: count
    group_by: {diagnosis: [asthma, migraine]}
    epsilon: 1.0
synthetic:
  columns: [gender, amount, diagnosis]
  max_close_share: 1.0    # three columns of 2,000 rows: closeness is tested elsewhere
"""


def test_erased_subjects_are_left_out_of_releases_and_the_synthetic_fit(
    seeded_db: str, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = parse_policy(small_data_policy(DEMO_POLICY.read_text()) + SECTIONS)
    set_budget(conn, "customers", 10.0, 0.0)
    run_policy(policy)
    # Every customer with asthma asks to be erased (their tokens, as a request holds them).
    tokens = [
        r[0]
        for r in conn.execute(
            "SELECT customer_id FROM anonymized.customers WHERE diagnosis = 'asthma'"
        ).fetchall()
    ]
    assert len(tokens) > 100
    monkeypatch.setattr(erased, "erased_tokens", lambda _conn, _dataset: tokens)
    run_policy(policy)
    counts = dict(
        conn.execute(
            "SELECT diagnosis, count FROM anonymized.customers_diagnosis_counts"
        ).fetchall()
    )
    # Noise of scale 1: the asthma count is near 0, not near its ~150 records.
    assert counts["asthma"] < 15 and counts["migraine"] > 100
    assert conn.execute(
        "SELECT count(*) FROM anonymized.customers_synthetic WHERE diagnosis = 'asthma'"
    ).fetchone() == (0,)
