"""Build one DAG per policy file:

    extract ──► transform (mapped, one task per chunk) ──► validate ──► publish
                                                              cleanup (teardown)

Only the policy YAML is read at parse time (no database, no heavy imports): DAG files are
parsed often. ``cleanup`` is a teardown: it always runs and records/quarantines a run that
did not publish, and it does not decide the DAG run's state.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG

from veilflow.airflow.operators import VeilflowStageOperator
from veilflow.errors import PolicyError
from veilflow.policy import discover_policies, load_policy

log = logging.getLogger(__name__)


def dag_id_for(dataset: str) -> str:
    return f"veilflow_{dataset}"


def build_dag(policy_path: Path) -> DAG:
    """The DAG of one policy file."""
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
    return dag


def build_dags(policies_dir: Path) -> dict[str, DAG]:
    """Every policy's DAG by dag id; a broken policy is logged and left out (its error
    shows as an import error for that file only when built alone)."""
    dags: dict[str, DAG] = {}
    for path in discover_policies(policies_dir):
        try:
            dag = build_dag(path)
        except PolicyError as exc:
            log.error("skipping policy %s: %s", path.name, exc)
            continue
        dags[dag.dag_id] = dag
    return dags
