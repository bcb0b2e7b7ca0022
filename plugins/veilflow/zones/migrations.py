"""Numbered SQL migrations (``sql/NNNN_name.sql``), applied in order, each once, each in its
own transaction, recorded in ``governance.schema_migrations`` with a checksum.

Concurrent upgrades (two processes starting at once) serialize on an advisory lock.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from veilflow.config import PROJECT_ROOT
from veilflow.errors import VeilflowError

log = logging.getLogger(__name__)

SQL_DIR = PROJECT_ROOT / "sql"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_ID = 0x7665696C  # "veil"


class MigrationError(VeilflowError):
    exit_code = 4


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(sql_dir: Path = SQL_DIR) -> list[Migration]:
    found = []
    for path in sorted(sql_dir.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise MigrationError(f"{path}: migration files are named NNNN_name.sql")
        found.append(Migration(int(m.group(1)), m.group(2), path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations in {sql_dir} share a number")
    return found


def upgrade(conn: psycopg.Connection, sql_dir: Path = SQL_DIR) -> list[Migration]:
    """Apply every pending migration; return those applied. Safe to call repeatedly."""
    conn.autocommit = True
    conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
    try:
        conn.execute("CREATE SCHEMA IF NOT EXISTS governance")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS governance.schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        applied = {
            v: c
            for v, c in conn.execute(
                "SELECT version, checksum FROM governance.schema_migrations"
            ).fetchall()
        }
        done = []
        for mig in discover(sql_dir):
            if mig.version in applied:
                if applied[mig.version] != mig.checksum:
                    log.warning(
                        "migration %04d_%s changed after it was applied; not re-run",
                        mig.version,
                        mig.name,
                    )
                continue
            log.info("applying migration %04d_%s", mig.version, mig.name)
            try:
                with conn.transaction():
                    conn.execute(mig.path.read_text())
                    conn.execute(
                        "INSERT INTO governance.schema_migrations (version, name, checksum)"
                        " VALUES (%s, %s, %s)",
                        (mig.version, mig.name, mig.checksum),
                    )
            except psycopg.Error as exc:
                raise MigrationError(
                    f"migration {mig.path.name} failed: {str(exc).strip().splitlines()[0]}"
                ) from exc
            done.append(mig)
        return done
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))


def status(conn: psycopg.Connection, sql_dir: Path = SQL_DIR) -> list[tuple[Migration, bool]]:
    """Each known migration and whether it is applied."""
    try:
        applied = {
            r[0]
            for r in conn.execute("SELECT version FROM governance.schema_migrations").fetchall()
        }
    except psycopg.errors.UndefinedTable:
        conn.rollback()
        applied = set()
    return [(m, m.version in applied) for m in discover(sql_dir)]
