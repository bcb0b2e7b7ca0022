"""The policy files of the policies folder that no DAG is built from (they do not load,
Airflow refuses their DAG, or two share a dataset), as one Airflow import error of this file
that names each file, line and field. It is a file of its own because Airflow fails a DAG
file that raises as a whole: the good policies' DAGs stay in ``veilflow_policies.py``.
All logic lives in ``veilflow.airflow.dag_factory``."""

from __future__ import annotations

from veilflow.airflow.dag_factory import raise_policy_errors
from veilflow.config import settings

raise_policy_errors(settings().policies_dir)
