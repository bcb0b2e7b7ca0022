"""Build one DAG per policy file:

    extract ──► transform (mapped, one task per chunk) ──► validate ──► publish
                                                              cleanup (teardown)

and, for a dataset policy of several tables, one DAG of the whole dataset
(``build_dataset_dag``).

Only the policy YAML is read at parse time (no database, no heavy imports): DAG files are
parsed often. ``cleanup`` is a teardown: it always runs and records/quarantines a run that
did not publish, and it does not decide the DAG run's state.

A policy that cannot be used (it does not load, Airflow refuses its DAG, or it shares its
dataset with another) is left out of ``build_dags`` and raised by ``raise_policy_errors``,
which a DAG file of its own calls: Airflow fails a DAG file that raises as a whole and marks
every DAG of a file with an import error stale, so the broken policies must not share a file
with the good ones (docs/adr/0010-broken-policies-are-import-errors.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG, TaskGroup
from airflow.sdk.exceptions import AirflowTimetableInvalid

from veilflow.airflow.dataset_operators import VeilflowDatasetOperator
from veilflow.airflow.operators import VeilflowStageOperator
from veilflow.errors import BrokenPolicies, PolicyError
from veilflow.policy import DatasetPolicy, Policy, load_policy, load_policy_folder

log = logging.getLogger(__name__)


def dag_id_for(dataset: str) -> str:
    return f"veilflow_{dataset}"


def build_dag(policy_path: Path, policy: Policy | None = None) -> DAG:
    """The DAG of one policy file (``policy``: the file already loaded). A DAG Airflow would
    refuse is a ``PolicyError`` naming the file, and the line and field when one is at fault."""
    if policy is None:
        policy = load_policy(policy_path)
    path = str(policy_path.resolve())
    with DAG(
        dag_id=dag_id_for(policy.dataset),
        description=policy.description or f"Anonymize {policy.source.table}",
        schedule=policy.schedule,
        start_date=datetime(2024, 1, 1),
        catchup=False,
        max_active_runs=1,
        tags=["veilflow", "anonymization", policy.dataset],
        doc_md=(
            f"**{policy.source.table} → {policy.target.table}** under `{policy_path.name}`"
            f" (policy hash `{policy.hash[:16]}`)."
        ),
        default_args={"retries": 2, "retry_delay": timedelta(seconds=10)},
        # Only the DAG file that names the DAG at its top level defines it: the errors file
        # builds every DAG too, to check it, and must not define them a second time.
        auto_register=False,
    ) as dag:
        extract = VeilflowStageOperator(task_id="extract", policy_path=path, stage="extract")
        transform = VeilflowStageOperator.partial(
            task_id="transform", policy_path=path, stage="transform"
        ).expand(chunk=extract.output)
        validate = VeilflowStageOperator(
            task_id="validate", policy_path=path, stage="validate", retries=0
        )
        publish = VeilflowStageOperator(task_id="publish", policy_path=path, stage="publish")
        cleanup = VeilflowStageOperator(
            task_id="cleanup", policy_path=path, stage="cleanup", retries=0
        )
        extract >> transform >> validate >> publish >> cleanup.as_teardown(setups=extract)
    _check(dag, policy_path, policy.line_of("schedule"))
    return dag


def build_dataset_dag(policy_path: Path, ds: DatasetPolicy) -> DAG:
    """The DAG of a dataset policy of several tables (ADR 0023): per table a task group
    extract ──► transform (mapped) ──► validate, each table's extract after its parents';
    then the foreign-key check, one publish of every table, and the cleanup teardown::

        customers.extract ──► customers.transform[] ──► customers.validate ──┐
              │                                                               ├► foreign_keys ► publish
              └► orders.extract ──► orders.transform[] ──► orders.validate ──┘
    """
    path = str(policy_path.resolve())
    tables = ", ".join(
        f"{ds.tables[t].source.table} → {ds.tables[t].target.table}" for t in ds.order
    )
    with DAG(
        dag_id=dag_id_for(ds.dataset),
        description=ds.description or f"Anonymize the dataset {ds.dataset}",
        schedule=ds.schedule,
        start_date=datetime(2024, 1, 1),
        catchup=False,
        max_active_runs=1,
        tags=["veilflow", "anonymization", "dataset", ds.dataset],
        doc_md=(
            f"**{tables}** under `{policy_path.name}` (dataset policy hash `{ds.hash[:16]}`);"
            " every table publishes in one transaction."
        ),
        default_args={"retries": 2, "retry_delay": timedelta(seconds=10)},
        auto_register=False,
    ) as dag:
        extracts: dict[str, VeilflowDatasetOperator] = {}
        validates: list[VeilflowDatasetOperator] = []
        for table in ds.order:
            with TaskGroup(group_id=table):
                extract = VeilflowDatasetOperator(
                    task_id="extract", policy_path=path, stage="extract", table=table
                )
                transform = VeilflowDatasetOperator.partial(
                    task_id="transform", policy_path=path, stage="transform", table=table
                ).expand(chunk=extract.output)
                validate = VeilflowDatasetOperator(
                    task_id="validate", policy_path=path, stage="validate", table=table, retries=0
                )
                extract >> transform >> validate
            for parent in sorted(set(ds.tables[table].foreign_keys.values())):
                extracts[parent] >> extract
            extracts[table] = extract
            validates.append(validate)
        foreign_keys = VeilflowDatasetOperator(
            task_id="foreign_keys", policy_path=path, stage="foreign_keys", retries=0
        )
        publish = VeilflowDatasetOperator(task_id="publish", policy_path=path, stage="publish")
        cleanup = VeilflowDatasetOperator(
            task_id="cleanup", policy_path=path, stage="cleanup", retries=0
        )
        validates >> foreign_keys
        foreign_keys >> publish >> cleanup.as_teardown(setups=list(extracts.values()))
    _check(dag, policy_path, ds.line_of("schedule"))
    return dag


def _check(dag: DAG, policy_path: Path, schedule_line: int | None) -> None:
    """What the DagBag checks, here where the policy's lines are known (Airflow leaves
    DAG.validate untyped)."""
    try:
        dag.validate()  # type: ignore[no-untyped-call]
    except AirflowTimetableInvalid as exc:
        raise PolicyError(
            f"not a schedule Airflow knows (a cron expression or a preset such as @daily): {exc}",
            file=str(policy_path),
            line=schedule_line,
            field="schedule",
        ) from None
    except Exception as exc:
        raise PolicyError(
            f"Airflow refuses this policy's DAG: {type(exc).__name__}: {exc}",
            file=str(policy_path),
        ) from None


@dataclass(frozen=True)
class PolicyDags:
    """The DAGs of a policies folder by dag id, and an error for each policy left out."""

    dags: dict[str, DAG]
    errors: tuple[PolicyError, ...]


def policy_dags(policies_dir: Path) -> PolicyDags:
    """Build the DAG of every usable policy in ``policies_dir``; collect the others' errors."""
    folder = load_policy_folder(policies_dir)
    dags: dict[str, DAG] = {}
    errors = list(folder.errors)
    built: list[tuple[Path, Policy | DatasetPolicy]] = [
        *folder.policies.items(),
        *folder.datasets.items(),
    ]
    for path, policy in sorted(built, key=lambda pair: str(pair[0])):
        try:
            dag = (
                build_dataset_dag(path, policy)
                if isinstance(policy, DatasetPolicy)
                else build_dag(path, policy)
            )
        except PolicyError as exc:
            errors.append(exc)
            continue
        dags[dag.dag_id] = dag
    for error in errors:
        log.error("policy left out of the DAGs: %s", error)
    return PolicyDags(dags=dags, errors=tuple(errors))


def build_dags(policies_dir: Path) -> dict[str, DAG]:
    """Every usable policy's DAG by dag id; the broken ones are ``raise_policy_errors``'s."""
    return policy_dags(policies_dir).dags


def raise_policy_errors(policies_dir: Path) -> None:
    """Raise ``BrokenPolicies`` naming each policy file left out of ``build_dags`` (file,
    line, field), so Airflow shows it as an import error; return when there is none."""
    errors = policy_dags(policies_dir).errors
    if errors:
        raise BrokenPolicies(errors)
