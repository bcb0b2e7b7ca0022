"""The gate's re-identification checks: k-anonymity, l-diversity and t-closeness of the
candidate on the policy's quasi-identifiers, and, under ``on_violation: suppress``, the
deletion of the rows in classes smaller than k (counted, bounded by ``max_suppression``).

Three ways to the same metrics: aggregated in PostgreSQL on the candidate
(:func:`risk_checks`), merged from the chunks' class histograms (:func:`merged_risk_checks`,
ADR 0016), or over the candidate and the published table together when a run appends to it
(:func:`union_risk_checks`). Results carry counts, never a value.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
from psycopg import sql

from veilflow.validate.chunk_gate import risk_setup
from veilflow.validate.context import GateContext
from veilflow.validate.merge import (
    ChunkSpan,
    Summaries,
    histogram_metrics,
    merged_histogram,
    without_small_classes,
)
from veilflow.validate.privacy import suppress_small_classes, table_risk
from veilflow.validate.report import CheckResult
from veilflow.validate.risk_metrics import RiskMetrics


def _candidate_name(ctx: GateContext) -> str:
    return f'staging."{ctx.tables.candidate_name}"'


def risk_checks(
    conn: psycopg.Connection, ctx: GateContext
) -> tuple[list[CheckResult], int, dict[str, Any]]:
    """k-anonymity, l-diversity and t-closeness on the candidate's quasi-identifiers, with
    suppression of classes smaller than k when the policy says so. Returns the checks, the
    rows suppressed and the metrics for the run's record."""
    p = ctx.policy.privacy
    present = {c.name for c in ctx.columns}
    qi = [q for q in p.quasi_identifiers if q in present]
    if not qi:
        return [], 0, {}
    sensitive = p.sensitive if p.sensitive in present else None
    t0 = time.perf_counter()
    table = _candidate_name(ctx)
    metrics = table_risk(conn, table, qi, sensitive, distance=p.distance)
    record: dict[str, Any] = {
        "before": metrics.to_dict(),
        "dropped_quasi_identifiers": sorted(set(p.quasi_identifiers) - set(qi)),
    }
    suppressed = 0
    checks: list[CheckResult] = []
    if metrics.k < p.k and p.on_violation == "suppress":
        bound = int(p.max_suppression * metrics.rows)
        would = metrics.rows_in_classes_below(p.k)
        if would <= bound:
            suppressed = suppress_small_classes(conn, table, qi, p.k, max_rows=bound)
            if not conn.autocommit:
                conn.commit()  # GX reads the candidate through its own connection
            metrics = table_risk(conn, table, qi, sensitive, distance=p.distance)
        checks.append(_suppression_result(ctx, would, bound, record["before"]["rows"], suppressed))
    record["after"] = metrics.to_dict()
    record["suppressed_rows"] = suppressed
    seconds = time.perf_counter() - t0
    checks.extend(_risk_results(metrics, ctx, seconds))
    return checks, suppressed, record


def _suppression_result(
    ctx: GateContext, would: int, bound: int, rows: int, suppressed: int
) -> CheckResult:
    """Suppression passes when the rows in classes below k (``would``) stay within the
    policy's bound on ``rows``."""
    p = ctx.policy.privacy
    return CheckResult(
        "suppression",
        would <= bound,
        observed=would,
        threshold=bound,
        details={
            "k": p.k,
            "max_suppression": p.max_suppression,
            "rows": rows,
            "suppressed": suppressed,
        },
    )


def _risk_results(m: RiskMetrics, ctx: GateContext, seconds: float) -> list[CheckResult]:
    p = ctx.policy.privacy
    qi = {"quasi_identifiers": list(m.quasi_identifiers), "classes": m.classes}
    out = [
        CheckResult(
            "k_anonymity",
            m.rows == 0 or m.k >= p.k,
            observed=m.k,
            threshold=p.k,
            details=qi,
            seconds=seconds,
        )
    ]
    if p.l is not None and m.l is not None:
        out.append(
            CheckResult(
                "l_diversity",
                m.rows == 0 or m.l >= p.l,
                observed=m.l,
                threshold=p.l,
                column=m.sensitive,
                details=qi,
            )
        )
    if p.t is not None and m.t is not None:
        out.append(
            CheckResult(
                "t_closeness",
                m.t <= p.t,
                observed=round(m.t, 6),
                threshold=p.t,
                column=m.sensitive,
                details={**qi, "distance": m.distance},
            )
        )
    return out


def chunk_spans(ctx: GateContext) -> list[ChunkSpan]:
    """The run's key ranges, as extract cut them (real rows, then canaries)."""
    total, step = ctx.rows_in + ctx.canaries, ctx.policy.chunk_rows
    return [
        ChunkSpan(i, 1 + i * step, 1 + min((i + 1) * step, total))
        for i in range(max(1, ctx.chunks))
    ]


def merged_risk_checks(
    conn: psycopg.Connection, ctx: GateContext, s: Summaries
) -> tuple[list[CheckResult], int, dict[str, Any]]:
    """:func:`risk_checks` from the chunks' merged class histograms: the same classes,
    counts and figures, without reading the candidate. Suppression still deletes in
    PostgreSQL, and the figures after it come from the histogram when the DELETE removed
    exactly the rows the histogram said (else from the table)."""
    setup = risk_setup(ctx)
    hist = merged_histogram(ctx, s)
    if setup is None or hist is None:
        if setup is not None and ctx.appends_to is not None:
            return union_risk_checks(conn, ctx)
        return risk_checks(conn, ctx)
    p = ctx.policy.privacy
    qi, sensitive, _ = setup
    t0 = time.perf_counter()
    table = _candidate_name(ctx)
    metrics = histogram_metrics(ctx, hist)
    record: dict[str, Any] = {
        "before": metrics.to_dict(),
        "dropped_quasi_identifiers": sorted(set(p.quasi_identifiers) - set(qi)),
        "measured_on": "chunk summaries",
    }
    suppressed = 0
    checks: list[CheckResult] = []
    if metrics.k < p.k and p.on_violation == "suppress":
        # Appending, the published classes hold k rows or more: the small classes are the
        # run's rows alone, and the bound is on the run's rows.
        bound = int(p.max_suppression * (ctx.rows_in if ctx.appends_to else metrics.rows))
        would = metrics.rows_in_classes_below(p.k)
        if would <= bound:
            suppressed = _suppress(conn, ctx, table, qi, bound)
            if not conn.autocommit:
                conn.commit()
            if suppressed == would:
                metrics = histogram_metrics(ctx, without_small_classes(hist, p.k))
            else:
                metrics = table_risk(conn, table, qi, sensitive, distance=p.distance)
        checks.append(_suppression_result(ctx, would, bound, record["before"]["rows"], suppressed))
    record["after"] = metrics.to_dict()
    record["suppressed_rows"] = suppressed
    checks.extend(_risk_results(metrics, ctx, time.perf_counter() - t0))
    return checks, suppressed, record


def _suppress(
    conn: psycopg.Connection, ctx: GateContext, table: str, qi: list[str], bound: int
) -> int:
    k = ctx.policy.privacy.k
    if ctx.appends_to is None:
        return suppress_small_classes(conn, table, qi, k, max_rows=bound)
    return suppress_small_classes(conn, table, qi, k, max_rows=bound, beside=ctx.appends_to)


def union_risk_checks(
    conn: psycopg.Connection, ctx: GateContext
) -> tuple[list[CheckResult], int, dict[str, Any]]:
    """k / l / t measured in PostgreSQL (an ordered t-closeness, which no histogram of
    hashes can give) on the published table and the run's candidate together, through a
    view over both; suppression deletes only the run's rows."""
    p = ctx.policy.privacy
    setup = risk_setup(ctx)
    assert setup is not None and ctx.appends_to is not None
    qi, sensitive, _ = setup
    cols = [c.name for c in ctx.columns]
    view_name = f"{ctx.tables.candidate_name}_union"[:63]
    view = sql.Identifier("staging", view_name)
    schema, name = ctx.appends_to.split(".")
    listed = sql.SQL(", ").join(sql.Identifier(c) for c in cols)
    conn.execute(
        sql.SQL(
            "CREATE OR REPLACE VIEW {v} AS SELECT {cols}, {canary} FROM {cand}"
            " UNION ALL SELECT {cols}, false FROM {pub}"
        ).format(
            v=view,
            cols=listed,
            canary=sql.Identifier("_vf_canary"),
            cand=ctx.tables.candidate,
            pub=sql.Identifier(schema, name),
        )
    )
    try:
        union = f'staging."{view_name}"'
        t0 = time.perf_counter()
        metrics = table_risk(conn, union, qi, sensitive, distance=p.distance)
        record: dict[str, Any] = {"before": metrics.to_dict(), "measured_on": "union"}
        suppressed, checks = 0, []
        if metrics.k < p.k and p.on_violation == "suppress":
            bound = int(p.max_suppression * ctx.rows_in)
            would = metrics.rows_in_classes_below(p.k)
            if would <= bound:
                suppressed = _suppress(conn, ctx, _candidate_name(ctx), qi, bound)
                if not conn.autocommit:
                    conn.commit()
                metrics = table_risk(conn, union, qi, sensitive, distance=p.distance)
            checks.append(_suppression_result(ctx, would, bound, ctx.rows_in, suppressed))
        record["after"] = metrics.to_dict()
        record["suppressed_rows"] = suppressed
        checks.extend(_risk_results(metrics, ctx, time.perf_counter() - t0))
        return checks, suppressed, record
    finally:
        conn.execute(sql.SQL("DROP VIEW IF EXISTS {}").format(view))
