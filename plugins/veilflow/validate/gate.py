"""The gate: runs every check the policy implies on the staged candidate.

Order matters: re-identification risk first, because ``on_violation: suppress`` deletes
rows (counted, bounded) and every later check must see the candidate as it would be
published. Then the Great Expectations suite (schema, row-count parity, not-null, formats,
key uniqueness, Data Docs) runs in a thread beside the SQL leak and consistency checks, the
canaries and the residual-PII rescan; "no raw value survives" comes last, since its cheap
form rests on the format checks. Every check reports pass/fail, observed value and
threshold, never a value of the data (ADR 0007).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import psycopg
from psycopg import sql

from veilflow.validate.checks import (
    no_raw_value_survives,
    raw_values_in_text,
    token_results,
    value_determined,
)
from veilflow.validate.context import GateContext
from veilflow.validate.gate_risk import chunk_spans, merged_risk_checks
from veilflow.validate.gx_suite import GATE_WORK_MEM
from veilflow.validate.merge import (
    canary_result,
    class_counts,
    format_proofs,
    key_duplicates,
    load_summaries,
    published_histogram,
    rederived_results,
    rescan_result,
    row_check_results,
    summary_frame,
    token_pair_results,
    words_to_search,
)
from veilflow.validate.report import CheckResult, GateReport
from veilflow.validate.rescan import rescan_columns
from veilflow.validate.summary import MalformedSummary
from veilflow.zones.run_tables import read_published_sketches, sketch_key, write_histogram

log = logging.getLogger(__name__)


def run_gate(
    conn: psycopg.Connection,
    ctx: GateContext,
    progress: Callable[[str], None] | None = None,
) -> GateReport:
    """Check the candidate; the caller publishes on pass and quarantines on fail.

    The transform tasks ran every per-chunk check and left a summary per chunk (ADR 0016);
    the gate reads them all (a missing or malformed one fails it), merges them into the
    global checks and has Great Expectations validate the suite on them, in a thread of
    its own, while the few checks that still read PostgreSQL run here: only when the
    summaries call for them, the value-for-value
    searches. ``progress`` hears of each group of checks as it ends (counts only)."""
    report = GateReport()
    started = time.perf_counter()
    done = len(report.checks)

    def step(what: str) -> None:
        nonlocal done
        new = report.checks[done:]
        done = len(report.checks)
        if progress is not None and new:
            failed = sum(not c.passed for c in new)
            progress(f"gate: {what}: {len(new)} check(s), {failed} failed")

    # Chunks are fresh partitions without statistics; never guess a nested loop over them.
    # Whole-table hash joins and aggregations fit in memory instead of spilling to disk.
    conn.execute("SET enable_nestloop = off")
    conn.execute(sql.SQL("SET work_mem = {}").format(sql.Literal(GATE_WORK_MEM)))

    gx: Future[tuple[list[CheckResult], str | None]] | None = None
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="veilflow-gx")
    try:
        if ctx.great_expectations:
            # SQLAlchemy first, in this thread: this thread needs it for GX's URL while the
            # preload's thread imports GX, which imports SQLAlchemy too, and a package two
            # threads import at once can be seen half initialized.
            import sqlalchemy.engine  # noqa: F401

            from veilflow.validate.gx_suite import preload

            pool.submit(preload)  # seconds of import, while the summaries are merged
        try:
            summaries = load_summaries(conn, ctx, chunk_spans(ctx), _published(conn, ctx))
        except MalformedSummary as exc:
            problems = str(exc).split("; ")
            report.checks.append(
                CheckResult(
                    "chunk_summaries",
                    False,
                    observed=len(problems),
                    threshold=0,
                    details={"problems": problems[:20]},
                )
            )
            step("chunk summaries")
            return report
        report.metrics["chunk_checks_cpu_seconds"] = round(
            sum(c.cpu_seconds for c in summaries.chunks), 3
        )

        risk, suppressed, record = merged_risk_checks(conn, ctx, summaries)
        report.checks.extend(risk)
        report.suppressed_rows = suppressed
        if record:
            report.metrics["risk"] = record
        if ctx.keeps_published:
            classes = class_counts(ctx, summaries)
            if classes is not None:
                write_histogram(
                    conn, ctx.tables, published_histogram(classes, ctx.policy.privacy.k)
                )
        if ctx.appends_to is not None:
            report.metrics["appends_to"] = ctx.appends_to
        step("re-identification risk")

        t = time.perf_counter()
        duplicates = key_duplicates(conn, ctx, summaries)
        key_proof = _unique_key_column(ctx)
        if ctx.great_expectations:
            from veilflow.validate.gx_suite import (
                build_expectations,
                run_summary_expectations,
                sqlalchemy_url,
            )

            docs_dir = (ctx.report_dir / "datadocs") if ctx.policy.validation.data_docs else None
            if not conn.autocommit:
                conn.commit()  # GX reads the candidate's catalog through its own connection
            gx = pool.submit(
                run_summary_expectations,
                sqlalchemy_url(conn),
                ctx,
                build_expectations(ctx, suppressed=suppressed),
                summary_frame(ctx, summaries, duplicates),
                docs_dir,
                suppressed=suppressed,
            )
        else:
            written = summaries.total("rows")
            report.checks.append(
                CheckResult(
                    "row_count_parity",
                    written == ctx.rows_in,
                    observed=written - suppressed,
                    threshold=ctx.rows_in - suppressed,
                    details={"suppressed": suppressed},
                )
            )
            if key_proof is not None:
                n = int(duplicates.get(key_proof, np.zeros(0)).sum())
                report.checks.extend(
                    token_results(key_proof, n, 0, proof="source keys are distinct")
                )
        merged_seconds = time.perf_counter() - t
        row_checks = row_check_results(ctx, summaries, merged_seconds)
        report.checks.extend(row_checks)
        report.checks.extend(token_pair_results(ctx, summaries))
        report.checks.extend(rederived_results(ctx, summaries))
        text_columns = rescan_columns(ctx)
        if words_to_search(summaries):
            report.checks.extend(raw_values_in_text(conn, ctx, text_columns))
        else:
            hiding = [c.name for c in ctx.columns if c.hides_raw and c.name not in text_columns]
            if hiding:
                report.checks.extend(
                    CheckResult(
                        "no_raw_value_in_text",
                        True,
                        observed=0,
                        threshold=0,
                        column=name,
                        details={
                            "searched": hiding,
                            "proof": "no word of the text outputs could be a raw value",
                        },
                    )
                    for name in text_columns
                )
        step("rows against the snapshot, tokens re-derived, raw values in text")

        if ctx.canaries or ctx.policy.validation.canaries:
            report.checks.append(canary_result(summaries, ctx.canaries))
        report.checks.append(rescan_result(ctx, summaries, suppressed))
        step("canaries and residual-PII rescan")

        formats_passed: set[str] = set()
        if gx is not None:
            gx_checks, docs = gx.result()
            report.checks.extend(gx_checks)
            report.data_docs = docs
            formats_passed = _columns_passing(gx_checks, "format")
            if key_proof is not None:
                report.checks.extend(_key_token_results(key_proof, gx_checks))
            step("Great Expectations suite")
        report.checks.extend(
            no_raw_value_survives(conn, ctx, formats_passed, proofs=format_proofs(summaries))
        )
        step("no raw value survives")
    finally:
        pool.shutdown(wait=True)
        conn.execute("RESET enable_nestloop")
        conn.execute("RESET work_mem")
        report.metrics["seconds"] = round(time.perf_counter() - started, 3)
        report.metrics["seconds_per_check"] = _seconds_per_check(report.checks)
    for c in report.failures:
        log.warning(
            "gate check %s failed%s: observed %s, threshold %s",
            c.name,
            f" on {c.column}" if c.column else "",
            c.observed,
            c.threshold,
        )
    return report


def _published(conn: psycopg.Connection, ctx: GateContext) -> dict[str, list[bytes]] | None:
    """The published version's kept sketches when the run appends to it; they must be
    under the run's hash key (extract gave the run that key)."""
    if ctx.appends_to is None:
        return None
    kept = read_published_sketches(conn, ctx.policy.dataset)
    if kept is None:
        raise MalformedSummary("the published version's gate sketches are missing")
    if kept[0] != sketch_key(conn, ctx.tables):
        raise MalformedSummary("the published version's gate sketches have another hash key")
    return kept[1]


def _unique_key_column(ctx: GateContext) -> str | None:
    """The source key when a deterministic operator transforms it. Extract stops on NULL or
    duplicate keys, so its originals are distinct: its tokens are joinable by construction
    and unique exactly when GX's uniqueness expectation on the column holds."""
    key = ctx.policy.source.key
    return key if any(c.name == key for c in value_determined(ctx)) else None


def _key_token_results(key: str, gx_checks: list[CheckResult]) -> list[CheckResult]:
    unique = next((c for c in gx_checks if c.name == "unique" and c.column == key), None)
    if unique is None:  # GX did not answer: nothing is proven
        return token_results(key, -1, -1, error="no uniqueness result")
    duplicates = int(unique.observed) if isinstance(unique.observed, int) else -1
    return token_results(
        key,
        duplicates if unique.passed else max(duplicates, 1),
        0,
        proof="source keys are distinct; output uniqueness from the 'unique' expectation",
    )


def _columns_passing(checks: list[CheckResult], name: str) -> set[str]:
    """Columns where every check called ``name`` passed."""
    columns = {c.column for c in checks if c.name == name and c.column}
    failed = {c.column for c in checks if c.name == name and not c.passed}
    return {c for c in columns - failed if c is not None}


def _seconds_per_check(checks: list[CheckResult]) -> dict[str, float]:
    out: dict[str, float] = {}
    for c in checks:
        out[c.name] = round(out.get(c.name, 0.0) + c.seconds, 3)
    return out
