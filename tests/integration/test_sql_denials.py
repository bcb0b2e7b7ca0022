"""A plain-SQL read of a zone a login may not read is refused by PostgreSQL, and
`veilflow audit denials` brings that refusal into the audit log: once, with the login and
the table, and without any value the statement held."""

from __future__ import annotations

import time

import psycopg
import pytest
from typer.testing import CliRunner

from tests.conftest import make_login
from veilflow.cli import app
from veilflow.errors import AccessDenied
from veilflow.vault.audit import verify
from veilflow.vault.denials import ACTION, LOG_READER_RIGHTS, import_denials
from veilflow.zones.db import connect

CANARY = "canary.0d1e2f3a@denied.invalid"


def denied_rows(conn: psycopg.Connection) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT target, outcome, details->>'login', details->>'message' FROM governance.audit_log"
        " WHERE action = %s ORDER BY seq",
        (ACTION,),
    ).fetchall()


def refused(url: str, conn: psycopg.Connection, login: str, statement: str) -> None:
    """A new ML engineer ``login`` runs ``statement`` and PostgreSQL refuses it; a statement
    that runs after it in the same session is no refusal."""
    make_login(conn, login, "veilflow_ml_engineer")
    with connect(url, user=login, autocommit=True) as c:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute(statement)
        c.execute("SELECT 1")


def import_until(conn: psycopg.Connection, want: int, timeout: float = 20) -> None:
    """The logging collector writes a moment after the error: import until the audit log
    holds ``want`` refusals."""
    deadline = time.monotonic() + timeout
    while True:
        import_denials(conn)
        if len(denied_rows(conn)) >= want or time.monotonic() > deadline:
            return
        time.sleep(0.2)


def test_a_refused_plain_sql_read_is_audited_once_without_values(
    seeded_db: str, conn: psycopg.Connection
) -> None:
    refused(
        seeded_db, conn, "mle_eve", f"SELECT * FROM restricted.customers WHERE email = '{CANARY}'"
    )

    import_until(conn, 1)
    # An ML engineer may not even look into the restricted schema.
    assert denied_rows(conn) == [
        ("schema restricted", "denied", "mle_eve", "permission denied for schema restricted")
    ]
    # Nothing twice, and the chain holds.
    assert import_denials(conn).imported == 0
    assert verify(conn).ok
    # The statement's literal is neither in the audit log nor in the server log.
    audit_text = conn.execute("SELECT string_agg(t::text, ' ') FROM governance.audit_log t")
    assert CANARY not in str(audit_text.fetchone())
    logs = conn.execute(
        "SELECT string_agg(convert_from(pg_read_binary_file(current_setting('log_directory')"
        " || '/' || name), 'UTF8'), '') FROM pg_ls_logdir() WHERE name LIKE '%.json'"
    ).fetchone()
    assert logs is not None and "permission denied for schema restricted" in logs[0]
    assert CANARY not in logs[0]


def test_the_command_reports_and_a_plain_login_may_not_read_the_log(
    seeded_db: str, conn: psycopg.Connection
) -> None:
    refused(seeded_db, conn, "mle_mo", "SELECT 1 FROM restricted.customers LIMIT 1")
    with connect(seeded_db, user="mle_mo", autocommit=True) as mo:
        with pytest.raises(AccessDenied, match="superuser"):
            import_denials(mo)
    out = CliRunner().invoke(app, ["audit", "denials"])
    assert out.exit_code == 0, out.output
    assert "refused statement(s) added to the audit log" in out.output
    # Both refusals: the read, and the attempt to read the server log.
    import_until(conn, 2)
    assert [(r[0], r[2]) for r in denied_rows(conn)] == [
        ("schema restricted", "mle_mo"),
        ("function pg_ls_logdir", "mle_mo"),
    ]


def test_a_login_with_the_documented_rights_imports_without_being_superuser(
    seeded_db: str, conn: psycopg.Connection
) -> None:
    # pg_read_server_files, as the name suggests, is not enough: it does not let a login call
    # pg_read_binary_file.
    make_login(conn, "log_reader", "veilflow_auditor", "pg_monitor", "pg_read_server_files")
    refused(seeded_db, conn, "mle_ida", "SELECT 1 FROM restricted.customers LIMIT 1")
    with connect(seeded_db, user="log_reader", autocommit=True) as reader:
        with pytest.raises(AccessDenied, match="EXECUTE on pg_read_binary_file"):
            import_denials(reader)
    # What LOG_READER_RIGHTS names, and nothing more.
    make_login(conn, "log_reader", "veilflow_auditor", "pg_monitor")
    conn.execute(
        "GRANT EXECUTE ON FUNCTION pg_read_binary_file(text, bigint, bigint, boolean) TO log_reader"
    )
    assert all(part in LOG_READER_RIGHTS for part in ("pg_monitor", "veilflow_auditor"))
    with connect(seeded_db, user="log_reader", autocommit=True) as reader:
        import_until(reader, 1)
        assert import_denials(reader).imported == 0  # nothing twice
        assert verify(reader).ok
    rows = conn.execute(
        "SELECT actor, details->>'login' FROM governance.audit_log WHERE action = %s"
        " AND details->>'login' = 'mle_ida'",
        (ACTION,),
    ).fetchall()
    assert rows == [("log_reader", "mle_ida")]
