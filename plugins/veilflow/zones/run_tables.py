"""The tables one run works in, and the moves between zones.

``staging.<dataset>__<run>__src``  the snapshot: the source copied at extract, numbered by
                                    ``_vf_row`` in key order, plus canary rows (``_vf_canary``).
``staging.<dataset>__<run>__out``  the candidate: range-partitioned by ``_vf_row``, one
                                    partition per chunk, so a chunk is written (or rewritten
                                    after a retry) in one transaction, all or nothing.
Publish swaps a clean copy of the candidate into ``anonymized`` in one transaction; a refused
candidate moves to ``quarantine`` and the published table is never touched.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass

import pandas as pd
import psycopg
from psycopg import sql

from veilflow.errors import SourceError
from veilflow.zones.copy_io import write_frame

log = logging.getLogger(__name__)

ROW = "_vf_row"
CANARY = "_vf_canary"
#: Run tables live for one run: no autovacuum (it would only compete with the run for the
#: CPU and hold up the final DROP); they are created UNLOGGED (see ``create_snapshot``).
_RUN_TABLE_OPTIONS = sql.SQL("WITH (autovacuum_enabled = false)")


def run_tag(run_id: str) -> str:
    """A short, identifier-safe tag for a run id (Airflow run ids hold ':' and '+')."""
    clean = re.sub(r"[^a-z0-9]", "", run_id.lower())[-12:]
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:8]
    return f"{clean}_{digest}" if clean else digest


@dataclass(frozen=True)
class RunTables:
    dataset: str
    run_id: str

    @property
    def tag(self) -> str:
        return run_tag(self.run_id)

    @property
    def snapshot_name(self) -> str:
        return f"{self.dataset}__{self.tag}__src"

    @property
    def candidate_name(self) -> str:
        return f"{self.dataset}__{self.tag}__out"

    @property
    def snapshot(self) -> sql.Identifier:
        return sql.Identifier("staging", self.snapshot_name)

    @property
    def candidate(self) -> sql.Identifier:
        return sql.Identifier("staging", self.candidate_name)

    @property
    def sketches_name(self) -> str:
        return f"{self.dataset}__{self.tag}__gate"

    @property
    def sketches(self) -> sql.Identifier:
        """The gate's hash sketches of each chunk and the run's key for them."""
        return sql.Identifier("staging", self.sketches_name)

    @property
    def synthetic_name(self) -> str:
        return f"{self.dataset}__{self.tag}__syn"

    @property
    def synthetic(self) -> sql.Identifier:
        """A synthetic copy of the candidate, waiting for publish (veilflow.privacy)."""
        return sql.Identifier("staging", self.synthetic_name)

    def partition(self, chunk: int) -> sql.Identifier:
        return sql.Identifier("staging", f"{self.candidate_name}_c{chunk:05d}")


@dataclass(frozen=True)
class SourceColumn:
    name: str
    type: str
    not_null: bool


def source_columns(conn: psycopg.Connection, schema: str, table: str) -> list[SourceColumn]:
    """The table's columns in order; ``SourceError`` if the table does not exist."""
    rows = conn.execute(
        """SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum""",
        (schema, table),
    ).fetchall()
    if not rows:
        raise SourceError(
            f"source table {schema}.{table} does not exist (or this login cannot see it)"
        )
    return [SourceColumn(r[0], r[1], bool(r[2])) for r in rows]


def table_exists(conn: psycopg.Connection, schema: str, table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s)", (f'"{schema}"."{table}"',)).fetchone()
    return row is not None and row[0] is not None


def create_snapshot(
    conn: psycopg.Connection,
    rt: RunTables,
    schema: str,
    table: str,
    key: str,
    columns: list[str],
    where: sql.Composable | None = None,
) -> int:
    """Copy the source into the run's snapshot, numbered in key order. Idempotent: an
    existing snapshot of the same run is replaced. Returns the row count.

    Run tables live for one run. They are UNLOGGED (no write-ahead log, no flush at commit)
    and autovacuum is off for them (it would only compete with the run for the CPU and hold
    up the final DROP). A server crash empties unlogged tables: the run then fails, at the
    gate's row-count parity at the latest, and publishes nothing. ``where`` keeps only the
    source rows it holds for (an incremental run's rows past the cursor)."""
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    with conn.transaction():
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(rt.snapshot))
        cur = conn.execute(
            sql.SQL(
                "CREATE UNLOGGED TABLE {snap} {options} AS"
                " SELECT row_number() OVER (ORDER BY {key}) AS {row},"
                " false AS {canary}, {cols} FROM {src} {where}"
            ).format(
                where=sql.SQL("WHERE {}").format(where) if where is not None else sql.SQL(""),
                snap=rt.snapshot,
                options=_RUN_TABLE_OPTIONS,
                key=sql.Identifier(key),
                row=sql.Identifier(ROW),
                canary=sql.Identifier(CANARY),
                cols=cols,
                src=sql.Identifier(schema, table),
            )
        )
        count = cur.rowcount
        conn.execute(
            sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET NOT NULL").format(
                rt.snapshot, sql.Identifier(CANARY)
            )
        )
    return max(count, 0)


def drop_snapshot_rows(conn: psycopg.Connection, rt: RunTables, rows: list[int]) -> int:
    """Take ``rows`` (row numbers) out of the snapshot and number the rest again from 1 in
    the same order, so chunks keep cutting contiguous ranges. Returns the rows left."""
    rest = [c.name for c in source_columns(conn, "staging", rt.snapshot_name) if c.name != ROW]
    kept_name = (rt.snapshot_name + "_kept")[:63]
    kept = sql.Identifier("staging", kept_name)
    with conn.transaction():
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(kept))
        cur = conn.execute(
            sql.SQL(
                "CREATE UNLOGGED TABLE {kept} {options} AS"
                " SELECT row_number() OVER (ORDER BY {row}) AS {row}, {cols} FROM {snap}"
                " WHERE NOT ({row} = ANY(%s))"
            ).format(
                kept=kept,
                options=_RUN_TABLE_OPTIONS,
                row=sql.Identifier(ROW),
                cols=sql.SQL(", ").join(sql.Identifier(c) for c in rest),
                snap=rt.snapshot,
            ),
            (rows,),
        )
        left = max(cur.rowcount, 0)
        conn.execute(sql.SQL("DROP TABLE {}").format(rt.snapshot))
        conn.execute(
            sql.SQL("ALTER TABLE {} RENAME TO {}").format(kept, sql.Identifier(rt.snapshot_name))
        )
        conn.execute(
            sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET NOT NULL").format(
                rt.snapshot, sql.Identifier(CANARY)
            )
        )
    return left


def index_snapshot(conn: psycopg.Connection, rt: RunTables, *, renumber: bool = False) -> None:
    """Index the row numbers; with ``renumber``, first number the rows added after the copy
    without one (canaries planted without a row number)."""
    with conn.transaction():
        if renumber:
            conn.execute(
                sql.SQL(
                    "WITH m AS (SELECT coalesce(max({row}), 0) AS top FROM {snap}),"
                    " n AS (SELECT ctid, row_number() OVER () AS i FROM {snap}"
                    " WHERE {row} IS NULL)"
                    " UPDATE {snap} s SET {row} = m.top + n.i FROM m, n WHERE s.ctid = n.ctid"
                ).format(row=sql.Identifier(ROW), snap=rt.snapshot)
            )
        conn.execute(
            sql.SQL("CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} ({})").format(
                sql.Identifier(rt.snapshot_name + "_row"), rt.snapshot, sql.Identifier(ROW)
            )
        )


def create_candidate(
    conn: psycopg.Connection, rt: RunTables, columns: list[tuple[str, str]]
) -> None:
    """The empty, range-partitioned candidate (``columns`` = output name and SQL type)."""
    defs = [sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in columns]
    defs.append(sql.SQL("{} bigint NOT NULL").format(sql.Identifier(ROW)))
    defs.append(sql.SQL("{} boolean NOT NULL DEFAULT false").format(sql.Identifier(CANARY)))
    with conn.transaction():
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(rt.candidate))
        conn.execute(
            sql.SQL("CREATE TABLE {} ({}) PARTITION BY RANGE ({})").format(
                rt.candidate, sql.SQL(", ").join(defs), sql.Identifier(ROW)
            )
        )


def create_sketches(conn: psycopg.Connection, rt: RunTables, key: bytes) -> None:
    """The run's table of gate sketches, holding the run's hash key (chunk -1)."""
    with conn.transaction():
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(rt.sketches))
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(rt.synthetic))
        conn.execute(
            sql.SQL(
                "CREATE UNLOGGED TABLE {} (chunk integer NOT NULL, name text NOT NULL,"
                " data bytea NOT NULL, PRIMARY KEY (chunk, name)) {}"
            ).format(rt.sketches, _RUN_TABLE_OPTIONS)
        )
        # Hashes do not compress: store them as they are.
        conn.execute(
            sql.SQL("ALTER TABLE {} ALTER COLUMN data SET STORAGE EXTERNAL").format(rt.sketches)
        )
        conn.execute(sql.SQL("INSERT INTO {} VALUES (-1, 'key', %s)").format(rt.sketches), (key,))


def sketch_key(conn: psycopg.Connection, rt: RunTables) -> bytes:
    row = conn.execute(
        sql.SQL("SELECT data FROM {} WHERE chunk = -1 AND name = 'key'").format(rt.sketches)
    ).fetchone()
    if row is None:
        raise SourceError(f"run {rt.run_id} has no gate key; run extract again")
    return bytes(row[0])


def write_sketches(
    conn: psycopg.Connection, rt: RunTables, chunk: int, sketches: dict[str, bytes]
) -> None:
    """(Re)write chunk ``chunk``'s sketches, in the caller's transaction."""
    conn.execute(sql.SQL("DELETE FROM {} WHERE chunk = %s").format(rt.sketches), (chunk,))
    with (
        conn.cursor() as cur,
        cur.copy(
            sql.SQL("COPY {} (chunk, name, data) FROM STDIN (FORMAT BINARY)").format(rt.sketches)
        ) as copy,
    ):
        copy.set_types(["int4", "text", "bytea"])  # bytes as they are, not hex text
        for name, data in sketches.items():
            copy.write_row((chunk, name, data))


def write_partition(
    conn: psycopg.Connection, rt: RunTables, chunk: int, lo: int, hi: int, frame: pd.DataFrame
) -> None:
    """(Re)write chunk ``chunk`` (rows ``lo <= _vf_row < hi``) of the candidate from
    ``frame``: a fresh run table, filled by COPY and attached. In the caller's transaction,
    so a retry replaces the partition whole."""
    part = rt.partition(chunk)
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(part))
    conn.execute(
        sql.SQL("CREATE UNLOGGED TABLE {} (LIKE {} INCLUDING DEFAULTS) {}").format(
            part, rt.candidate, _RUN_TABLE_OPTIONS
        )
    )
    write_frame(conn, part, frame)
    conn.execute(
        sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
            rt.candidate, part, sql.Literal(lo), sql.Literal(hi)
        )
    )


def drop_run_tables(conn: psycopg.Connection, rt: RunTables) -> None:
    with conn.transaction():
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(rt.candidate))
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(rt.snapshot))
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(rt.sketches))
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(rt.synthetic))


def count(
    conn: psycopg.Connection, table: sql.Composable, where: sql.Composable | None = None
) -> int:
    q = sql.SQL("SELECT count(*) FROM {}").format(table)
    if where is not None:
        q = sql.SQL("{} WHERE {}").format(q, where)
    row = conn.execute(q).fetchone()
    return int(row[0]) if row else 0


# --------------------------------------------------------------------------- published
def published_sketches_name(dataset: str) -> str:
    return f"{dataset}__published_gate"[:63]


def published_sketches(dataset: str) -> sql.Identifier:
    """The gate sketches of a dataset's published version, kept for incremental runs
    (ADR 0017): the hash key (part -1), the (original, token) pairs and the key's token
    hashes of every run that appended (one part per chunk), and the class histogram of the
    published rows (part -2). In ``staging``: the pipeline's alone, like the run tables."""
    return sql.Identifier("staging", published_sketches_name(dataset))


#: Part numbers (of the published sketches) and chunk numbers (of a run's sketches) that
#: are not a chunk's: the hash key, the class histogram after the gate's suppression.
KEY_PART, HISTOGRAM_PART = -1, -2


def read_published_sketches(
    conn: psycopg.Connection, dataset: str
) -> tuple[bytes, dict[str, list[bytes]]] | None:
    """(key, sketch name -> parts) of the published version, or None when none is kept."""
    if not table_exists(conn, "staging", published_sketches_name(dataset)):
        return None
    key: bytes | None = None
    parts: dict[str, list[bytes]] = {}
    for part, name, data in conn.execute(
        sql.SQL("SELECT part, name, data FROM {} ORDER BY part").format(
            published_sketches(dataset)
        ),
        binary=True,
    ).fetchall():
        if int(part) == KEY_PART:
            key = bytes(data)
        else:
            parts.setdefault(str(name), []).append(bytes(data))
    return None if key is None else (key, parts)


def published_sketch_key(conn: psycopg.Connection, dataset: str) -> bytes | None:
    """The hash key of the published version's kept sketches (None when none are kept)."""
    if not table_exists(conn, "staging", published_sketches_name(dataset)):
        return None
    row = conn.execute(
        sql.SQL("SELECT data FROM {} WHERE part = {}").format(
            published_sketches(dataset), sql.Literal(KEY_PART)
        )
    ).fetchone()
    return None if row is None else bytes(row[0])


def write_histogram(conn: psycopg.Connection, rt: RunTables, data: bytes) -> None:
    """The class histogram of the rows the run will publish (after suppression), kept in
    the run's sketches for publish to keep (ADR 0017)."""
    conn.execute(
        sql.SQL("DELETE FROM {} WHERE chunk = {}").format(rt.sketches, sql.Literal(HISTOGRAM_PART))
    )
    conn.execute(
        sql.SQL("INSERT INTO {} VALUES ({}, 'risk', %s)").format(
            rt.sketches, sql.Literal(HISTOGRAM_PART)
        ),
        (data,),
    )


def keep_published_sketches(conn: psycopg.Connection, rt: RunTables, *, fresh: bool) -> None:
    """Add the run's sketches to its dataset's published sketches, in the caller's
    transaction (the one that publishes); ``fresh`` (a full run) starts them anew with the
    run's key. The class histogram is replaced by the one the gate left (the published
    rows' classes after the run: suppression removes rows, so it is no sum of parts)."""
    ident = published_sketches(rt.dataset)
    if fresh:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident))
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (part integer NOT NULL, name text NOT NULL,"
                " data bytea NOT NULL, PRIMARY KEY (part, name))"
            ).format(ident)
        )
        conn.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN data SET STORAGE EXTERNAL").format(ident))
        conn.execute(
            sql.SQL("INSERT INTO {} SELECT chunk, name, data FROM {} WHERE chunk = {}").format(
                ident, rt.sketches, sql.Literal(KEY_PART)
            )
        )
    conn.execute(
        sql.SQL(
            "INSERT INTO {pub} (part, name, data)"
            " SELECT (SELECT coalesce(max(part), -1) + 1 FROM {pub}) + chunk, name, data"
            " FROM {run} WHERE chunk >= 0 AND name <> 'risk'"
        ).format(pub=ident, run=rt.sketches)
    )
    conn.execute(
        sql.SQL("DELETE FROM {} WHERE part = {}").format(ident, sql.Literal(HISTOGRAM_PART))
    )
    conn.execute(
        sql.SQL("INSERT INTO {} SELECT chunk, name, data FROM {} WHERE chunk = {}").format(
            ident, rt.sketches, sql.Literal(HISTOGRAM_PART)
        )
    )
