"""The source side of incremental runs (ADR 0017): where the last published run's cursor
stands, which source rows changed below it since, and the record of what a run took.

A run of a policy with ``incremental: {cursor: c}`` takes the source rows with
``c > cursor_to`` of the last published run, under a REPEATABLE READ snapshot it records
(``pg_current_snapshot()``). The next run proves the rows below the cursor are the ones
that run saw, without reading their values: a row written after that snapshot (an UPDATE,
or an INSERT below the cursor) is a row whose ``xmin`` the recorded snapshot does not see;
a row deleted (or the old version of an updated one) is missing from the counts per block
of the cursor's range. Counts and cursor positions only: never a value of a row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from veilflow.zones.manifest import ColumnEntry
from veilflow.zones.runs import policy_and_columns

#: Rows per block of the cursor's range: what a refusal names (a block's cursor range and
#: counts). Blocks follow the rank of the cursor, so equal cursors share a block.
BLOCK_ROWS = 50_000


@dataclass(frozen=True)
class Block:
    """Source rows with ``lo <= cursor`` (and below the next block's ``lo``) a run saw."""

    lo: str
    rows: int


@dataclass(frozen=True)
class CursorState:
    """What the last published run of an incremental policy took and saw."""

    run_id: str
    column: str
    type: str
    cursor_from: str | None
    cursor_to: str | None
    rows_taken: int
    rows_total: int
    blocks: tuple[Block, ...]
    #: ``pg_current_snapshot()`` of the run's extract, as text.
    snapshot: str
    policy_hash: str
    manifest_columns: tuple[ColumnEntry, ...]


@dataclass(frozen=True)
class BlockChange:
    """Rows of one block of the published range that are not as the last run saw them."""

    lo: str
    hi: str | None
    published: int
    #: Rows written after the last run's snapshot (updated, or inserted below the cursor).
    written: int
    #: Rows of the last run's that are gone (deleted, or the old version of an update).
    missing: int
    #: The cursor range of the written rows (positions, not values of other columns).
    written_from: str | None = None
    written_to: str | None = None

    def describe(self, column: str) -> str:
        upper = f"< {self.hi}" if self.hi is not None else "(the last block)"
        parts = [f"{column} >= {self.lo} {upper}: {self.published:,} row(s) published"]
        if self.written:
            span = (
                f" ({column} {self.written_from} .. {self.written_to})"
                if self.written_from is not None
                else ""
            )
            parts.append(f"{self.written:,} written since{span}")
        if self.missing:
            parts.append(f"{self.missing:,} no longer there")
        return ", ".join(parts)


def cursor_type(conn: psycopg.Connection[Any], schema: str, table: str, column: str) -> str:
    row = conn.execute(
        """SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
             JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = %s AND c.relname = %s AND a.attname = %s AND NOT a.attisdropped""",
        (schema, table, column),
    ).fetchone()
    if row is None:
        raise LookupError(column)
    return str(row[0])


def is_plain_table(conn: psycopg.Connection[Any], schema: str, table: str) -> bool:
    """A table with rows of its own (plain or partitioned): one whose rows carry ``xmin``."""
    row = conn.execute(
        "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s",
        (schema, table),
    ).fetchone()
    return row is not None and row[0] in ("r", "p")


def null_cursors(conn: psycopg.Connection[Any], schema: str, table: str, column: str) -> int:
    """Source rows whose cursor is NULL (0 at once when the column is NOT NULL)."""
    row = conn.execute(
        """SELECT a.attnotnull FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = %s AND c.relname = %s AND a.attname = %s""",
        (schema, table, column),
    ).fetchone()
    if row is not None and row[0]:
        return 0
    found = conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE {} IS NULL").format(
            sql.Identifier(schema, table), sql.Identifier(column)
        )
    ).fetchone()
    return int(found[0]) if found else 0


def latest_cursor(conn: psycopg.Connection[Any], dataset: str) -> CursorState | None:
    """The cursor of the dataset's published version, when that version was published by
    an incremental run (a full run of a policy without ``incremental`` published since
    leaves no cursor to continue from)."""
    row = conn.execute(
        """SELECT c.run_id, c.cursor_column, c.cursor_type, c.cursor_from, c.cursor_to,
                  c.rows_taken, c.rows_total, c.blocks, c.source_snapshot
             FROM governance.published_versions v
             JOIN governance.published_cursors c ON c.dataset = v.dataset AND c.run_id = v.run_id
            WHERE v.dataset = %s
              AND v.published_at = (SELECT max(published_at) FROM governance.published_versions
                                     WHERE dataset = %s)""",
        (dataset, dataset),
    ).fetchone()
    ran = None if row is None else policy_and_columns(conn, str(row[0]))
    if row is None or ran is None:
        return None
    return CursorState(
        run_id=row[0],
        column=row[1],
        type=row[2],
        cursor_from=row[3],
        cursor_to=row[4],
        rows_taken=int(row[5]),
        rows_total=int(row[6]),
        blocks=tuple(Block(str(b["lo"]), int(b["rows"])) for b in row[7]),
        snapshot=str(row[8]),
        policy_hash=ran[0],
        manifest_columns=ran[1],
    )


def pin_session(conn: psycopg.Connection[Any]) -> None:
    """Cursor positions are read and written as ISO text (``to_jsonb``); a timestamptz's
    text names its offset from the session's time zone, so pin it."""
    conn.execute("SET LOCAL TimeZone = 'UTC'")


def source_changes(
    conn: psycopg.Connection[Any], schema: str, table: str, state: CursorState
) -> list[BlockChange]:
    """The blocks of the published range (``cursor <= cursor_to``) whose rows are not the
    ones the last run's snapshot saw. Run it in the snapshot the new run takes, so nothing
    written between the check and the new run's snapshot goes unseen.

    A row is written after the snapshot when its ``xmin`` is at or after the snapshot's
    ``xmin`` and not visible in it (``pg_visible_in_snapshot``); the 32-bit ``xmin`` is
    widened against the current 64-bit transaction id (rows billions of transactions old
    would wrap round into the window and be refused, never missed). One parallel
    sequential scan of the range, reading no column but the cursor."""
    if state.cursor_to is None or not state.blocks:
        return []
    typ = sql.SQL(state.type)
    cur = sql.Identifier(state.column)
    lows = [b.lo for b in state.blocks]
    ref = conn.execute(
        "SELECT pg_current_xact_id()::text::bigint,"
        " pg_snapshot_xmin(%s::pg_snapshot)::text::bigint",
        (state.snapshot,),
    ).fetchone()
    assert ref is not None
    now_xid, since_xid = int(ref[0]), int(ref[1])
    # The distance back from now to a row's xmin, modulo 2^32; the row is new enough to
    # ask the snapshot about when it is within the distance back to the snapshot's xmin.
    back = sql.SQL("((({n32} - x32) %% 4294967296) + 4294967296) %% 4294967296").format(
        n32=sql.Literal(now_xid % 4294967296)
    )
    parts = {
        "c": cur,
        "t": typ,
        "src": sql.Identifier(schema, table),
        "back": back,
        "window": sql.Literal(now_xid - since_xid),
        "now": sql.Literal(now_xid),
    }
    rows = sql.SQL(
        "SELECT c, CASE WHEN x32 < 3 OR {back} > {window} THEN false"  # special ids, old rows
        " ELSE NOT pg_visible_in_snapshot(({now} - {back})::text::xid8, %(snap)s::pg_snapshot)"
        " END AS written FROM (SELECT {c} AS c, xmin::text::bigint AS x32 FROM {src}"
        " WHERE {c} <= %(to)s::{t}) s"
    ).format(**parts)
    # The common case in one parallel scan: as many rows as published, none written since.
    whole = conn.execute(
        sql.SQL("SELECT count(*), count(*) FILTER (WHERE written) FROM ({}) w").format(rows),
        {"snap": state.snapshot, "to": state.cursor_to},
    ).fetchone()
    if whole is not None and int(whole[0]) == state.rows_total and int(whole[1]) == 0:
        return []
    now = conn.execute(
        sql.SQL(
            "SELECT b, count(*), count(*) FILTER (WHERE written),"
            " to_jsonb(min(c) FILTER (WHERE written)) #>> '{{}}',"
            " to_jsonb(max(c) FILTER (WHERE written)) #>> '{{}}'"
            " FROM (SELECT width_bucket(c, %(lows)s::text[]::{t}[]) AS b, c,"
            "  CASE WHEN x32 < 3 OR {back} > {window} THEN false"  # special ids: frozen, old
            "  ELSE NOT pg_visible_in_snapshot(({now} - {back})::text::xid8,"
            "   %(snap)s::pg_snapshot) END AS written"
            "  FROM (SELECT {c} AS c, xmin::text::bigint AS x32 FROM {src}"
            "   WHERE {c} <= %(to)s::{t}) s) w"
            " GROUP BY b ORDER BY b"
        ).format(
            c=cur,
            t=typ,
            src=sql.Identifier(schema, table),
            back=back,
            window=sql.Literal(now_xid - since_xid),
            now=sql.Literal(now_xid),
        ),
        {"snap": state.snapshot, "lows": lows, "to": state.cursor_to},
    ).fetchall()
    seen = {int(b): (int(n), int(w), lo, hi) for b, n, w, lo, hi in now}
    changes: list[BlockChange] = []
    # Bucket 0: rows below the first block, all of them added since.
    if 0 in seen:
        n, w, lo, hi = seen[0]
        changes.append(BlockChange("-infinity", lows[0], 0, n, 0, lo, hi))
    for i, block in enumerate(state.blocks, start=1):
        n, w, lo, hi = seen.get(i, (0, 0, None, None))
        unchanged = n - w
        missing = block.rows - unchanged
        if w or missing:
            upper = lows[i] if i < len(lows) else None
            changes.append(BlockChange(block.lo, upper, block.rows, w, missing, lo, hi))
    return changes


def take_snapshot_id(conn: psycopg.Connection[Any]) -> str:
    """The current transaction's snapshot (under REPEATABLE READ: the one every statement
    of the transaction reads through)."""
    row = conn.execute("SELECT pg_current_snapshot()::text").fetchone()
    assert row is not None
    return str(row[0])


def blocks_of(
    conn: psycopg.Connection[Any], table: sql.Composable, column: str, where: sql.Composable
) -> list[Block]:
    """Blocks of about :data:`BLOCK_ROWS` rows of ``table`` in cursor order (equal cursors
    in one block): each block's lowest cursor and rows."""
    rows = conn.execute(
        sql.SQL(
            "SELECT to_jsonb(min(c)) #>> '{{}}', count(*) FROM"
            " (SELECT {c} AS c, (rank() OVER (ORDER BY {c}) - 1) / {n} AS b FROM {t}"
            "  WHERE {w}) r GROUP BY b ORDER BY b"
        ).format(c=sql.Identifier(column), n=sql.Literal(BLOCK_ROWS), t=table, w=where)
    ).fetchall()
    return [Block(str(lo), int(n)) for lo, n in rows]


def highest(
    conn: psycopg.Connection[Any], table: sql.Composable, column: str, where: sql.Composable
) -> str | None:
    row = conn.execute(
        sql.SQL("SELECT to_jsonb(max({c})) #>> '{{}}' FROM {t} WHERE {w}").format(
            c=sql.Identifier(column), t=table, w=where
        )
    ).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def record_cursor(
    conn: psycopg.Connection[Any],
    dataset: str,
    run_id: str,
    cursor: dict[str, Any],
) -> None:
    """Record a published run's cursor (in the caller's transaction, the one that
    publishes). ``cursor`` is the manifest's ``incremental`` entry."""
    conn.execute(
        "INSERT INTO governance.published_cursors (dataset, run_id, cursor_column, cursor_type,"
        " cursor_from, cursor_to, rows_taken, rows_total, blocks, source_snapshot)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (dataset, run_id) DO NOTHING",
        (
            dataset,
            run_id,
            cursor["cursor"],
            cursor["type"],
            cursor.get("from"),
            cursor.get("to"),
            int(cursor["rows_taken"]),
            int(cursor["rows_total"]),
            json.dumps(cursor["blocks"]),
            cursor["snapshot"],
        ),
    )
