"""Chunked bulk I/O through PostgreSQL's COPY (psycopg 3), in CSV so that NULL and the
empty string stay distinct. Every column travels as its text form; a chunk is a pandas
frame of pyarrow-backed strings."""

from __future__ import annotations

import io

import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql

from veilflow.transform.base import STRING

_WRITE = pacsv.WriteOptions(include_header=False, quoting_style="needed")


def read_frame(conn: psycopg.Connection, query: sql.Composable, columns: list[str]) -> pd.DataFrame:
    """Run ``query`` through ``COPY (...) TO STDOUT`` and return its rows as strings."""
    buf = io.BytesIO()
    with (
        conn.cursor() as cur,
        cur.copy(sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(query)) as copy,
    ):
        while block := copy.read():
            buf.write(block)
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
