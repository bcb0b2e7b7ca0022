"""Statements PostgreSQL refused for lack of privilege, brought into the audit log.

veilflow's own commands audit the refusals they make. A login that reads a zone with plain SQL
is refused by PostgreSQL's GRANTs instead, and that refusal is only in the server log. Here
the log is read through SQL (``pg_ls_logdir`` and ``pg_read_file``). Each entry with SQLSTATE
42501 (insufficient privilege) for this database becomes one audit row:
- action ``sql.denied``, outcome ``denied``;
- target: the object PostgreSQL names, e.g. ``table customers``;
- details: the refused login, the time, PostgreSQL's message, and where in the log it was.

Only those fields are read. The statement, its parameters and error details could hold
values, so they are never copied. The embedded server writes no statement text to its log
anyway (``veilflow.zones.server.EMBEDDED_SETTINGS``).

Reading the server log needs a superuser, or a login with ``pg_monitor`` (to list the
log files), ``EXECUTE`` on ``pg_read_binary_file(text, bigint, bigint, boolean)`` granted in
the zones database (to read them) and the auditor role (to find where the last import
ended); :data:`LOG_READER_RIGHTS`. ``pg_read_server_files`` alone does not let a login call
the function. That ``EXECUTE`` reads any file under the data directory, tables included:
it belongs to an audit service login, never to a person's. The server must write
``jsonlog``, as the embedded one does. An import resumes where the previous one stopped in
each log file, so running it again adds nothing twice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg

from veilflow.errors import AccessDenied, VeilflowError
from veilflow.vault.audit import record

ACTION = "sql.denied"
#: What a login other than a superuser needs to import refusals.
LOG_READER_RIGHTS = (
    "pg_monitor, EXECUTE on pg_read_binary_file(text, bigint, bigint, boolean) and veilflow_auditor"
)
INSUFFICIENT_PRIVILEGE = "42501"
#: "permission denied for table customers" → "table customers".
_OBJECT = re.compile(r"permission denied for (\w+ \S+)")


@dataclass(frozen=True)
class DenialImport:
    """What one import found: refusals added to the audit log, log files read."""

    imported: int
    files: int

    def __str__(self) -> str:
        return (
            f"{self.imported} refused statement(s) added to the audit log"
            f" ({self.files} server log file(s) read)"
        )


def import_denials(conn: psycopg.Connection[Any]) -> DenialImport:
    """Append every refused statement of this database that the server log holds and the
    audit log does not yet, in log order; return the counts."""
    files = _log_files(conn)
    directory = _setting(conn, "log_directory")
    done = _resume_points(conn)
    database = _current_database(conn)
    imported = 0
    for name, size in files:
        start = done.get(name, 0)
        if size <= start:
            continue
        data = _read(conn, f"{directory}/{name}", start, size - start)
        end = data.rfind(b"\n") + 1  # a line still being written waits for the next import
        offset = start
        for line in data[:end].splitlines(keepends=True):
            line_end = offset + len(line)
            entry = _denial(line.decode("utf-8", errors="replace"), database)
            if entry is not None:
                record(
                    conn,
                    ACTION,
                    target=entry["target"],
                    outcome="denied",
                    details={
                        "login": entry["login"],
                        "at": entry["at"],
                        "message": entry["message"],
                        "log": name,
                        "end": line_end,
                    },
                )
                imported += 1
            offset = line_end
    return DenialImport(imported=imported, files=len(files))


def _denial(line: str, database: str) -> dict[str, str] | None:
    """The audit fields of one jsonlog line when it is a privilege refusal in ``database``."""
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    if not isinstance(entry, dict) or entry.get("state_code") != INSUFFICIENT_PRIVILEGE:
        return None
    if entry.get("dbname") != database or entry.get("error_severity") != "ERROR":
        return None
    message = str(entry.get("message", ""))
    found = _OBJECT.search(message)
    return {
        "target": found.group(1) if found else "privilege",
        "login": str(entry.get("user", "")),
        "at": str(entry.get("timestamp", "")),
        "message": message,
    }


def _log_files(conn: psycopg.Connection[Any]) -> list[tuple[str, int]]:
    """The server's jsonlog files and their sizes in bytes, oldest first."""
    destinations = _setting(conn, "log_destination")
    if "jsonlog" not in destinations.replace(" ", "").split(","):
        raise VeilflowError(
            f"the server logs to {destinations!r}, not jsonlog: set log_destination to include"
            " jsonlog (and logging_collector = on) to audit refused statements"
        )
    with _reading_the_log(conn):
        rows = conn.execute(
            "SELECT name, size FROM pg_ls_logdir() WHERE name LIKE '%.json'"
            " ORDER BY modification, name"
        ).fetchall()
    return [(str(r[0]), int(r[1])) for r in rows]


def _read(conn: psycopg.Connection[Any], path: str, start: int, length: int) -> bytes:
    """``length`` bytes of the log file at ``path`` from ``start`` (log files rotate at a few
    MB)."""
    with _reading_the_log(conn):
        row = conn.execute(
            "SELECT pg_read_binary_file(%s, %s, %s, true)", (path, start, length)
        ).fetchone()
    return bytes(row[0]) if row and row[0] is not None else b""


def _resume_points(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Per log file, the byte offset after the last line already imported."""
    rows = conn.execute(
        "SELECT details->>'log', max((details->>'end')::bigint) FROM governance.audit_log"
        " WHERE action = %s GROUP BY 1",
        (ACTION,),
    ).fetchall()
    return {str(name): int(end) for name, end in rows if name is not None}


def _setting(conn: psycopg.Connection[Any], name: str) -> str:
    row = conn.execute("SELECT current_setting(%s)", (name,)).fetchone()
    return str(row[0]) if row else ""


def _current_database(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute("SELECT current_database()").fetchone()
    return str(row[0]) if row else ""


@contextmanager
def _reading_the_log(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """Turn PostgreSQL's refusal to read the server log into ``AccessDenied``."""
    try:
        yield
    except psycopg.errors.InsufficientPrivilege:
        if not conn.autocommit:
            conn.rollback()
        raise AccessDenied(
            f"reading the server log needs a superuser, or {LOG_READER_RIGHTS}"
        ) from None
