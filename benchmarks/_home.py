"""A throwaway state folder for a benchmark: its own embedded PostgreSQL and master key."""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import tempfile
from pathlib import Path


def fresh_home(prefix: str) -> Path:
    """A new ``VEILFLOW_HOME`` (the embedded server starts there on first use) with a random
    master key; an external database in the environment is ignored."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ["VEILFLOW_HOME"] = str(home)
    os.environ["VEILFLOW_MASTER_KEY"] = base64.b64encode(secrets.token_bytes(32)).decode()
    os.environ.pop("VEILFLOW_DATABASE_URL", None)
    return home


def remove_home(home: Path) -> None:
    """Stop the folder's embedded server and delete the folder."""
    from veilflow.zones.server import stop_embedded

    stop_embedded(home / "pgdata")
    shutil.rmtree(home, ignore_errors=True)
