"""Whole-table checks, computed in SQL where the data is."""

from __future__ import annotations

import time

import psycopg
from psycopg import sql

from veilflow.validate.context import GateContext
from veilflow.validate.report import CheckResult
from veilflow.zones.run_tables import CANARY, count


def row_count_parity(conn: psycopg.Connection, ctx: GateContext, suppressed: int = 0
                     ) -> CheckResult:
    """Every source row is in the candidate once (minus rows suppressed on purpose)."""
    t = time.perf_counter()
    out = count(conn, ctx.tables.candidate, sql.SQL("NOT {}").format(sql.Identifier(CANARY)))
    expected = ctx.rows_in - suppressed
    return CheckResult("row_count_parity", out == expected, observed=out, threshold=expected,
                       details={"suppressed": suppressed}, seconds=time.perf_counter() - t)


def no_raw_value_survives(conn: psycopg.Connection, ctx: GateContext) -> list[CheckResult]:
    """For each column whose operator must hide its input: no output value of that column
    equals any raw value of the same source column (a hash semi-join per column)."""
    results = []
    for col in ctx.columns:
        if not col.hides_raw:
            continue
        t = time.perf_counter()
        ident = sql.Identifier(col.name)
        q = sql.SQL(
            "SELECT count(*) FROM {cand} o WHERE o.{c}::text IN"
            " (SELECT s.{c}::text FROM {snap} s WHERE s.{c} IS NOT NULL)").format(
                cand=ctx.tables.candidate, snap=ctx.tables.snapshot, c=ident)
        row = conn.execute(q).fetchone()
        leaked = int(row[0]) if row else 0
        results.append(CheckResult("no_raw_value_survives", leaked == 0, observed=leaked,
                                   threshold=0, column=col.name,
                                   seconds=time.perf_counter() - t))
    return results
