"""The logins veilflow's processes connect as, one per duty, and their passwords.

Every process connects as a login of its own that holds only the rights its duty needs; the
server's superuser only migrates and bootstraps (``veilflow db upgrade``, ``veilflow seed``):

========  ==========================  =====================================================
duty      login (embedded default)    rights
========  ==========================  =====================================================
migrate   the server's superuser      everything; ``db upgrade`` and ``seed`` only
pipeline  ``veilflow_pipeline_svc``   veilflow_pipeline: DAG tasks, ``veilflow run``
ui        ``veilflow_ui_svc``         none of its own; SET ROLE to veilflow_viewer,
                                      veilflow_auditor or veilflow_admin per request
audit     ``veilflow_audit_svc``      veilflow_auditor, pg_monitor and reading the server
                                      log (``audit denials``, the audit DAG)
steward   ``veilflow_local_steward``  veilflow_steward (embedded only: ``reidentify``)
auditor   ``veilflow_local_auditor``  veilflow_auditor (embedded only: ``audit verify``)
admin     ``veilflow_local_admin``    veilflow_admin (embedded only: ``keys``, ``access``)
========  ==========================  =====================================================

The service logins (pipeline, ui, audit) are made on any server by ``db upgrade``; the three
``local`` logins only on the embedded server, which is one person's machine: on a shared
server people log in as themselves (``VEILFLOW_DATABASE_URL``) and an admin grants them roles.

Passwords: ``VEILFLOW_<DUTY>_PASSWORD`` when set (the compose stack), else a random one kept
in ``$VEILFLOW_HOME/secrets/<login>`` (mode 0600), made on first use. The server stores only
a SCRAM-SHA-256 verifier, computed here: the password itself never reaches the server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psycopg
from psycopg import sql

from veilflow.errors import VeilflowError

log = logging.getLogger(__name__)

Duty = Literal["migrate", "pipeline", "ui", "audit", "steward", "auditor", "admin", "airflow"]
DUTIES: tuple[Duty, ...] = ("migrate", "pipeline", "ui", "audit", "steward", "auditor", "admin")

#: The signature of the function that reads the server log (``audit denials``).
READ_LOG_FUNCTION = "pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)"


@dataclass(frozen=True)
class ServiceLogin:
    """A login veilflow makes and keeps: its name, the groups it inherits, the groups it may
    only SET ROLE to, and whether it reads the server log."""

    duty: Duty
    name: str
    inherits: tuple[str, ...] = ()
    set_only: tuple[str, ...] = ()
    reads_server_log: bool = False
    embedded_only: bool = False

    @property
    def password_env(self) -> str:
        return f"VEILFLOW_{self.duty.upper()}_PASSWORD"


LOGINS: dict[Duty, ServiceLogin] = {
    login.duty: login
    for login in (
        ServiceLogin("pipeline", "veilflow_pipeline_svc", inherits=("veilflow_pipeline",)),
        ServiceLogin(
            "ui",
            "veilflow_ui_svc",
            set_only=("veilflow_viewer", "veilflow_auditor", "veilflow_admin"),
        ),
        ServiceLogin(
            "audit",
            "veilflow_audit_svc",
            inherits=("veilflow_auditor", "pg_monitor"),
            reads_server_log=True,
        ),
        ServiceLogin(
            "steward", "veilflow_local_steward", ("veilflow_steward",), embedded_only=True
        ),
        ServiceLogin(
            "auditor", "veilflow_local_auditor", ("veilflow_auditor",), embedded_only=True
        ),
        ServiceLogin("admin", "veilflow_local_admin", ("veilflow_admin",), embedded_only=True),
        # Airflow's metadata database on the embedded server: the owner of database
        # ``airflow`` and nothing in the zones (see ``ensure_database_owner``).
        ServiceLogin("airflow", "veilflow_airflow_svc", embedded_only=True),
    )
}


def secrets_dir(home: Path) -> Path:
    return home / "secrets"


def password_for(login: ServiceLogin, home: Path, *, create: bool = False) -> str:
    """The login's password: from its environment variable, else from the state folder
    (made there, 0600, when ``create``)."""
    from_env = os.environ.get(login.password_env)
    if from_env:
        return from_env
    path = secrets_dir(home) / login.name
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        if not create:
            raise VeilflowError(
                f"no password for login {login.name}: set {login.password_env} or run "
                "'veilflow db upgrade' to make the service logins"
            ) from None
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    password = secrets.token_urlsafe(32)
    # O_EXCL: two processes making the secret at once keep the first one written.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    return password


def scram_verifier(conn: psycopg.Connection, login: str, password: str) -> str:
    """The SCRAM-SHA-256 verifier of ``password``, computed by libpq on this side."""
    return conn.pgconn.encrypt_password(
        password.encode(), login.encode(), b"scram-sha-256"
    ).decode()


def ensure_logins(conn: psycopg.Connection, home: Path, *, embedded: bool) -> list[str]:
    """Create or update every service login (and, on the embedded server, the local people's
    logins) with its password and memberships. Needs a superuser or CREATEROLE connection.
    Returns the logins made or changed."""
    changed: list[str] = []
    with conn.transaction():
        for login in LOGINS.values():
            if login.duty == "airflow" or (login.embedded_only and not embedded):
                continue
            if _ensure(conn, login, password_for(login, home, create=True)):
                changed.append(login.name)
    return changed


def _ensure(conn: psycopg.Connection, login: ServiceLogin, password: str) -> bool:
    name = sql.Identifier(login.name)
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (login.name,)).fetchone()
    verifier = sql.Literal(scram_verifier(conn, login.name, password))
    changed = exists is None
    if changed:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
                name, verifier
            )
        )
    elif not _password_matches(_stored_verifier(conn, login.name), password):
        conn.execute(sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(name, verifier))
        changed = True
    for group in login.inherits:
        conn.execute(
            sql.SQL("GRANT {} TO {} WITH INHERIT TRUE, SET TRUE").format(
                sql.Identifier(group), name
            )
        )
    for group in login.set_only:
        conn.execute(
            sql.SQL("GRANT {} TO {} WITH INHERIT FALSE, SET TRUE").format(
                sql.Identifier(group), name
            )
        )
    if login.reads_server_log:
        conn.execute(
            sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(sql.SQL(READ_LOG_FUNCTION), name)
        )
    return changed


def _stored_verifier(conn: psycopg.Connection, login: str) -> str | None:
    """The login's stored verifier; None when this connection may not read it (only a
    superuser reads ``pg_authid``; a CREATEROLE login then always sets the password)."""
    try:
        with conn.transaction():
            row = conn.execute(
                "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (login,)
            ).fetchone()
    except psycopg.errors.InsufficientPrivilege:
        return None
    return None if row is None else row[0]


def _password_matches(stored: str | None, password: str) -> bool:
    """Whether a stored SCRAM verifier is one of ``password`` (its salt and iteration count
    are in the verifier, so the check recomputes the server key with them)."""
    if not stored or not stored.startswith("SCRAM-SHA-256$"):
        return False
    try:
        head, keys = stored.split("$", 1)[1].split("$", 1)
        iterations, salt = head.split(":", 1)
        stored_key, server_key = keys.split(":", 1)
        salted = hashlib.pbkdf2_hmac(
            "sha256", password.encode(), base64.b64decode(salt), int(iterations)
        )
    except ValueError:
        return False
    client = hashlib.sha256(hmac.new(salted, b"Client Key", "sha256").digest()).digest()
    server = hmac.new(salted, b"Server Key", "sha256").digest()
    return hmac.compare_digest(
        base64.b64encode(client).decode(), stored_key
    ) and hmac.compare_digest(base64.b64encode(server).decode(), server_key)


#: Every object in a database's ``public`` schema that can change owner, by kind.
_OWNED_OBJECTS = """
SELECT format('ALTER %%s %%I.%%I OWNER TO %%I', kind, nspname, name, %(owner)s::text)
  FROM (SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                              WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END AS kind,
               n.nspname, c.relname AS name, c.relowner AS owner
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
           AND NOT EXISTS (SELECT 1 FROM pg_depend d  -- a column's sequence follows its table
                            WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')
                              AND d.classid = 'pg_class'::regclass)
        UNION ALL
        SELECT 'TYPE', n.nspname, t.typname, t.typowner
          FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
         WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd')) o
 WHERE o.owner <> (SELECT oid FROM pg_roles WHERE rolname = %(owner)s)
"""


def ensure_database_owner(conn: psycopg.Connection, login: ServiceLogin, password: str) -> None:
    """Make ``login`` (with ``password``) the owner of the connected database and of what its
    ``public`` schema holds, so a program that keeps its own schema there (Airflow) runs as
    that login instead of the superuser. ``conn``: a superuser's, autocommit."""
    if _ensure(conn, login, password):
        log.info("login %s made or its password set", login.name)
    owner = sql.Identifier(login.name)
    conn.execute(
        sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(conn.info.dbname), owner)
    )
    for (statement,) in conn.execute(_OWNED_OBJECTS, {"owner": login.name}).fetchall():
        conn.execute(statement)
