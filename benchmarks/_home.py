"""A throwaway state folder for a benchmark: its own embedded PostgreSQL and master key, and
the bootstrap every run needs before a duty's login can connect."""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import tempfile
from collections.abc import MutableMapping
from pathlib import Path


def isolate(env: MutableMapping[str, str], home: Path | str) -> None:
    """Point ``env`` at the state folder ``home`` and away from any external server: no
    ``VEILFLOW_DATABASE_URL``, nor a duty's own URL (``VEILFLOW_MIGRATE_DATABASE_URL``, …)."""
    from veilflow.zones.db import DUTY_URL_ENV

    env["VEILFLOW_HOME"] = str(home)
    for name in ("VEILFLOW_DATABASE_URL", *DUTY_URL_ENV.values()):
        env.pop(name, None)


def fresh_home(prefix: str) -> Path:
    """A new ``VEILFLOW_HOME`` (the embedded server starts there on first use) with a random
    master key; an external database in the environment is ignored."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    isolate(os.environ, home)
    os.environ["VEILFLOW_MASTER_KEY"] = base64.b64encode(secrets.token_bytes(32)).decode()
    return home


def bootstrap() -> None:
    """What ``veilflow db upgrade`` does, as the server's superuser: apply the migrations and
    make the service logins, their passwords kept in the folder's ``secrets/``. Until it has
    run, no duty but ``migrate`` can connect."""
    from veilflow.config import settings
    from veilflow.zones.db import connect
    from veilflow.zones.logins import ensure_logins
    from veilflow.zones.migrations import upgrade

    s = settings()
    with connect(duty="migrate") as conn:
        upgrade(conn)
        ensure_logins(conn, s.home, embedded=s.embedded)


def remove_home(home: Path) -> None:
    """Stop the folder's embedded server and delete the folder."""
    from veilflow.zones.server import stop_embedded

    stop_embedded(home / "pgdata")
    shutil.rmtree(home, ignore_errors=True)
