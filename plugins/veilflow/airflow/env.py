"""The environment Airflow runs under in the embedded default: its home and metadata DB
inside ``$VEILFLOW_HOME``, this checkout's ``dags/`` and ``plugins/``, LocalExecutor.

Pure: computes variables; does not import Airflow.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from veilflow.config import PROJECT_ROOT, settings
from veilflow.zones.db import airflow_url


def airflow_env() -> dict[str, str]:
    s = settings()
    home = Path(os.environ.get("AIRFLOW_HOME") or s.home / "airflow")
    venv_bin = str(Path(sys.executable).parent)
    env = {
        "VEILFLOW_HOME": str(s.home),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": os.environ.get("AIRFLOW__CORE__EXECUTOR", "LocalExecutor"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
        or airflow_url(),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__API__PORT": os.environ.get("AIRFLOW__API__PORT", "8080"),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get(
            "AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO"
        ),
        "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
    }
    if s.database_url:
        env["VEILFLOW_DATABASE_URL"] = s.database_url
    return env
