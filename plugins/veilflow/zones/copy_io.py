"""Chunked bulk I/O through PostgreSQL's COPY (psycopg 3), in CSV so that NULL and the
empty string stay distinct. Every column travels as its text form; a chunk is a pandas
frame of pyarrow-backed strings."""

from __future__ import annotations

import io

import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import pq, sql
from psycopg.abc import PQGen
from psycopg.generators import fetch_many
from psycopg.pq.abc import PGconn, PGresult
from psycopg.waiting import Wait

from veilflow.transform.base import STRING

_WRITE = pacsv.WriteOptions(include_header=False, quoting_style="needed")


def read_frame(conn: psycopg.Connection, query: sql.Composable, columns: list[str]) -> pd.DataFrame:
    """Run ``query`` through ``COPY (...) TO STDOUT`` and return its rows as strings."""
    buf = io.BytesIO()
    with (
        conn.cursor() as cur,
        cur.copy(sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(query)) as copy,
    ):
        drain_copy_out(conn, copy, buf)
    if buf.tell() == 0:
        return pd.DataFrame({c: pd.Series([], dtype=STRING) for c in columns})
    buf.seek(0)
    table = pacsv.read_csv(
        buf,
        read_options=pacsv.ReadOptions(column_names=columns, block_size=1 << 24),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in columns},
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            null_values=[""],
        ),
    )
    frame: pd.DataFrame = table.to_pandas(types_mapper={pa.string(): STRING}.get)
    return frame


def drain_copy_out(conn: psycopg.Connection, copy: psycopg.Copy, sink: io.BytesIO) -> None:
    """Read every row of a running ``COPY ... TO STDOUT`` into ``sink``.

    The server sends one message per row; ``Copy.read()`` returns one row per call, each
    through a wait on the socket (~4 µs a row, most of a chunk's read time). This drains
    whatever libpq has buffered in one loop and waits only when the buffer is empty, in a
    single generator run. Its end is the end ``Copy.read()`` handles: the final result is
    fetched and checked, and the copy marked finished."""
    pgconn = conn.pgconn
    results = conn.wait(_drain(pgconn, sink))
    if len(results) != 1 or results[0].status != pq.ExecStatus.COMMAND_OK:
        raise psycopg.errors.error_from_result(results[-1], encoding=conn.info.encoding)
    copy._finished = True  # what Copy.read() sets on the same end of data


def _drain(pgconn: PGconn, sink: io.BytesIO) -> PQGen[list[PGresult]]:
    while True:
        nbytes, data = pgconn.get_copy_data(1)
        if nbytes > 0:
            sink.write(data)
        elif nbytes == 0:  # nothing buffered: wait for the socket
            while not (yield Wait.R):
                continue
            pgconn.consume_input()
        else:  # -1: end of data (or -2: an error), the final result follows
            break
    results: list[PGresult] = yield from fetch_many(pgconn)
    return results


def write_frame(conn: psycopg.Connection, table: sql.Composable, frame: pd.DataFrame) -> int:
    """``COPY table (columns) FROM STDIN`` the frame's rows; return the row count."""
    if frame.empty:
        return 0
    arrow = pa.Table.from_pandas(frame, preserve_index=False)
    arrow = arrow.cast(pa.schema([pa.field(f.name, pa.string()) for f in arrow.schema]))
    buf = io.BytesIO()
    pacsv.write_csv(arrow, buf, _WRITE)
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in frame.columns)
    with (
        conn.cursor() as cur,
        cur.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(table, cols)) as copy,
    ):
        copy.write(buf.getbuffer())
    return len(frame)
