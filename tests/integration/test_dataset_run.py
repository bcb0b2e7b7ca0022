"""The shop dataset (customers + orders, orders.customer_id a foreign key) run in process on
the embedded PostgreSQL: the anonymized tables join as the sources do, the gate counts
foreign-key orphans and refuses new ones, both tables publish in one transaction, and an
erased customer leaves both tables."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import psycopg
import pytest

from veilflow.errors import PolicyError, ValidationFailed
from veilflow.pipeline.dataset import publish_dataset
from veilflow.pipeline.dataset_run import run_dataset
from veilflow.pipeline.erased_dataset import apply_dataset_erasures
from veilflow.pipeline.plan import plan_policy
from veilflow.pipeline.seed import append_customers, seed_orders
from veilflow.policy import DatasetPolicy, parse_any_policy
from veilflow.transform.base import STRING, ChunkContext
from veilflow.vault.audit import verify
from veilflow.vault.erasure_dataset import request_dataset
from veilflow.vault.master import default_master_key
from veilflow.vault.provider import VaultKeyProvider
from veilflow.zones.db import with_database

SHOP = Path(__file__).resolve().parents[2] / "policies" / "shop.yaml"
REASON = "GDPR art. 17 request #5120 from the data subject"
SOURCE_JOIN = (
    "SELECT count(*) FROM restricted.orders o JOIN restricted.customers c USING (customer_id)"
)
ANON_JOIN = (
    "SELECT count(*) FROM anonymized.shop_orders o"
    " JOIN anonymized.shop_customers c USING (customer_id)"
)


def shop_policy(
    *, k: int = 1, max_suppression: float = 0.05, edit: Callable[[str], str] = str
) -> DatasetPolicy:
    """policies/shop.yaml for the 2,000-customer test tables: chunks of 700 and 1,500 rows
    (so each table has several), and k as given (the demo's k = 5 needs more rows)."""
    text = edit(SHOP.read_text())
    out = (
        text.replace("chunk_rows: 50000", "chunk_rows: 700")
        .replace("chunk_rows: 100000", "chunk_rows: 1500")
        .replace("      k: 5\n", f"      k: {k}\n")
        .replace("max_suppression: 0.05", f"max_suppression: {max_suppression}")
    )
    assert out.count("chunk_rows") == 2 and f"k: {k}" in out, "shop.yaml changed shape"
    ds = parse_any_policy(out, str(SHOP))
    assert isinstance(ds, DatasetPolicy)
    return ds


def _url(zones_db: str, login: str) -> str:
    return with_database(zones_db, zones_db.rsplit("/", 1)[1].split("?")[0], user=login)


@pytest.fixture
def shop_db(seeded_db: str) -> str:
    with psycopg.connect(seeded_db) as c:
        seed_orders(c, seed=7)
    return seeded_db


@pytest.fixture
def as_pipeline(shop_db: str, role_logins: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs as the pipeline's login, as every run does."""
    monkeypatch.setenv("VEILFLOW_DATABASE_URL", _url(shop_db, role_logins["pipeline"]))
    return shop_db


def _count(conn: psycopg.Connection, query: str, *params: object) -> int:
    row = conn.execute(query, params).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return int(row[0])


def test_the_anonymized_tables_join_as_the_sources_do(
    as_pipeline: str, conn: psycopg.Connection
) -> None:
    ds = shop_policy()
    summary = run_dataset(ds)
    # A retried publish task finds the dataset published and says so.
    again = publish_dataset(ds, summary.run_id)
    assert again.rows == summary.rows_published
    source_join = _count(conn, SOURCE_JOIN)
    orders = _count(conn, "SELECT count(*) FROM restricted.orders")
    assert source_join == orders > 3000  # every order has its customer
    assert summary.rows_published == {"customers": 2000, "orders": orders}
    assert _count(conn, ANON_JOIN) == source_join
    # The key and the foreign key are tokens of one key, not the source's values.
    assert (
        _count(conn, "SELECT count(*) FROM anonymized.shop_orders WHERE customer_id ~ '^[0-9]+$'")
        == 0
    )
    (fk,) = summary.foreign_keys
    assert (fk.child, fk.column, fk.parent, fk.key) == (
        "orders",
        "customer_id",
        "customers",
        "customer_id",
    )
    assert (fk.rows, fk.source_orphans, fk.orphans) == (orders, 0, 0)
    # The counts are in both tables' manifests and gates; both runs are published.
    runs = conn.execute(
        "SELECT dataset, status, manifest->'foreign_keys'->>'passed',"
        " manifest->'gate'->>'passed' FROM governance.runs ORDER BY dataset"
    ).fetchall()
    assert runs == [
        ("shop__customers", "published", "true", "true"),
        ("shop__orders", "published", "true", "true"),
    ]


def test_a_source_orphan_is_reported_and_a_new_one_fails_the_gate(
    as_pipeline: str, conn: psycopg.Connection
) -> None:
    # A source orphan: an order whose customer does not exist (no constraint to stop it).
    conn.execute("ALTER TABLE restricted.orders DROP CONSTRAINT orders_customer_id_fkey")
    conn.execute(
        "INSERT INTO restricted.orders SELECT 999999, 999999, ordered_at, amount, status,"
        " ship_zip FROM restricted.orders WHERE order_id = 1"
    )
    summary = run_dataset(shop_policy())
    (fk,) = summary.foreign_keys
    assert (fk.source_orphans, fk.orphans, fk.new_orphans, fk.passed) == (1, 1, 0, True)
    assert _count(conn, ANON_JOIN) == _count(conn, SOURCE_JOIN)

    # k-anonymity on customers suppresses rows whose orders stay: anonymization made
    # orphans, and the gate refuses the whole dataset.
    published = _count(conn, "SELECT count(*) FROM anonymized.shop_orders")
    with pytest.raises(ValidationFailed, match=r"orders\.customer_id -> customers\.customer_id"):
        run_dataset(shop_policy(k=3, max_suppression=1.0))
    statuses = conn.execute(
        "SELECT dataset, status FROM governance.runs WHERE status <> 'published' ORDER BY 1"
    ).fetchall()
    assert statuses == [("shop__customers", "quarantined"), ("shop__orders", "quarantined")]
    reasons = conn.execute(
        "SELECT q.reasons->0 FROM governance.quarantined q WHERE dataset = 'shop__orders'"
    ).fetchone()
    assert reasons is not None and reasons[0]["check"] == "foreign_key_orphans"
    assert reasons[0]["new_orphans"] > 0 and reasons[0]["source_orphans"] == 1
    assert _count(conn, "SELECT count(*) FROM anonymized.shop_orders") == published
    audited = conn.execute(
        "SELECT outcome, details->>'status', details->'failed_checks' FROM governance.audit_log"
        " WHERE action = 'policy_run' AND target = 'shop' ORDER BY seq"
    ).fetchall()
    assert audited == [
        ("ok", "published", None),
        ("error", "quarantined", ["foreign_key_orphans"]),
    ]


def test_a_failure_in_one_table_publishes_neither(
    as_pipeline: str, conn: psycopg.Connection
) -> None:
    first = run_dataset(shop_policy())
    # The sources change: 50 new customers, a tenth of the orders gone.
    append_customers(conn, rows=50, seed=7)
    conn.execute("DELETE FROM restricted.orders WHERE order_id % 10 = 0")
    # A view on the published orders: the orders swap cannot drop the old version, after
    # customers has swapped in the same transaction.
    conn.execute("CREATE VIEW anonymized.shop_orders_view AS SELECT * FROM anonymized.shop_orders")
    with pytest.raises(psycopg.errors.DependentObjectsStillExist):
        run_dataset(shop_policy())
    assert _count(conn, "SELECT count(*) FROM anonymized.shop_customers") == 2000
    assert (
        _count(conn, "SELECT count(*) FROM anonymized.shop_orders")
        == first.rows_published["orders"]
    )
    latest = conn.execute(
        "SELECT dataset, run_id FROM governance.published_versions ORDER BY dataset"
    ).fetchall()
    assert latest == [
        ("shop__customers", f"{first.run_id}/customers"),
        ("shop__orders", f"{first.run_id}/orders"),
    ]
    failed = conn.execute(
        "SELECT dataset, status FROM governance.runs WHERE status <> 'published' ORDER BY 1"
    ).fetchall()
    assert failed == [("shop__customers", "failed"), ("shop__orders", "failed")]
    # Without the view, the next run publishes both tables.
    conn.execute("DROP VIEW anonymized.shop_orders_view")
    again = run_dataset(shop_policy())
    assert again.rows_published["customers"] == 2050
    assert _count(conn, ANON_JOIN) == _count(conn, SOURCE_JOIN)


def _token_of(ds: DatasetPolicy, zones_db: str, key: str) -> str:
    """What the test knows: the customer's token, made the way a run makes it."""
    keys = VaultKeyProvider(default_master_key(), lambda: psycopg.connect(zones_db))
    plan = plan_policy(ds.table_policy("customers"), keys)
    (op,) = [c.operator for c in plan.columns if c.name == "customer_id"]
    assert op is not None
    ids = pd.Series(pd.array([key], dtype=STRING))
    out = op.apply(ids, ChunkContext(frame=pd.DataFrame({"customer_id": ids}), key_column="c"))
    return str(out.iloc[0])


def _run_and_pick_a_customer(
    ds: DatasetPolicy, conn: psycopg.Connection, zones_db: str
) -> tuple[object, int, str]:
    """Run the dataset; the customer with the most orders (at least 3): their key, their
    number of orders and their token."""
    run_dataset(ds)
    subject, orders = conn.execute(
        "SELECT customer_id, count(*) FROM restricted.orders GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1"
    ).fetchone()  # type: ignore[misc]
    assert orders >= 3
    return subject, int(orders), _token_of(ds, zones_db, str(subject))


def test_an_erased_customer_leaves_both_tables(
    as_pipeline: str,
    conn: psycopg.Connection,
    role_logins: dict[str, str],
) -> None:
    ds = shop_policy()
    subject, orders, token = _run_and_pick_a_customer(ds, conn, as_pipeline)

    def rows() -> tuple[int, int]:
        return (
            _count(
                conn, "SELECT count(*) FROM anonymized.shop_customers WHERE customer_id = %s", token
            ),
            _count(
                conn, "SELECT count(*) FROM anonymized.shop_orders WHERE customer_id = %s", token
            ),
        )

    assert rows() == (1, orders)
    request_id = _request(ds, as_pipeline, role_logins["steward"], str(subject))
    stored = conn.execute(
        "SELECT dataset, key_column, subject_tokens FROM governance.erasure_requests"
    ).fetchall()
    assert stored == [("shop", "customer_id", [token])]  # the token, not the key
    with psycopg.connect(_url(as_pipeline, role_logins["pipeline"]), autocommit=True) as c:
        (report,) = apply_dataset_erasures(c, ds)
        assert apply_dataset_erasures(c, ds) == []
    assert report.request == request_id and report.left == 0
    assert report.removed == {"anonymized.shop_customers": 1, "anonymized.shop_orders": orders}
    assert rows() == (0, 0)

    # The next run publishes everyone else, and neither the customer nor their orders.
    again = run_dataset(ds)
    total = _count(conn, "SELECT count(*) FROM restricted.orders")
    assert again.rows_published == {"customers": 1999, "orders": total - orders}
    assert rows() == (0, 0)
    assert _count(conn, ANON_JOIN) == total - orders
    assert verify(conn).ok


def _request(ds: DatasetPolicy, zones_db: str, steward: str, subject: str) -> int:
    """A steward records an erasure request for ``subject`` (not applied)."""
    with psycopg.connect(_url(zones_db, steward), autocommit=True) as c:
        keys = VaultKeyProvider(
            default_master_key(),
            lambda: psycopg.connect(_url(zones_db, steward), autocommit=True),
            operation="reidentify",
            purpose=REASON,
        )
        return request_dataset(c, ds, subject, REASON, keys)


def _manifests(conn: psycopg.Connection, run_id: str) -> dict[str, dict[str, object]]:
    """Each table's manifest of a dataset run, by table."""
    rows = conn.execute(
        "SELECT manifest FROM governance.runs WHERE run_id LIKE %s", (run_id + "/%",)
    ).fetchall()
    return {r[0]["dataset_run"]["table"]: r[0] for r in rows}


def test_the_next_run_leaves_an_erased_customer_out_of_every_table_at_extract(
    as_pipeline: str, conn: psycopg.Connection, role_logins: dict[str, str]
) -> None:
    """ADR 0022 and 0023: recorded, not yet applied, the request makes the next run take the
    customer and their orders out of both snapshots, so every check counts the rows that
    will be published and no order is left without its customer."""
    ds = shop_policy()
    subject, orders, token = _run_and_pick_a_customer(ds, conn, as_pipeline)
    where = "SELECT count(*) FROM {} WHERE customer_id = %s"
    published = ("anonymized.shop_customers", "anonymized.shop_orders")
    assert [_count(conn, where.format(t), token) for t in published] == [1, orders]
    request_id = _request(ds, as_pipeline, role_logins["steward"], str(subject))

    again = run_dataset(ds)
    total = _count(conn, "SELECT count(*) FROM restricted.orders")
    assert again.rows_published == {"customers": 1999, "orders": total - orders}
    manifests = _manifests(conn, again.run_id)
    # Left out at extract, counted in each table's manifest; nothing was left for publish.
    assert manifests["customers"]["erased_left_out"] == 1
    assert manifests["customers"]["rows_in"] == 1999
    assert manifests["orders"]["erased_left_out"] == orders
    assert manifests["orders"]["rows_in"] == total - orders
    assert {m["erased_rows_left_out"] for m in manifests.values()} == {0}
    # The foreign-key check saw no orphan: the orders left with their customer.
    (fk,) = again.foreign_keys
    assert (fk.rows, fk.source_orphans, fk.orphans) == (total - orders, 0, 0)

    # No row of the subject in any table of the dataset, published or quarantined.
    quarantined = [
        str(r[0])
        for r in conn.execute(
            "SELECT quarantine_table FROM governance.quarantined WHERE dataset LIKE 'shop__%'"
            " AND quarantine_table IS NOT NULL"
        ).fetchall()
    ]
    for table in (*published, *quarantined):
        if _count(
            conn, "SELECT count(*) FROM pg_tables WHERE schemaname || '.' || tablename = %s", table
        ):
            assert _count(conn, where.format(table), token) == 0, table
    assert _count(conn, ANON_JOIN) == total - orders
    applied = conn.execute(
        "SELECT applied_at IS NOT NULL FROM governance.erasure_requests WHERE id = %s",
        (request_id,),
    ).fetchone()
    assert applied == (True,)  # the publish applied the request after it
    assert verify(conn).ok


def test_an_erased_customer_leaves_a_table_two_foreign_keys_down_at_extract(
    as_pipeline: str, conn: psycopg.Connection, role_logins: dict[str, str]
) -> None:
    """A third table, order items referring to orders: the items of the erased customer's
    orders are found by their orders' tokens and left out with them."""
    conn.execute(
        "CREATE TABLE restricted.order_items AS SELECT order_id * 10 + n AS item_id, order_id,"
        " n AS quantity FROM restricted.orders, generate_series(1, 2) AS n"
    )
    conn.execute("ALTER TABLE restricted.order_items ADD PRIMARY KEY (item_id)")
    conn.execute(
        "ALTER TABLE restricted.order_items ADD FOREIGN KEY (order_id)"
        " REFERENCES restricted.orders (order_id)"
    )
    conn.execute("GRANT SELECT ON restricted.order_items TO veilflow_pipeline")
    items = (
        "  items:\n"
        "    source: {table: restricted.order_items, key: item_id}\n"
        "    target: {table: anonymized.shop_items}\n"
        "    foreign_keys: {order_id: orders}\n"
        "    columns:\n"
        "      item_id:  {action: tokenize}\n"
        "      quantity: keep\n"
    )
    ds = shop_policy(edit=lambda text: text.replace("\naccess:", items + "\naccess:"))
    assert ds.order == ["customers", "orders", "items"]
    subject, orders = conn.execute(
        "SELECT customer_id, count(*) FROM restricted.orders GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1"
    ).fetchone()  # type: ignore[misc]
    run_dataset(ds)  # the dataset's token key, which a request needs
    _request(ds, as_pipeline, role_logins["steward"], str(subject))

    done = run_dataset(ds)
    total = _count(conn, "SELECT count(*) FROM restricted.order_items")
    assert done.rows_published["items"] == total - 2 * orders
    manifests = _manifests(conn, done.run_id)
    assert [manifests[t]["erased_left_out"] for t in ds.order] == [1, orders, 2 * orders]
    assert {m["erased_rows_left_out"] for m in manifests.values()} == {0}
    assert all(fk.orphans == 0 for fk in done.foreign_keys)
    # Every published item joins its published order, whose customer is published.
    assert (
        _count(
            conn,
            "SELECT count(*) FROM anonymized.shop_items i JOIN anonymized.shop_orders o"
            " USING (order_id) JOIN anonymized.shop_customers c USING (customer_id)",
        )
        == total - 2 * orders
    )


def test_a_foreign_key_the_catalog_has_must_be_declared(
    as_pipeline: str, conn: psycopg.Connection
) -> None:
    """Undeclared, orders.customer_id would be kept raw beside the customers' tokens."""

    def undeclared(text: str) -> str:
        out = text.replace("    foreign_keys: {customer_id: customers}\n", "").replace(
            "      amount:     keep\n      status",
            "      amount:     keep\n      customer_id: keep\n      status",
        )
        assert "foreign_keys" not in out and "customer_id: keep" in out
        return out + "subject: customers\n"  # two tables refer to none now

    with pytest.raises(
        PolicyError, match=r"catalog has the foreign key restricted\.orders\.customer_id"
    ):
        run_dataset(shop_policy(edit=undeclared))
    assert _count(conn, "SELECT count(*) FROM pg_tables WHERE schemaname = 'anonymized'") == 0


@pytest.mark.parametrize(
    ("subset", "kept"),
    [
        ("{table: customers, fraction: 0.25}", "fraction"),
        ("{table: customers, where: \"gender = 'F'\"}", "where"),
    ],
)
def test_a_subset_follows_the_foreign_keys(
    as_pipeline: str, conn: psycopg.Connection, subset: str, kept: str
) -> None:
    summary = run_dataset(shop_policy(edit=lambda text: text + f"subset: {subset}\n"))
    customers = summary.rows_published["customers"]
    if kept == "fraction":
        assert 400 < customers < 600  # a quarter of 2,000, drawn by a hash of the key
    else:
        assert customers == _count(
            conn, "SELECT count(*) FROM restricted.customers WHERE gender = 'F'"
        )
        assert summary.rows_published["orders"] == _count(
            conn, SOURCE_JOIN + " WHERE c.gender = 'F'"
        )
    # Only the orders of the customers kept, every one of them joins.
    assert summary.rows_published["orders"] == _count(conn, ANON_JOIN) > 0
    (fk,) = summary.foreign_keys
    assert (fk.source_orphans, fk.orphans) == (0, 0)
    assert summary.rows_published["orders"] < _count(conn, "SELECT count(*) FROM restricted.orders")
    # The same rows every run.
    again = run_dataset(shop_policy(edit=lambda text: text + f"subset: {subset}\n"))
    assert again.rows_published == summary.rows_published


def test_orphans_are_counted_by_one_join_not_a_subquery_per_row(conn: psycopg.Connection) -> None:
    """A subquery per child row took hours on the demo's 200,000 orders."""
    from psycopg import sql

    from veilflow.validate.foreign_keys import count_orphans, orphans_query

    conn.execute(
        "CREATE TABLE staging.p AS SELECT g::text AS k, false AS _vf_canary"
        " FROM generate_series(1, 20000) g"
    )
    conn.execute(
        "CREATE TABLE staging.c AS SELECT g::text AS id, (g % 20003)::text AS fk,"
        " g = 7 AS _vf_canary FROM generate_series(1, 40000) g"
    )
    child, parent = sql.Identifier("staging", "c"), sql.Identifier("staging", "p")
    plan = "\n".join(
        r[0] for r in conn.execute(sql.SQL("EXPLAIN ") + orphans_query(child, "fk", parent, "k"))
    )
    assert "SubPlan" not in plan and "Join" in plan, plan
    # fk 0, 20001 and 20002 have no parent (row 7, a canary, counts for nothing).
    orphans = sum(1 for g in range(1, 40001) if g != 7 and not 1 <= g % 20003 <= 20000)
    assert count_orphans(conn, child, "fk", parent, "k") == (39999, orphans)
