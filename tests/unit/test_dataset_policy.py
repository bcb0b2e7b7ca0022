"""Dataset policies of several tables: foreign keys, dependency order, the shared token
declaration of a key and its foreign keys, and errors that name the file, line and field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from veilflow.errors import PolicyError
from veilflow.policy import DatasetPolicy, load_policy, load_policy_folder, parse_any_policy

ROOT = Path(__file__).resolve().parents[2]
SHOP = ROOT / "policies" / "shop.yaml"

SMALL = """\
dataset: shop
tables:
  items:
    source: {table: restricted.items, key: item_id}
    target: {table: anonymized.items}
    foreign_keys: {order_id: orders}
    columns:
      item_id: {action: tokenize}
      sku: keep
  orders:
    source: {table: restricted.orders, key: order_id}
    target: {table: anonymized.orders}
    foreign_keys: {customer_id: customers}
    columns:
      order_id: {action: tokenize}
      amount: keep
  customers:
    source: {table: restricted.customers, key: customer_id}
    target: {table: anonymized.customers}
    columns:
      customer_id: {action: tokenize}
      name: {action: surrogate, entity: PERSON}
"""


def _dataset(text: str) -> DatasetPolicy:
    ds = parse_any_policy(text, "shop.yaml")
    assert isinstance(ds, DatasetPolicy)
    return ds


def test_the_shop_policy_loads_with_orders_after_customers() -> None:
    ds = _dataset(SHOP.read_text())
    assert ds.order == ["customers", "orders"] and ds.subject_table == "customers"
    policies = ds.table_policies()
    assert [p.dataset for p in policies.values()] == ["shop__customers", "shop__orders"]
    assert {p.scope for p in policies.values()} == {"shop"}  # one key scope: one token key
    orders = policies["orders"]
    assert orders.columns["customer_id"] == policies["customers"].columns["customer_id"]
    assert orders.source.table == "restricted.orders" and orders.schedule is None
    # Lines of a table's fields are the dataset file's lines.
    text = SHOP.read_text().splitlines()
    assert "ship_zip" in text[orders.line_of("columns", "ship_zip") - 1]  # type: ignore[operator]


def test_tables_are_ordered_parents_first_whatever_their_order_in_the_file() -> None:
    ds = _dataset(SMALL)
    assert ds.order == ["customers", "orders", "items"]
    assert ds.below("orders") == ["orders", "items"]
    assert ds.children("customers") == [("orders", "customer_id")]
    assert ds.table_policy("items").columns["order_id"].action == "tokenize"


def test_a_foreign_key_anonymized_unlike_its_key_is_refused_with_its_line() -> None:
    text = SMALL.replace(
        "      amount: keep\n",
        "      amount: keep\n      customer_id: {action: tokenize, format: preserve}\n",
    )
    with pytest.raises(PolicyError, match="exactly as that key") as err:
        _dataset(text)
    assert err.value.line == 17 and err.value.field == "tables.orders.columns.customer_id"


def test_a_key_referred_to_must_be_tokenized() -> None:
    text = SMALL.replace(
        "      order_id: {action: tokenize}\n", "      order_id: {action: ff1, alphabet: digits}\n"
    )
    with pytest.raises(PolicyError, match="must be tokenized") as err:
        _dataset(text)
    assert err.value.field == "tables.orders.columns.order_id"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("{customer_id: customers}", "{customer_id: clients}"), "'clients' is not a table"),
        (("{order_id: orders}", "{order_id: items}"), "refers to itself"),
        (
            (
                "    columns:\n      customer_id",
                "    foreign_keys: {x: items}\n    columns:\n      customer_id",
            ),
            "form a cycle",
        ),
        (("anonymized.items", "anonymized.orders"), "share the target"),
    ],
)
def test_a_broken_table_graph_is_refused(change: tuple[str, str], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        _dataset(SMALL.replace(*change))


#: A single-table policy's sections a dataset does not take yet (docs/policy.md), each as it
#: would be written.
SINGLE_TABLE_SECTIONS = {
    "incremental": "{cursor: order_id}",
    "releases": "[{name: n, statistic: count, group_by: {sku: [a]}, epsilon: 0.1}]",
    "utility": "{target: amount, features: [amount]}",
    "synthetic": "{columns: [amount]}",
}


@pytest.mark.parametrize("section", sorted(SINGLE_TABLE_SECTIONS))
def test_a_single_table_section_in_a_dataset_is_refused_at_load_naming_its_line(
    section: str,
) -> None:
    """Not a bare "unknown field": the error says what a dataset does not take yet, in a
    table (line 13) and at the dataset's level (the line after the last)."""
    value = SINGLE_TABLE_SECTIONS[section]
    in_table = SMALL.replace(
        "    target: {table: anonymized.orders}\n",
        f"    target: {{table: anonymized.orders}}\n    {section}: {value}\n",
    )
    at_top = SMALL + f"{section}: {value}\n"
    for text, line, field in (
        (in_table, 13, f"tables.orders.{section}"),
        (at_top, SMALL.count("\n") + 1, section),
    ):
        with pytest.raises(PolicyError, match="a dataset of several tables does not take") as err:
            _dataset(text)
        assert (err.value.line, err.value.field) == (line, field)
        assert f"{section}: (" in str(err.value)


def test_a_table_error_found_by_the_single_table_model_names_its_line() -> None:
    text = SMALL.replace(
        "      sku: keep\n", "      sku: keep\n    privacy: {quasi_identifiers: [colour]}\n"
    )
    with pytest.raises(PolicyError, match="colour") as err:
        _dataset(text)
    assert err.value.file == "shop.yaml" and err.value.field == "tables.items"


@pytest.mark.parametrize(
    ("change", "line", "field", "words"),
    [
        (
            ("name: {action: surrogate, entity: PERSON}", "name: {action: surrogate}"),
            22,
            "tables.customers.columns.name.entity",
            "Field required (operator surrogate)",
        ),
        (
            ("      amount: keep\n", "      amount: {action: mask, keep_last: many}\n"),
            16,
            "tables.orders.columns.amount.keep_last",
            "valid integer, unable to parse string as an integer (operator mask)",
        ),
        (
            ("      sku: keep\n", "      sku: {action: shuffle}\n"),
            9,
            "tables.items.columns.sku.action",
            "unknown operator 'shuffle'",
        ),
    ],
)
def test_operator_parameters_of_every_table_are_checked_at_load(
    change: tuple[str, str], line: int, field: str, words: str
) -> None:
    """Each table's columns are checked as the dataset loads, at the dataset file's lines."""
    with pytest.raises(PolicyError, match=re.escape(words)) as err:
        parse_any_policy(SMALL.replace(*change), "shop.yaml")
    assert (err.value.file, err.value.line, err.value.field) == ("shop.yaml", line, field)


def test_two_roots_need_a_subject_and_a_subset_is_one_of_fraction_or_where() -> None:
    two_roots = SMALL.replace("    foreign_keys: {customer_id: customers}\n", "")
    with pytest.raises(PolicyError, match="subject"):
        _dataset(two_roots)
    assert _dataset(two_roots + "subject: orders\n").subject_table == "orders"
    assert _dataset(SMALL + "subset: {table: customers, fraction: 0.1}\n").subset is not None
    for bad in (
        "{table: customers}",
        "{table: customers, fraction: 0.1, where: 'x > 1'}",
        "{table: customers, where: 'true; DROP TABLE x'}",
        "{table: nope, fraction: 0.5}",
    ):
        with pytest.raises(PolicyError):
            _dataset(SMALL + f"subset: {bad}\n")


def test_a_single_table_loader_refuses_a_dataset_and_the_folder_keeps_both_kinds(
    tmp_path: Path,
) -> None:
    with pytest.raises(PolicyError, match="several tables"):
        load_policy(SHOP)
    (tmp_path / "shop.yaml").write_text(SHOP.read_text())
    (tmp_path / "customers.yaml").write_text((ROOT / "policies" / "customers.yaml").read_text())
    folder = load_policy_folder(tmp_path)
    assert [p.dataset for p in folder.policies.values()] == ["customers"]
    assert [d.dataset for d in folder.datasets.values()] == ["shop"] and not folder.errors
    # A single-table policy may not take the name a dataset's table runs under.
    (tmp_path / "clash.yaml").write_text(
        (ROOT / "policies" / "customers.yaml")
        .read_text()
        .replace("dataset: customers", "dataset: shop__orders")
    )
    folder = load_policy_folder(tmp_path)
    assert not folder.datasets and len(folder.errors) == 2
    assert all("'shop__orders'" in str(e) for e in folder.errors)


def test_the_dataset_hash_changes_with_meaning_only() -> None:
    a = _dataset(SMALL)
    b = _dataset("# a comment\n" + SMALL)
    c = _dataset(SMALL.replace("sku: keep", "sku: drop"))
    assert a.hash == b.hash != c.hash


def test_a_graph_error_names_the_line_and_field_it_is_about() -> None:
    with pytest.raises(PolicyError, match="'clients' is not a table") as err:
        _dataset(SMALL.replace("{customer_id: customers}", "{customer_id: clients}"))
    assert err.value.line == 13 and err.value.field == "tables.orders.foreign_keys.customer_id"
    with pytest.raises(PolicyError, match="share the target") as err:
        _dataset(SMALL.replace("anonymized.items", "anonymized.orders"))
    assert err.value.line == 12 and err.value.field == "tables.orders.target"


def test_veilflow_check_reports_each_table_of_a_dataset() -> None:
    from typer.testing import CliRunner

    from veilflow.cli import app

    out = CliRunner().invoke(app, ["check", str(SHOP)])
    assert out.exit_code == 0, out.output
    assert "table customers: ok, 16 columns" in out.output
    assert "table orders: ok, 6 columns" in out.output
    assert "ok, dataset shop, tables customers, orders, hash " in out.output
