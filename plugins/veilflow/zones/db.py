"""Connections to the zones database: the embedded server by default, or
``VEILFLOW_DATABASE_URL``. Every error says what is wrong without echoing a password.

Each connection is made for a duty (``veilflow.zones.logins``), which picks its login:

* ``VEILFLOW_DATABASE_URL`` set (an external server): that URL is this process's own login,
  for every duty, except ``VEILFLOW_MIGRATE_DATABASE_URL``, ``VEILFLOW_UI_DATABASE_URL`` and
  ``VEILFLOW_AUDIT_DATABASE_URL``, which, when set, are the logins of those duties;
* the embedded server: the duty's own login with its password from the state folder, over
  the server's socket; only ``migrate`` connects as the server's superuser.
"""

from __future__ import annotations

import logging
import os
from urllib.parse import parse_qsl, quote, urlencode, urlparse, urlunparse

import psycopg
from psycopg import sql

from veilflow.config import AIRFLOW_DATABASE, ZONES_DATABASE, settings
from veilflow.errors import DatabaseUnavailable
from veilflow.zones.logins import LOGINS, Duty, ensure_database_owner, password_for
from veilflow.zones.server import start_embedded

log = logging.getLogger(__name__)


def with_database(
    url: str,
    database: str,
    *,
    user: str | None = None,
    password: str | None = None,
    driver: str | None = None,
) -> str:
    """``url`` pointed at another database (and optionally login, its password, SQLAlchemy
    driver). A new login drops the old login's password."""
    parts = urlparse(url)
    netloc = parts.netloc
    if user is not None:
        host = netloc.rsplit("@", 1)[-1]
        secret = f":{quote(password, safe='')}" if password else ""
        netloc = f"{quote(user, safe='')}{secret}@{host}"
    scheme = "postgresql" + (f"+{driver}" if driver else "")
    query = urlencode(parse_qsl(parts.query))
    return urlunparse((scheme, netloc, "/" + database, "", query, ""))


def redact_url(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlparse(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunparse(parts._replace(netloc=netloc))
    return url


def server_url() -> str:
    """The superuser URL of the embedded server (started if needed), or the external URL."""
    s = settings()
    if s.database_url:
        return s.database_url
    return start_embedded(s.pgdata)


#: Duties whose login an environment variable may name apart from ``VEILFLOW_DATABASE_URL``.
DUTY_URL_ENV: dict[str, str] = {
    "migrate": "VEILFLOW_MIGRATE_DATABASE_URL",
    "ui": "VEILFLOW_UI_DATABASE_URL",
    "audit": "VEILFLOW_AUDIT_DATABASE_URL",
}


def duty_url(duty: Duty) -> str:
    """URL of the zones database as the login of ``duty`` (see the module docstring)."""
    own = os.environ.get(DUTY_URL_ENV.get(duty, ""), "")
    if own:
        return own
    s = settings()
    if s.database_url:
        return s.database_url
    superuser = zones_url()
    if duty == "migrate":
        return superuser
    login = LOGINS[duty]
    password = password_for(login, s.home)
    return with_database(superuser, ZONES_DATABASE, user=login.name, password=password)


def zones_url(*, user: str | None = None) -> str:
    """URL of the zones database (the superuser's on the embedded server). Embedded:
    database ``veilflow``, created on first use."""
    s = settings()
    if s.database_url:
        return (
            s.database_url
            if user is None
            else with_database(
                s.database_url,
                urlparse(s.database_url).path.lstrip("/") or ZONES_DATABASE,
                user=user,
            )
        )
    base = start_embedded(s.pgdata)
    ensure_database(base, ZONES_DATABASE)
    return with_database(base, ZONES_DATABASE, user=user)


def airflow_url() -> str:
    """SQLAlchemy URL of Airflow's metadata database on the same server."""
    s = settings()
    if s.database_url:
        base = s.database_url
        ensure_database(base, AIRFLOW_DATABASE)
        return with_database(base, AIRFLOW_DATABASE, driver="psycopg2")
    base = start_embedded(s.pgdata)
    ensure_database(base, AIRFLOW_DATABASE)
    login = LOGINS["airflow"]
    password = password_for(login, s.home, create=True)
    if (base, login.name) not in _ENSURED:
        with _connect(with_database(base, AIRFLOW_DATABASE), autocommit=True) as conn:
            ensure_database_owner(conn, login, password)
        _ENSURED.add((base, login.name))
    return with_database(
        base, AIRFLOW_DATABASE, user=login.name, password=password, driver="psycopg2"
    )


#: Databases this process already made sure of (one round trip saved per connection).
_ENSURED: set[tuple[str, str]] = set()


def ensure_database(url: str, name: str) -> None:
    """Create database ``name`` on the server of ``url`` if it does not exist."""
    if (url, name) in _ENSURED:
        return
    admin = with_database(url, "postgres")
    with _connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            except psycopg.errors.DuplicateDatabase:
                pass  # created concurrently by another process
    _ENSURED.add((url, name))


def connect(
    url: str | None = None,
    *,
    user: str | None = None,
    autocommit: bool = False,
    duty: Duty = "pipeline",
) -> psycopg.Connection:
    """A psycopg connection to the zones database: as the login of ``duty`` (the pipeline's
    by default), or to ``url`` / as ``user`` when given (the password then comes from the
    URL or libpq's own sources: ``PGPASSWORD``, ``~/.pgpass``)."""
    if url is None and user is None:
        return _connect(duty_url(duty), autocommit=autocommit)
    target = url if url is not None else zones_url(user=user)
    if url is not None and user is not None:
        target = with_database(url, urlparse(url).path.lstrip("/"), user=user)
    return _connect(target, autocommit=autocommit)


def _connect(url: str, *, autocommit: bool = False) -> psycopg.Connection:
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=10)
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseUnavailable(
            f"cannot connect to PostgreSQL at {redact_url(url)}: {reason}"
        ) from exc
