"""The shop dataset (customers + orders) as one real Airflow DAG, run with `airflow dags test`:
the anonymized tables join as the sources do; lineage carries the foreign key across the
tables; an erased customer leaves both tables; a failure in one table's publish leaves both
old versions; a gate refusal of the foreign keys quarantines both tables."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from tests.e2e.conftest import AirflowCli
from tests.unit import lineage_support as ls
from veilflow.cli import app as cli_app
from veilflow.lineage.validation import event_errors
from veilflow.pipeline.seed import seed_orders

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SHOP = Path(__file__).resolve().parents[2] / "policies" / "shop.yaml"
REASON = "GDPR art. 17 request #5121 from the data subject"
SOURCE_JOIN = (
    "SELECT count(*) FROM restricted.orders o JOIN restricted.customers c USING (customer_id)"
)
ANON_JOIN = (
    "SELECT count(*) FROM anonymized.shop_orders o"
    " JOIN anonymized.shop_customers c USING (customer_id)"
)


def write_shop(folder: Path, k: int = 1) -> None:
    """policies/shop.yaml for the 2,000-customer test tables (k = 5 needs more rows)."""
    text = (
        SHOP.read_text()
        .replace("chunk_rows: 50000", "chunk_rows: 700")
        .replace("chunk_rows: 100000", "chunk_rows: 2500")
        .replace("      k: 5\n", f"      k: {k}\n")
        .replace("max_suppression: 0.05", "max_suppression: 1.0")
    )
    assert f"k: {k}" in text and "chunk_rows: 2500" in text, "shop.yaml changed shape"
    (folder / "shop.yaml").write_text(text)


def one(conn: psycopg.Connection, query: str, *params: object) -> int:
    row = conn.execute(query, params).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return int(row[0])


def test_the_shop_dag(
    airflow_cli: tuple[AirflowCli, Path],
    seeded_db: str,
    conn: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run, policies = airflow_cli
    with psycopg.connect(seeded_db) as c:
        seed_orders(c, seed=7)
    write_shop(policies)
    assert run("dags", "reserialize").returncode == 0
    out = run("dags", "test", "veilflow_shop")
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    assert "state=success" in log
    assert log.count("task_id='customers.transform'") >= 3  # three mapped chunks of 700

    # The join of the anonymized tables on the tokenized key counts what the sources' does.
    orders = one(conn, "SELECT count(*) FROM restricted.orders")
    assert one(conn, SOURCE_JOIN) == orders == one(conn, ANON_JOIN) > 3000
    checks = conn.execute(
        "SELECT dataset, manifest->'foreign_keys' FROM governance.runs ORDER BY dataset"
    ).fetchall()
    assert [d for d, _ in checks] == ["shop__customers", "shop__orders"]
    (fk,) = checks[1][1]["checks"]
    assert fk["passed"] and (fk["rows"], fk["orphans"], fk["source_orphans"]) == (orders, 0, 0)

    # Lineage: every stage of both tables, valid against the official schemas; the orders'
    # customer_id comes from its own source column and from the customers' key.
    events = conn.execute(
        "SELECT stage, event_type, outputs, event FROM governance.lineage_events ORDER BY event_id"
    ).fetchall()
    spec = ls.require_spec()
    for stage, kind, _, event in events:
        assert event_errors(event, spec) == [], (stage, kind)
    publishes = {o[0]: e for s, k, o, e in events if s == "publish" and k == "COMPLETE"}
    assert set(publishes) == {"anonymized.shop_customers", "anonymized.shop_orders"}
    (target,) = publishes["anonymized.shop_orders"]["outputs"]
    inputs = target["facets"]["columnLineage"]["fields"]["customer_id"]["inputFields"]
    assert [(i["name"].split(".", 1)[1], i["field"]) for i in inputs] == [
        ("restricted.orders", "customer_id"),
        ("restricted.customers", "customer_id"),
    ]
    assert inputs[1]["transformations"][0]["subtype"] == "JOIN"

    # Erasure across the dataset: a steward requests it, the pipeline applies it.
    subject, theirs = conn.execute(
        "SELECT customer_id, count(*) FROM restricted.orders GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1"
    ).fetchone()  # type: ignore[misc]
    monkeypatch.setenv("VEILFLOW_POLICIES", str(policies))
    monkeypatch.setenv("VEILFLOW_DATABASE_URL", seeded_db)
    cli = CliRunner()
    asked = cli.invoke(
        cli_app,
        ["erase", "--dataset", "shop", "--subject", "-", "--reason", REASON],
        input=f"{subject}\n",
    )
    assert asked.exit_code == 0, asked.output
    (token,) = conn.execute("SELECT subject_tokens FROM governance.erasure_requests").fetchone()[0]  # type: ignore[index]
    found = "SELECT count(*) FROM anonymized.shop_{} WHERE customer_id = %s"
    assert (
        one(conn, found.format("customers"), token),
        one(conn, found.format("orders"), token),
    ) == (1, theirs)
    applied = cli.invoke(cli_app, ["erase", "--dataset", "shop", "--apply"])
    assert applied.exit_code == 0, applied.output
    assert f"{1 + theirs} row(s) removed" in applied.output
    assert (
        one(conn, found.format("customers"), token),
        one(conn, found.format("orders"), token),
    ) == (0, 0)
    assert one(conn, ANON_JOIN) == orders - theirs

    # A failure in the orders' swap (a view holds the old version) publishes neither table.
    conn.execute("DELETE FROM restricted.orders WHERE order_id % 10 = 0")
    conn.execute("CREATE VIEW anonymized.shop_orders_view AS SELECT * FROM anonymized.shop_orders")
    out = run("dags", "test", "veilflow_shop")
    assert out.returncode != 0 or "state=failed" in out.stdout + out.stderr
    assert one(conn, "SELECT count(*) FROM anonymized.shop_customers") == 1999
    assert one(conn, "SELECT count(*) FROM anonymized.shop_orders") == orders - theirs
    assert one(conn, "SELECT count(*) FROM governance.published_versions") == 2
    assert one(conn, "SELECT count(*) FROM governance.runs WHERE status = 'failed'") == 2
    conn.execute("DROP VIEW anonymized.shop_orders_view")

    # k-anonymity suppresses customers whose orders stay: the gate refuses both tables.
    write_shop(policies, k=3)
    out = run("dags", "test", "veilflow_shop")
    log = out.stdout + out.stderr
    assert out.returncode != 0 or "state=failed" in log
    assert "orders.customer_id -> customers.customer_id" in log
    quarantined = conn.execute(
        "SELECT dataset, reasons->0->>'check' FROM governance.quarantined"
        " WHERE reasons->0->>'check' = 'foreign_key_orphans' ORDER BY 1"
    ).fetchall()
    assert [q[0] for q in quarantined] == ["shop__customers", "shop__orders"]
    assert one(conn, "SELECT count(*) FROM anonymized.shop_orders") == orders - theirs
