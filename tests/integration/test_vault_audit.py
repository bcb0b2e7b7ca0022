"""The audit log is append-only and hash-chained: nobody can change or remove a row through
SQL, and a superuser who goes around the triggers is caught by ``audit verify``."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import psycopg
import pytest
from typer.testing import CliRunner

from veilflow.errors import AccessDenied
from veilflow.vault import access, audit
from veilflow.zones.db import connect


def _fill(conn: psycopg.Connection, n: int = 5) -> None:
    for i in range(n):
        audit.record(
            conn,
            "policy.run",
            target=f"dataset_{i}",
            count=i,
            details={"status": "published", "rows": 10 * i},
        )


def _cli(*args: str) -> tuple[int, str, BaseException | None]:
    from veilflow.cli import app

    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output, result.exception


def test_rows_chain_and_verify(conn: psycopg.Connection) -> None:
    _fill(conn)
    rows = conn.execute(
        "SELECT seq, actor, prev_hash, row_hash FROM governance.audit_log ORDER BY seq"
    ).fetchall()
    assert [r[0] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0][2] == "0" * 64
    assert all(rows[i][2] == rows[i - 1][3] for i in range(1, 5))
    assert {r[1] for r in rows} == {"postgres"}
    report = audit.verify(conn)
    assert report.ok and report.rows == 5 and report.head == rows[-1][3]
    code, out, _ = _cli("audit", "verify")
    assert code == 0 and "intact: 5 row(s)" in out


def test_the_hash_is_sha256_over_prev_hash_and_the_row(conn: psycopg.Connection) -> None:
    """Independent recomputation from the row's fields (not PostgreSQL's rendering)."""
    audit.record(
        conn,
        "reidentify",
        target="people.email",
        purpose="ticket 1",
        count=3,
        details={"matched": 3},
    )
    seq, at, actor, action, target, purpose, count, outcome, details, prev, row_hash = conn.execute(
        "SELECT seq, at, actor, action, target, purpose, count, outcome, details,"
        " prev_hash, row_hash FROM governance.audit_log"
    ).fetchone()  # type: ignore[misc]
    when = at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    payload = json.dumps(
        [seq, when, actor, action, target, purpose, count, outcome, details],
        separators=(", ", ": "),
        ensure_ascii=False,
    )
    assert hashlib.sha256((prev + payload).encode()).hexdigest() == row_hash


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE governance.audit_log SET count = 0",
        "DELETE FROM governance.audit_log WHERE seq = 2",
        "TRUNCATE governance.audit_log",
    ],
)
def test_even_the_owner_cannot_change_or_remove_rows(
    conn: psycopg.Connection, statement: str
) -> None:
    _fill(conn, 3)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        conn.execute(statement)
    assert audit.verify(conn).rows == 3


def test_a_forged_insert_is_chained_by_the_database_not_the_caller(
    conn: psycopg.Connection,
) -> None:
    _fill(conn, 2)
    conn.execute(
        "INSERT INTO governance.audit_log (seq, at, actor, action, target, outcome,"
        " prev_hash, row_hash) VALUES (99, '2000-01-01', 'someone_else', 'x', 'y',"
        " 'ok', 'forged', 'forged')"
    )
    row = conn.execute(
        "SELECT seq, actor, prev_hash <> 'forged', at > '2001-01-01'"
        " FROM governance.audit_log ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    assert row == (3, "postgres", True, True)
    assert audit.verify(conn).ok


def _as_superuser_around_the_trigger(conn: psycopg.Connection, statement: str) -> None:
    conn.execute("ALTER TABLE governance.audit_log DISABLE TRIGGER audit_log_append_only")
    conn.execute(statement)
    conn.execute("ALTER TABLE governance.audit_log ENABLE TRIGGER audit_log_append_only")


def test_an_edited_row_is_caught_by_verify(conn: psycopg.Connection) -> None:
    _fill(conn, 6)
    _as_superuser_around_the_trigger(
        conn, "UPDATE governance.audit_log SET count = 999 WHERE seq = 4"
    )
    report = audit.verify(conn)
    assert report.broken_at == 4 and report.rows == 3 and "edited" in (report.reason or "")
    _, _, exc = _cli("audit", "verify")
    assert isinstance(exc, audit.AuditChainBroken) and "broken at row 4" in str(exc)
    assert exc.exit_code == 10


def test_a_rehashed_edit_breaks_the_next_link(conn: psycopg.Connection) -> None:
    _fill(conn, 5)
    _as_superuser_around_the_trigger(
        conn,
        """
        UPDATE governance.audit_log SET details = '{"status": "failed"}',
          row_hash = encode(sha256(convert_to(prev_hash || jsonb_build_array(seq,
            to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), actor, action,
            target, purpose, count, outcome, '{"status": "failed"}'::jsonb)::text, 'UTF8')),
            'hex')
        WHERE seq = 2""",
    )
    report = audit.verify(conn)
    assert report.broken_at == 3 and "prev_hash" in (report.reason or "")


def test_a_deleted_row_is_caught_by_verify(conn: psycopg.Connection) -> None:
    _fill(conn, 5)
    _as_superuser_around_the_trigger(conn, "DELETE FROM governance.audit_log WHERE seq = 3")
    report = audit.verify(conn)
    assert report.broken_at == 3 and report.reason == "row 3 is missing"


def test_a_denial_survives_the_rollback_of_the_callers_transaction(
    zones_db: str, conn: psycopg.Connection, role_logins: dict[str, str]
) -> None:
    mle = role_logins["ml_engineer"]
    with connect(user=mle) as c:  # not autocommit: the check runs inside a transaction
        c.execute("SELECT 1")
        with pytest.raises(AccessDenied):
            access.require(c, "keys.manage", action="key.destroy", target="people/token@v1")
        c.rollback()
    rows = conn.execute(
        "SELECT actor, action, target, outcome, details->>'reason' FROM governance.audit_log"
    ).fetchall()
    assert rows == [(mle, "key.destroy", "people/token@v1", "denied", "requires veilflow_admin")]


def test_tail_and_who_may_read_it(
    zones_db: str, conn: psycopg.Connection, role_logins: dict[str, str]
) -> None:
    _fill(conn, 4)
    with connect(user=role_logins["auditor"], autocommit=True) as c:
        entries = audit.tail(c, 2)
        assert [e.target for e in entries] == ["dataset_2", "dataset_3"]
        assert "policy.run" in entries[-1].line() and "count=3" in entries[-1].line()
        assert audit.verify(c).ok  # the auditor can verify with SELECT alone
    with (
        connect(user=role_logins["admin"], autocommit=True) as c,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        audit.tail(c, 2)


def test_concurrent_appenders_never_fork_the_chain(zones_db: str, conn: psycopg.Connection) -> None:
    import threading

    def append(worker: int) -> None:
        with connect(autocommit=True) as c:
            for i in range(20):
                audit.record(c, "policy.run", target=f"w{worker}", count=i)

    threads = [threading.Thread(target=append, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = audit.verify(conn)
    assert report.ok and report.rows == 80


def _rechain(conn: psycopg.Connection) -> None:
    """Recompute every link from the genesis, as a superuser who rewrites history would."""
    conn.execute("ALTER TABLE governance.audit_log DISABLE TRIGGER audit_log_append_only")
    prev = audit.GENESIS
    for (seq,) in conn.execute("SELECT seq FROM governance.audit_log ORDER BY seq").fetchall():
        row = conn.execute(
            f"SELECT {audit._PAYLOAD_SQL} FROM governance.audit_log WHERE seq = %s", (seq,)
        ).fetchone()
        assert row is not None
        digest = hashlib.sha256((prev + row[0]).encode("utf-8")).hexdigest()
        conn.execute(
            "UPDATE governance.audit_log SET prev_hash = %s, row_hash = %s WHERE seq = %s",
            (prev, digest, seq),
        )
        prev = digest
    conn.execute("ALTER TABLE governance.audit_log ENABLE TRIGGER audit_log_append_only")


def test_an_anchor_catches_the_newest_rows_removed(conn: psycopg.Connection) -> None:
    _fill(conn, 5)
    anchor = audit.Anchor.of(audit.verify(conn))
    assert anchor.rows == 5 and audit.anchor_broken(conn, anchor) is None
    _fill(conn, 2)  # the chain grows: an earlier anchor still holds
    assert audit.anchor_broken(conn, anchor) is None

    _as_superuser_around_the_trigger(conn, "DELETE FROM governance.audit_log WHERE seq >= 5")
    shortened = audit.verify(conn)
    assert shortened.ok and shortened.rows == 4  # on its own, the shorter chain verifies
    why = audit.anchor_broken(conn, anchor)
    assert why is not None and "row 5" in why and "4 row(s)" in why and "removed" in why

    _, _, exc = _cli("audit", "verify", "--anchor", str(anchor))
    assert isinstance(exc, audit.AuditChainBroken) and exc.exit_code == 10
    assert "does not hold the anchor" in str(exc) and "removed" in str(exc)


def test_an_anchor_catches_a_chain_rewritten_whole(conn: psycopg.Connection) -> None:
    _fill(conn, 4)
    anchor = audit.Anchor.of(audit.verify(conn))
    _as_superuser_around_the_trigger(
        conn, "UPDATE governance.audit_log SET count = 999 WHERE seq = 2"
    )
    assert not audit.verify(conn).ok
    _rechain(conn)
    assert audit.verify(conn).ok  # every link holds again
    why = audit.anchor_broken(conn, anchor)
    assert why is not None and "row 4" in why and "rewritten" in why


def test_verify_prints_an_anchor_the_next_verify_checks(conn: psycopg.Connection) -> None:
    _fill(conn, 3)
    code, out, _ = _cli("audit", "verify")
    assert code == 0 and "audit chain intact: 3 row(s)" in out
    printed = out.strip().splitlines()[-1].rsplit(" ", 1)[-1]
    assert audit.Anchor.parse(printed) == audit.Anchor.of(audit.verify(conn))
    _fill(conn, 1)
    code, out, _ = _cli("audit", "verify", "--anchor", printed)
    assert code == 0 and "holds the anchor of 3 row(s)" in out

    for bad in ("3", "x:" + "0" * 64, "3:" + "0" * 63, "3:" + "g" * 64):
        code, _, exc = _cli("audit", "verify", "--anchor", bad)
        assert code != 0 and "ROWS:HEAD" in str(exc)
