"""Connections to the zones database: the embedded server by default, or
``VEILFLOW_DATABASE_URL``. Every error says what is wrong without echoing a password."""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

import psycopg
from psycopg import sql

from veilflow.config import AIRFLOW_DATABASE, ZONES_DATABASE, settings
from veilflow.errors import DatabaseUnavailable
from veilflow.zones.server import start_embedded

log = logging.getLogger(__name__)


def with_database(
    url: str, database: str, *, user: str | None = None, driver: str | None = None
) -> str:
    """``url`` pointed at another database (and optionally login / SQLAlchemy driver)."""
    parts = urlparse(url)
    netloc = parts.netloc
    if user is not None:
        host = netloc.rsplit("@", 1)[-1]
        netloc = f"{user}@{host}"
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


def zones_url(*, user: str | None = None) -> str:
    """URL of the zones database. Embedded: database ``veilflow``, created on first use."""
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
    return with_database(base, AIRFLOW_DATABASE, driver="psycopg2")


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
    url: str | None = None, *, user: str | None = None, autocommit: bool = False
) -> psycopg.Connection:
    """A psycopg connection to the zones database (as ``user`` when given)."""
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
