"""Chunk I/O through COPY: what goes out comes back, NULL and '' stay apart, and an error
raised by the server in the middle of a COPY is raised here, not swallowed."""

from __future__ import annotations

import pandas as pd
import psycopg
import pytest
from psycopg import sql

from veilflow.transform.base import STRING
from veilflow.zones.copy_io import read_frame, write_frame


def test_round_trip_keeps_nulls_empty_strings_quotes_and_newlines(
    conn: psycopg.Connection,
) -> None:
    frame = pd.DataFrame(
        {
            "a": pd.Series(["x", None, "", 'say "hi", then go', "two\nlines"], dtype=STRING),
            "b": pd.Series(["1", "2", None, "4", "5"], dtype=STRING),
        }
    )
    conn.execute("CREATE TEMPORARY TABLE t (a text, b text)")
    assert write_frame(conn, sql.Identifier("t"), frame) == 5
    back = read_frame(conn, sql.SQL("SELECT a, b FROM t"), ["a", "b"])
    pd.testing.assert_frame_equal(back, frame)


def test_many_rows_arrive_in_order(conn: psycopg.Connection) -> None:
    got = read_frame(
        conn, sql.SQL("SELECT g::text FROM generate_series(1, 200000) g ORDER BY g::int"), ["i"]
    )
    assert len(got) == 200_000
    assert got["i"].iloc[0] == "1" and got["i"].iloc[-1] == "200000"
    # The connection is usable afterwards: the COPY was finished properly.
    assert conn.execute("SELECT 41 + 1").fetchone() == (42,)


def test_error_in_the_middle_of_a_copy_is_raised(conn: psycopg.Connection) -> None:
    with pytest.raises(psycopg.errors.DivisionByZero):
        read_frame(
            conn,
            sql.SQL("SELECT (1 / (i - 150000))::text FROM generate_series(1, 200000) i"),
            ["x"],
        )
    conn.rollback()
    assert conn.execute("SELECT 1").fetchone() == (1,)


def test_empty_result_gives_typed_empty_columns(conn: psycopg.Connection) -> None:
    got = read_frame(conn, sql.SQL("SELECT 'x' AS a WHERE false"), ["a"])
    assert list(got.columns) == ["a"] and len(got) == 0 and got["a"].dtype == STRING
