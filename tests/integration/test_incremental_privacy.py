"""An appending run makes no DP release, synthetic table or utility report: it sees only its
new rows, and those describe the whole table. Full runs make them; an appending run keeps
the last ones as they are, spends no ε (so an exhausted budget does not stop it) and says in
its manifest what it left to full runs."""

from __future__ import annotations

import psycopg
import pytest

from tests.conftest import DEMO_POLICY, small_data_policy
from veilflow.pipeline.runner import run_policy
from veilflow.pipeline.seed import append_customers
from veilflow.policy import parse_policy
from veilflow.privacy.budget import BudgetExceeded, set_budget

pytestmark = pytest.mark.slow

SECTIONS = """
incremental: {cursor: customer_id}
releases:
  - name: diagnosis_counts
    statistic: count
    group_by: {diagnosis: [asthma, migraine]}
    epsilon: 1.0
synthetic:
  columns: [gender, amount, diagnosis]
  max_close_share: 1.0    # three columns of 2,000 rows: closeness is tested elsewhere
"""


def _digest(conn: psycopg.Connection, table: str) -> object:
    return conn.execute(
        f"SELECT count(*), md5(string_agg(t::text, ',' ORDER BY t::text)) FROM {table} t"
    ).fetchone()


def _manifest(conn: psycopg.Connection, run_id: str) -> dict[str, object]:
    row = conn.execute("SELECT manifest FROM governance.runs WHERE run_id = %s", (run_id,))
    return row.fetchone()[0]  # type: ignore[index, no-any-return]


def test_full_runs_make_releases_and_synthetic_tables_appending_runs_keep_them(
    seeded_db: str, conn: psycopg.Connection
) -> None:
    policy = parse_policy(small_data_policy(DEMO_POLICY.read_text()) + SECTIONS)
    set_budget(conn, "customers", 1.0, 0.0)  # one full run's releases, no more
    first = run_policy(policy)
    m1 = _manifest(conn, first.run_id)
    assert m1["incremental"]["mode"] == "full" and "full_runs_only" not in m1  # type: ignore[index]
    releases = _digest(conn, "anonymized.customers_diagnosis_counts")
    synthetic = _digest(conn, "anonymized.customers_synthetic")
    assert synthetic[0] > 1900  # type: ignore[index]

    append_customers(conn, 100)
    second = run_policy(policy)
    m2 = _manifest(conn, second.run_id)
    assert m2["incremental"]["mode"] == "append"  # type: ignore[index]
    assert m2["full_runs_only"] == ["releases", "synthetic"]
    assert "releases" not in m2 and "synthetic" not in m2
    assert second.rows_published == 100
    assert conn.execute("SELECT count(*) FROM anonymized.customers").fetchone() == (2100,)
    # The last full run's release and synthetic table stay as they were; no ε was spent.
    assert _digest(conn, "anonymized.customers_diagnosis_counts") == releases
    assert _digest(conn, "anonymized.customers_synthetic") == synthetic
    spent = conn.execute(
        "SELECT run_id, sum(epsilon) FROM governance.privacy_spend GROUP BY run_id"
    ).fetchall()
    assert [(r, float(e)) for r, e in spent] == [(first.run_id, pytest.approx(1.0))]

    # A full run makes them again, and pays: the budget is spent, so it is refused.
    with pytest.raises(BudgetExceeded):
        run_policy(policy, full=True)


def test_an_appending_run_links_its_records_against_the_whole_published_table(
    zones_db: str, conn: psycopg.Connection
) -> None:
    """Members 1-5 in zip 10001, 6-12 in 20002; then member 13 in 10001. The appending run's
    one new record matches six published records by zip, so no attacker links it uniquely;
    against the new rows alone it would look unique (a linkage risk of 100%)."""
    conn.execute(
        "CREATE TABLE restricted.members (member_id integer PRIMARY KEY, zip text NOT NULL)"
    )
    conn.execute(
        "INSERT INTO restricted.members SELECT i, CASE WHEN i <= 5 THEN '10001' ELSE '20002'"
        " END FROM generate_series(1, 12) i"
    )
    policy = parse_policy(
        """\
dataset: members
source: {table: restricted.members, key: member_id}
target: {table: anonymized.members}
incremental: {cursor: member_id}
columns:
  member_id: {action: tokenize}
  zip: {action: keep}
privacy: {quasi_identifiers: [zip], k: 5}
risk: {max_linkage_risk: 0.5, linkage_sample: 0}
""",
        "members.yaml",
    )
    run_policy(policy)
    conn.execute("INSERT INTO restricted.members VALUES (13, '10001')")
    second = run_policy(policy)
    risk = _manifest(conn, second.run_id)["risk"]
    assert risk["linkage"]["auxiliary"] == 1  # type: ignore[index]
    assert risk["linkage"]["unique"] == 0 and risk["linkage"]["share"] == 0.0  # type: ignore[index]
    assert conn.execute("SELECT count(*) FROM anonymized.members").fetchone() == (13,)
