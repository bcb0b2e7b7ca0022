"""Where veilflow keeps its state and how it finds its database, from the environment.

``VEILFLOW_HOME``          state folder (embedded PostgreSQL data, keys, data docs, logs);
                           default ``<project>/.veilflow``.
``VEILFLOW_DATABASE_URL``  an external PostgreSQL (``postgresql://user:pw@host:5432/db``);
                           unset means the embedded server under ``$VEILFLOW_HOME/pgdata``.
``VEILFLOW_POLICIES``      the policies folder; default ``<project>/policies``.
``VEILFLOW_MASTER_KEY``    the master key (base64, 32 bytes); else ``$VEILFLOW_HOME/master.key``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: The checkout this package sits in (``<project>/plugins/veilflow/config.py``).
PROJECT_ROOT = Path(__file__).resolve().parents[2]
ZONES_DATABASE = "veilflow"
AIRFLOW_DATABASE = "airflow"


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str | None
    policies_dir: Path

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def embedded(self) -> bool:
        return self.database_url is None


def settings() -> Settings:
    """Read the environment now (not at import), so tests and subprocesses can change it."""
    home = Path(os.environ.get("VEILFLOW_HOME") or PROJECT_ROOT / ".veilflow").resolve()
    policies = Path(os.environ.get("VEILFLOW_POLICIES") or PROJECT_ROOT / "policies").resolve()
    url = os.environ.get("VEILFLOW_DATABASE_URL") or None
    return Settings(home=home, database_url=url, policies_dir=policies)
