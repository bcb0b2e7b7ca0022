"""The policies' DAGs as Airflow's DagBag loads the dags folder: a broken policy is an import
error naming its file, line and field while the other policies' DAGs load; two policies of
one dataset are refused, naming both files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from veilflow.errors import BrokenPolicies, PolicyError
from veilflow.policy import load_policy_folder

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
ERRORS_FILE = DAGS / "veilflow_policy_errors.py"
DEMO = (ROOT / "policies" / "customers.yaml").read_text()


def _as_dataset(text: str, dataset: str) -> str:
    return text.replace("dataset: customers", f"dataset: {dataset}").replace(
        "anonymized.customers", f"anonymized.{dataset}"
    )


def _line(text: str, starts: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if line.startswith(starts))


@pytest.fixture
def policies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "policies"
    folder.mkdir()
    monkeypatch.setenv("VEILFLOW_POLICIES", str(folder))
    monkeypatch.setenv("VEILFLOW_AUDIT_SCHEDULE", "off")  # the policies' DAGs only
    return folder


def _dagbag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS), safe_mode=True)


def test_a_broken_policy_is_an_import_error_and_the_others_still_load(policies: Path) -> None:
    (policies / "customers.yaml").write_text(DEMO)
    orders = _as_dataset(DEMO, "orders").replace("chunk_rows: 50000", "chunk_rows: lots")
    (policies / "orders.yaml").write_text(orders)
    visits = _as_dataset(DEMO, "visits").replace('schedule: "@daily"', 'schedule: "every day"')
    (policies / "visits.yaml").write_text(visits)

    bag = _dagbag()

    assert "veilflow_customers" in bag.dag_ids
    assert not {"veilflow_orders", "veilflow_visits"} & set(bag.dag_ids)
    assert set(bag.import_errors) == {str(ERRORS_FILE)}  # the good DAGs' file has none
    error = bag.import_errors[str(ERRORS_FILE)]
    assert "2 broken policy file(s)" in error
    assert f"{policies / 'orders.yaml'}:{_line(orders, 'chunk_rows')}, field 'chunk_rows'" in error
    assert f"{policies / 'visits.yaml'}:{_line(visits, 'schedule')}, field 'schedule'" in error
    assert "not a schedule Airflow knows" in error


def test_without_broken_policies_there_is_no_import_error(policies: Path) -> None:
    (policies / "customers.yaml").write_text(DEMO)
    (policies / "orders.yaml").write_text(_as_dataset(DEMO, "orders"))
    bag = _dagbag()
    assert {"veilflow_customers", "veilflow_orders"} <= set(bag.dag_ids)
    assert bag.import_errors == {}


def test_two_policies_of_one_dataset_are_refused_naming_both_files(policies: Path) -> None:
    (policies / "customers.yaml").write_text(DEMO)
    (policies / "customers_v2.yml").write_text(DEMO.replace("chunk_rows: 50000", "chunk_rows: 900"))
    (policies / "orders.yaml").write_text(_as_dataset(DEMO, "orders"))

    folder = load_policy_folder(policies)
    assert [p.name for p in folder.policies] == ["orders.yaml"]
    line = _line(DEMO, "dataset:")
    first, second = (
        f"{policies / 'customers.yaml'}:{line}",
        f"{policies / 'customers_v2.yml'}:{line}",
    )
    assert [str(e) for e in folder.errors] == [
        f"{first}, field 'dataset': dataset 'customers' is also the dataset of {second}; a "
        "dataset has one policy, so none of them is used until the others name another "
        "dataset or are removed",
        f"{second}, field 'dataset': dataset 'customers' is also the dataset of {first}; a "
        "dataset has one policy, so none of them is used until the others name another "
        "dataset or are removed",
    ]

    bag = _dagbag()
    assert "veilflow_customers" not in bag.dag_ids  # neither replaces the other
    assert "veilflow_orders" in bag.dag_ids
    error = bag.import_errors[str(ERRORS_FILE)]
    assert first in error and second in error


def test_the_errors_pickle_with_their_fields() -> None:
    import pickle

    err = BrokenPolicies([PolicyError("unknown field", file="p.yaml", line=3, field="bogus")])
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err)
    assert [e.line for e in again.errors] == [3]


SHOP = (ROOT / "policies" / "shop.yaml").read_text()


def test_a_dataset_policy_is_one_dag_of_its_tables_in_dependency_order(policies: Path) -> None:
    (policies / "customers.yaml").write_text(DEMO)
    (policies / "shop.yaml").write_text(SHOP)
    bag = _dagbag()
    assert bag.import_errors == {}
    dag = bag.dags["veilflow_shop"]
    upstream = {t.task_id: set(t.upstream_task_ids) for t in dag.tasks}
    assert upstream == {
        "customers.extract": set(),
        "customers.transform": {"customers.extract"},
        "customers.validate": {"customers.transform"},
        "orders.extract": {"customers.extract"},  # parents first: a subset follows the keys
        "orders.transform": {"orders.extract"},  # beside the customers' transforms
        "orders.validate": {"orders.transform"},
        "foreign_keys": {"customers.validate", "orders.validate"},
        "publish": {"foreign_keys"},
        "cleanup": {"publish", "customers.extract", "orders.extract"},
    }
    assert dag.get_task("cleanup").is_teardown
    assert "veilflow_customers" in bag.dag_ids


def test_a_broken_dataset_policy_is_an_import_error_naming_the_table_field(
    policies: Path,
) -> None:
    (policies / "customers.yaml").write_text(DEMO)
    broken = SHOP.replace(
        "foreign_keys: {customer_id: customers}", "foreign_keys: {customer_id: clients}"
    )
    (policies / "shop.yaml").write_text(broken)
    bag = _dagbag()
    assert "veilflow_shop" not in bag.dag_ids and "veilflow_customers" in bag.dag_ids
    error = bag.import_errors[str(ERRORS_FILE)]
    line = next(n for n, t in enumerate(broken.splitlines(), 1) if "clients" in t)
    assert (
        f"{policies / 'shop.yaml'}:{line}, field 'tables.orders.foreign_keys.customer_id'" in error
    )
    assert "'clients' is not a table" in error
