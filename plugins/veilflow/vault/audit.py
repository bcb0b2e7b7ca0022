"""The tamper-evident audit log (``governance.audit_log``).

Rows are only ever appended, through ``governance_api.append_audit`` or the database's own
triggers; a BEFORE INSERT trigger fills in the sequence number, time, actor (the login that
connected) and the hash chain, so no caller can choose them. UPDATE, DELETE and TRUNCATE are
not granted to anyone and a trigger refuses them even for the owner.

Each row's ``row_hash`` is ``sha256(prev_hash || payload)`` where ``payload`` is the row's
fields as a JSON array rendered by PostgreSQL; ``verify`` recomputes every hash here, in
Python, from the stored fields, and reports the first link that does not hold. Rows hold
names, counts and purposes, never a value or key material.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg.pq import TransactionStatus

from veilflow.errors import VeilflowError

log = logging.getLogger(__name__)

GENESIS = "0" * 64
OUTCOMES = ("ok", "denied", "error")

#: The chained payload, the same expression as in the ``governance.audit_chain`` trigger.
_PAYLOAD_SQL = (
    "jsonb_build_array(seq, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
    " actor, action, target, purpose, count, outcome, details)::text"
)


@contextmanager
def _own_transaction(conn: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """A connection on which a statement commits at once, whatever ``conn`` is doing: ``conn``
    itself when it is idle, else a second connection as the same login (so a caller's later
    rollback cannot erase the row)."""
    status = conn.info.transaction_status
    if status == TransactionStatus.IDLE:
        if conn.autocommit:
            yield conn
        else:
            with conn.transaction():
                yield conn
            conn.commit()
        return
    password = conn.pgconn.password
    extra = {"password": password.decode()} if password else {}
    with psycopg.connect(make_conninfo(conn.info.dsn, **extra), autocommit=True) as side:
        yield side


def record(
    conn: psycopg.Connection,
    action: str,
    *,
    target: str,
    purpose: str | None = None,
    count: int | None = None,
    outcome: str = "ok",
    details: dict[str, Any] | None = None,
) -> int:
    """Append one audit row and commit it before returning; return its sequence number.

    The actor is the login ``conn`` authenticated as. The row is committed on its own (on
    ``conn`` when idle, else on a second connection as the same login), so it survives a
    rollback of the caller's work; this is what makes denied attempts stick. ``details``
    must hold names and counts only, never values."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}")
    with _own_transaction(conn) as c:
        row = c.execute(
            "SELECT governance_api.append_audit(%s, %s, %s, %s, %s, %s::jsonb)",
            (
                action,
                target,
                purpose,
                count,
                outcome,
                json.dumps(details or {}, sort_keys=True, default=str),
            ),
        ).fetchone()
    assert row is not None
    log.info("audit %s %s %s", action, target, outcome)
    return int(row[0])


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: datetime
    actor: str
    action: str
    target: str
    purpose: str | None
    count: int | None
    outcome: str
    details: dict[str, Any]
    row_hash: str

    def line(self) -> str:
        """One line for a terminal."""
        bits = [
            f"{self.seq:>7}",
            f"{self.at:%Y-%m-%d %H:%M:%S}",
            f"{self.actor:<14}",
            f"{self.action:<18}",
            f"{self.outcome:<6}",
            self.target,
        ]
        if self.count is not None:
            bits.append(f"count={self.count}")
        if self.purpose:
            bits.append(f"purpose={json.dumps(self.purpose)}")
        if self.details:
            bits.append(json.dumps(self.details, sort_keys=True))
        return "  ".join(bits)


@dataclass(frozen=True)
class AuditFilter:
    """Which entries to list; None matches every value."""

    action: str | None = None  # an action or its prefix (``key`` matches ``key.rotate``)
    actor: str | None = None
    target: str | None = None  # substring
    outcome: str | None = None
    since: date | None = None
    until: date | None = None
    airflow_user: str | None = None


def audit_entries(
    conn: psycopg.Connection, flt: AuditFilter, *, limit: int = 200
) -> list[AuditEntry]:
    """Matching entries, newest first (the UI's audit page; ``tail`` for the CLI)."""
    rows = conn.execute(
        "SELECT seq, at, actor, action, target, purpose, count, outcome, details, row_hash"
        " FROM governance.audit_log"
        " WHERE (%(action)s::text IS NULL OR action = %(action)s OR action LIKE %(prefix)s)"
        "   AND (%(actor)s::text IS NULL OR actor = %(actor)s)"
        "   AND (%(target)s::text IS NULL OR strpos(target, %(target)s) > 0)"
        "   AND (%(outcome)s::text IS NULL OR outcome = %(outcome)s)"
        "   AND (%(since)s::date IS NULL OR at >= %(since)s::date)"
        "   AND (%(until)s::date IS NULL OR at < %(until)s::date + 1)"
        "   AND (%(airflow_user)s::text IS NULL OR details->>'airflow_user' = %(airflow_user)s)"
        " ORDER BY seq DESC LIMIT %(limit)s",
        {
            "action": flt.action,
            "prefix": f"{flt.action}.%" if flt.action else None,
            "actor": flt.actor,
            "target": flt.target,
            "outcome": flt.outcome,
            "since": flt.since,
            "until": flt.until,
            "airflow_user": flt.airflow_user,
            "limit": limit,
        },
    ).fetchall()
    return [AuditEntry(*r) for r in rows]


def tail(
    conn: psycopg.Connection,
    limit: int = 20,
    *,
    action: str | None = None,
    actor: str | None = None,
) -> list[AuditEntry]:
    """The newest ``limit`` entries (optionally of one action prefix or actor), oldest first."""
    newest = audit_entries(conn, AuditFilter(action=action, actor=actor), limit=limit)
    return newest[::-1]


@dataclass(frozen=True)
class ChainReport:
    """The outcome of walking the chain: rows checked, the head hash, and the first broken
    link (its sequence number and why) when there is one."""

    rows: int
    head: str
    broken_at: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_at is None

    def failure(self) -> str:
        """The one line that reports a broken chain (for a report that is not ``ok``)."""
        return (
            f"audit chain broken at row {self.broken_at}: {self.reason}"
            f" ({self.rows} row(s) before it verify)"
        )


def verify(conn: psycopg.Connection, *, batch: int = 10_000) -> ChainReport:
    """Walk the whole chain in order and recompute every hash; stop at the first broken
    link. Catches an edited field, a deleted or inserted row in the middle, a reordered or
    renumbered row, and a replaced hash. (Removing the newest rows leaves a shorter valid
    chain: compare ``head`` with a value kept elsewhere to catch that.)"""
    prev_hash, expect_seq, n = GENESIS, 1, 0
    with conn.transaction(), conn.cursor(name="veilflow_audit_verify") as cur:
        cur.execute(
            f"SELECT seq, prev_hash, row_hash, {_PAYLOAD_SQL}"
            " FROM governance.audit_log ORDER BY seq"
        )
        while True:
            rows = cur.fetchmany(batch)
            if not rows:
                break
            for seq, stored_prev, stored_hash, payload in rows:
                if seq != expect_seq:
                    why = (
                        f"row {expect_seq} is missing"
                        if seq > expect_seq
                        else f"row {seq} is out of order"
                    )
                    return ChainReport(n, prev_hash, expect_seq, why)
                if stored_prev != prev_hash:
                    return ChainReport(
                        n, prev_hash, seq, "prev_hash does not match the previous row's hash"
                    )
                digest = hashlib.sha256((prev_hash + payload).encode("utf-8")).hexdigest()
                if digest != stored_hash:
                    return ChainReport(
                        n, prev_hash, seq, "row contents do not match its hash (edited)"
                    )
                prev_hash, expect_seq, n = stored_hash, expect_seq + 1, n + 1
    return ChainReport(n, prev_hash)


@dataclass(frozen=True)
class Anchor:
    """What an earlier check saw: the chain's length and its head hash, kept outside the
    audit log (``ROWS:HEAD`` as text). Removing the newest rows leaves a chain that verifies
    on its own; it no longer holds an anchor taken before the removal."""

    rows: int
    head: str

    def __str__(self) -> str:
        return f"{self.rows}:{self.head}"

    @classmethod
    def parse(cls, text: str) -> Anchor:
        rows, sep, head = text.strip().partition(":")
        if not sep or not rows.isdigit() or len(head) != 64 or head.strip("0123456789abcdef"):
            raise VeilflowError(
                "an anchor is ROWS:HEAD as `veilflow audit verify` prints it"
                " (a row count, a colon, a 64-digit hex hash)"
            )
        return cls(int(rows), head)

    @classmethod
    def of(cls, report: ChainReport) -> Anchor:
        return cls(report.rows, report.head)


def anchor_broken(conn: psycopg.Connection, anchor: Anchor) -> str | None:
    """Why the chain no longer holds ``anchor`` (None when it does). With a chain that
    :func:`verify` passes, a held anchor proves the first ``anchor.rows`` rows are the ones
    the earlier check saw: each hash covers every row before it."""
    if anchor.rows == 0:
        return None
    row = conn.execute(
        "SELECT row_hash FROM governance.audit_log WHERE seq = %s", (anchor.rows,)
    ).fetchone()
    if row is None:
        count = conn.execute("SELECT count(*) FROM governance.audit_log").fetchone()
        return (
            f"row {anchor.rows}, the head an earlier check saw, is gone: the chain now has"
            f" {count[0] if count else 0} row(s), so its newest rows were removed"
        )
    if row[0] != anchor.head:
        return (
            f"row {anchor.rows} no longer has the hash an earlier check saw:"
            " the chain was rewritten up to it"
        )
    return None


class AuditChainBroken(VeilflowError):
    """``audit verify`` found a link that does not hold: the log was tampered with."""

    exit_code = 10
