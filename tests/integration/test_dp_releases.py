"""DP releases end to end: a run with a budget publishes each release as a table in the
anonymized zone that ML engineers read, spends its ε in the ledger and the manifest; a run
the remaining budget cannot pay is refused before any release is written, and audited."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from tests.conftest import DEMO_POLICY, small_data_policy
from veilflow.cli import app
from veilflow.pipeline.keys import default_key_provider
from veilflow.pipeline.runner import run_policy
from veilflow.pipeline.stages import extract, publish, transform_chunk, validate
from veilflow.policy import parse_policy
from veilflow.privacy.budget import BudgetExceeded, set_budget

pytestmark = pytest.mark.slow

RELEASES = """
releases:
  - name: amount_histogram
    statistic: histogram
    column: amount
    bins: [0, 25, 50, 100, 200, 400, 800, 1600]
    group_by: {gender: [F, M, X]}
    epsilon: 0.5
  - name: diagnosis_counts
    statistic: count
    group_by: {diagnosis: [asthma, migraine, none, not a diagnosis]}
    epsilon: 0.3
  - name: mean_amount_by_gender
    statistic: mean
    column: amount
    bounds: [0, 1000]
    group_by: {gender: [F, M, X]}
    epsilon: 0.2
"""


@pytest.fixture
def policy_text(tmp_path: Path) -> str:
    """The small-data demo policy with three releases costing ε 1.0 a run."""
    assert "releases:" in DEMO_POLICY.read_text()
    return small_data_policy(DEMO_POLICY.read_text()) + RELEASES


def audit_rows(conn: psycopg.Connection, action: str) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT outcome, details->>'reason' FROM governance.audit_log WHERE action = %s"
        " ORDER BY seq",
        (action,),
    ).fetchall()


def table_md5(conn: psycopg.Connection, table: str) -> object:
    return conn.execute(
        f"SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM {table} t"
    ).fetchone()


def test_no_budget_refuses_the_run_before_anything_is_written(
    seeded_db: str, conn: psycopg.Connection, policy_text: str
) -> None:
    with pytest.raises(BudgetExceeded) as info:
        run_policy(parse_policy(policy_text))
    assert "has no privacy budget" in str(info.value) and "budget set customers" in str(info.value)
    assert audit_rows(conn, "dp_release") == [("denied", str(info.value).split(": ", 2)[-1])]
    tables = conn.execute(
        "SELECT count(*) FROM pg_tables WHERE schemaname IN ('anonymized', 'staging')"
    ).fetchone()
    assert tables == (0,)


def test_releases_spend_the_budget_and_an_exhausted_budget_refuses(
    seeded_db: str, conn: psycopg.Connection, policy_text: str
) -> None:
    set_budget(conn, "customers", 2.5, 0.0)
    first = run_policy(parse_policy(policy_text))
    # Every declared cell, and only those: 3 genders x 7 bins, 4 diagnoses, 3 means.
    assert conn.execute(
        "SELECT count(*) FROM anonymized.customers_amount_histogram"
    ).fetchone() == (21,)
    counts = dict(
        conn.execute(
            "SELECT diagnosis, count FROM anonymized.customers_diagnosis_counts"
        ).fetchall()
    )
    assert set(counts) == {"asthma", "migraine", "none", "not a diagnosis"}
    true = dict(
        conn.execute("SELECT diagnosis, count(*) FROM restricted.customers GROUP BY 1").fetchall()
    )
    # ε 0.3: the noise's standard deviation is ~4.6; 40 is beyond 8 of them.
    assert abs(counts["none"] - true["none"]) < 40 and counts["none"] != 0
    means = conn.execute(
        "SELECT min(mean), max(mean) FROM anonymized.customers_mean_amount_by_gender"
    ).fetchone()
    assert 0 <= means[0] <= means[1] <= 1000
    # ML engineers read the releases (the zone's grants, as for the masked table).
    conn.execute("SET ROLE veilflow_ml_engineer")
    assert conn.execute(
        "SELECT count(*) FROM anonymized.customers_diagnosis_counts"
    ).fetchone() == (4,)
    conn.execute("RESET ROLE")
    manifest = conn.execute(
        "SELECT manifest FROM governance.runs WHERE run_id = %s", (first.run_id,)
    ).fetchone()[0]
    dp = manifest["releases"]
    assert dp["epsilon_spent"] == pytest.approx(1.0)
    assert dp["budget"]["epsilon_remaining"] == pytest.approx(1.5)
    hist = next(r for r in dp["releases"] if r["name"] == "amount_histogram")
    assert (hist["mechanism"], hist["cells"], hist["scale"]) == ("geometric", 21, 2.0)

    run_policy(parse_policy(policy_text))  # 0.5 left
    before = {
        t: table_md5(conn, t)
        for t in ("anonymized.customers_diagnosis_counts", "anonymized.customers")
    }
    runs_before = conn.execute("SELECT count(*) FROM governance.runs").fetchone()
    # On purpose: a third run would spend 1.0 of the 0.5 left.
    with pytest.raises(BudgetExceeded) as info:
        run_policy(parse_policy(policy_text))
    assert "would spend ε 1, more than the 0.5 remaining of 2.5" in str(info.value)
    assert {t: table_md5(conn, t) for t in before} == before
    assert conn.execute("SELECT count(*) FROM governance.runs").fetchone() == runs_before
    assert [o for o, _ in audit_rows(conn, "dp_release")] == ["denied"]
    assert conn.execute(
        "SELECT sum(epsilon) FROM governance.privacy_spend WHERE dataset = 'customers'"
    ).fetchone() == (pytest.approx(2.0),)

    out = CliRunner().invoke(app, ["budget", "show", "customers"])
    assert out.exit_code == 0, out.output
    assert "ε 2.5 total, 2 spent, 0.5 remaining" in out.output
    assert len(out.output.splitlines()) == 1 + 6


def test_a_budget_lowered_while_a_run_is_under_way_refuses_at_publish(
    seeded_db: str, conn: psycopg.Connection, policy_text: str
) -> None:
    """The spend is checked again under the dataset's lock when the releases are written."""
    policy = parse_policy(policy_text)
    set_budget(conn, "customers", 5.0, 0.0)
    keys = default_key_provider()
    ex = extract(policy, "r-lowered", keys)
    for chunk in ex.chunks:
        transform_chunk(policy, "r-lowered", chunk, keys)
    validate(policy, "r-lowered", keys=keys)
    set_budget(conn, "customers", 0.5, 0.0)
    with pytest.raises(BudgetExceeded):
        publish(policy, "r-lowered")
    for table in ("customers_amount_histogram", "customers"):
        assert conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'anonymized' AND tablename = %s",
            (table,),
        ).fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM governance.privacy_spend").fetchone() == (0,)
    assert [o for o, _ in audit_rows(conn, "dp_release")] == ["denied"]
