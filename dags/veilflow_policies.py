"""One DAG per policy file in the policies folder (``VEILFLOW_POLICIES``, default
``<project>/policies``); a policy no DAG can be built from is reported by
``veilflow_policy_errors.py`` instead. All logic lives in ``veilflow.airflow.dag_factory``."""

from __future__ import annotations

from veilflow.airflow.dag_factory import build_dags
from veilflow.config import settings

for _dag_id, _dag in build_dags(settings().policies_dir).items():
    globals()[_dag_id] = _dag
