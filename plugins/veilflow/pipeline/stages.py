"""The stages of a run: extract → transform[chunk] → validate → publish (or quarantine).

Each stage is a plain function that opens its own connection, so each can be one Airflow
task, retried on its own: re-running a stage for the same run gives the same tables.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import pandas as pd
import psycopg
from psycopg import sql

from veilflow.config import settings
from veilflow.errors import (
    PolicyError,
    SchemaDrift,
    SourceError,
    TransformError,
    ValidationFailed,
    VeilflowError,
)
from veilflow.lineage.emitter import emit_stage
from veilflow.lineage.events import ParentRun
from veilflow.pipeline.erased import leave_out_erased
from veilflow.pipeline.manifest import chunk_counters, column_entries, load_manifest, save_manifest
from veilflow.pipeline.plan import Plan, plan_policy
from veilflow.policy.model import Policy
from veilflow.transform.base import STRING, ChunkContext
from veilflow.transform.keys import KeyProvider, parse_key_ref
from veilflow.validate.context import GateColumn, GateContext
from veilflow.validate.gate import run_gate
from veilflow.validate.report import GateReport
from veilflow.vault.erasure import apply as apply_erasures
from veilflow.vault.erasure import erased_tokens
from veilflow.zones.copy_io import read_frame
from veilflow.zones.db import connect
from veilflow.zones.manifest import (
    GateSummary,
    PolicyRef,
    QuarantineEntry,
    RunManifest,
    SourceColumnEntry,
    SourceRef,
    TargetRef,
)
from veilflow.zones.publish import (
    ROLE_NAMES,
    append_version,
    publish_version,
    quarantine_candidate,
)
from veilflow.zones.run_tables import (
    CANARY,
    ROW,
    RunTables,
    SourceColumn,
    count,
    create_candidate,
    create_sketches,
    create_snapshot,
    drop_run_tables,
    index_snapshot,
    keep_published_sketches,
    sketch_key,
    source_columns,
    table_exists,
    write_partition,
    write_sketches,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChunkRef:
    """Rows ``lo <= _vf_row < hi`` of the run's snapshot."""

    index: int
    lo: int
    hi: int


@dataclass(frozen=True)
class ExtractResult:
    run_id: str
    rows_in: int
    canaries: int
    chunks: list[ChunkRef]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ChunkResult:
    index: int
    rows: int
    seconds: float
    counters: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class PublishResult:
    run_id: str
    table: str
    rows: int


def _audit(
    conn: psycopg.Connection,
    policy: Policy,
    run_id: str,
    outcome: str,
    count: int | None,
    **details: Any,
) -> None:
    """Record a run's outcome in the audit log (names and counts only)."""
    from veilflow.vault.audit import record

    try:
        record(
            conn,
            "policy_run",
            target=policy.target.table,
            count=count,
            outcome=outcome,
            details={
                "run_id": run_id,
                "dataset": policy.dataset,
                "policy_hash": policy.hash,
                **details,
            },
        )
    except VeilflowError as exc:
        log.error("could not audit run %s: %s", run_id, exc)


def _readers(policy: Policy) -> list[str]:
    return [ROLE_NAMES[r] for r, zones in policy.access.items() if "anonymized" in zones]


# --------------------------------------------------------------------------- extract
def check_schema(
    policy: Policy, columns: list[SourceColumn], conn: psycopg.Connection | None = None
) -> list[str]:
    """Declared columns the source has; ``SchemaDrift`` on undeclared or missing ones. With
    a connection, the message carries the detection scan's verdict on each new column."""
    names = [c.name for c in columns]
    undeclared = [n for n in names if n not in policy.columns]
    missing = [n for n in policy.columns if n not in names]
    if missing or (undeclared and policy.unlisted == "fail"):
        shown = undeclared if policy.unlisted == "fail" else []
        detail = ""
        if shown and conn is not None:
            from veilflow.detect.columns import drift_detail
            from veilflow.detect.store import sample_table

            try:
                sample = sample_table(conn, policy.source.table, 200)
                detail = drift_detail(sample, shown, policy.detection)
            except Exception as exc:  # the drift itself is the error to report
                log.warning("could not scan the new column(s): %s", type(exc).__name__)
                conn.rollback()
        raise SchemaDrift(policy.source.table, shown, missing, detail)
    if undeclared:
        log.info(
            "dropping %d unlisted column(s) of %s: %s",
            len(undeclared),
            policy.source.table,
            ", ".join(undeclared),
        )
    return [n for n in names if n in policy.columns]


def check_keys(conn: psycopg.Connection, policy: Policy) -> None:
    """Stop on NULL or duplicate source keys: a chunk's rows are found by key order. A key
    column that is NOT NULL with a unique index on it alone is proven by the catalog; any
    other is counted."""
    if key_is_declared_unique(conn, policy):
        return
    src = sql.Identifier(policy.source.schema_name, policy.source.table_name)
    key = sql.Identifier(policy.source.key)
    nulls = count(conn, src, sql.SQL("{} IS NULL").format(key))
    if nulls:
        raise SourceError(
            f"{policy.source.table}: {nulls} row(s) have a NULL key "
            f"{policy.source.key!r}; fix the source or the key"
        )
    row = conn.execute(
        sql.SQL(
            "SELECT count(*), coalesce(sum(n), 0) FROM"
            " (SELECT count(*) AS n FROM {s} GROUP BY {k} HAVING count(*) > 1) d"
        ).format(k=key, s=src)
    ).fetchone()
    if row is not None and row[0]:
        # Counts only: the duplicated keys are the source's values (often personal data),
        # and this message reaches the audit log and task logs.
        raise SourceError(
            f"{policy.source.table}: duplicate key {policy.source.key!r}: {row[0]} key "
            f"value(s) occur more than once ({row[1]} rows); list them with SELECT "
            f"{policy.source.key} FROM {policy.source.table} GROUP BY 1 HAVING count(*) > 1"
        )


def key_is_declared_unique(conn: psycopg.Connection, policy: Policy) -> bool:
    """The source key is NOT NULL and a valid unique index (a primary key or a unique
    constraint) covers exactly that column, without a predicate."""
    row = conn.execute(
        """SELECT a.attnotnull AND EXISTS (
                  SELECT 1 FROM pg_index i
                   WHERE i.indrelid = c.oid AND i.indisunique AND i.indisvalid
                     AND i.indnkeyatts = 1 AND i.indkey[0] = a.attnum AND i.indpred IS NULL)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = c.oid
            WHERE n.nspname = %s AND c.relname = %s AND a.attname = %s AND NOT a.attisdropped""",
        (policy.source.schema_name, policy.source.table_name, policy.source.key),
    ).fetchone()
    return bool(row and row[0])


def scan_source(
    conn: psycopg.Connection, policy: Policy, run_id: str, columns: list[str]
) -> dict[str, Any]:
    """Classify the source's columns on a sample (``detection.sample_size`` rows), store the
    result in ``governance.scan_results`` and return counts per entity per column for the
    manifest (never values). A scan failure is recorded, not fatal: the policy, not the
    scan, decides what is transformed."""
    from veilflow.detect.report import ScanReport
    from veilflow.detect.store import sample_table, store_scan

    try:
        sample = sample_table(conn, policy.source.table, policy.detection.sample_size)
        report = ScanReport.of_frame(
            policy.dataset,
            policy.source.table,
            sample[[c for c in columns if c in sample.columns]],
            policy.detection,
        )
        with conn.transaction():
            store_scan(conn, run_id, policy.dataset, report)
        return {"sampled": len(sample), "entities": report.counts()}
    except Exception as exc:
        conn.rollback()
        log.warning("detection scan of %s failed: %s", policy.source.table, type(exc).__name__)
        return {"error": type(exc).__name__}


def extract(
    policy: Policy,
    run_id: str,
    keys: KeyProvider,
    parent: ParentRun | None = None,
    *,
    full: bool = False,
    subset: sql.Composable | None = None,
) -> ExtractResult:
    """Check the source against the policy, snapshot it, plant canaries, cut key ranges.
    An incremental policy's run takes only the rows past the published cursor (ADR 0017)
    unless ``full``; with none, the run ends here, up to date. ``subset``: a predicate on
    the source's rows, the only ones taken (a dataset's subset, ADR 0023)."""
    from veilflow.pipeline import increment

    plan = plan_policy(policy, keys)
    rt = RunTables(policy.dataset, run_id)
    with connect() as conn:
        cols = source_columns(conn, policy.source.schema_name, policy.source.table_name)
        declared = check_schema(policy, cols, conn)
        check_keys(conn, policy)
        cursor_type = increment.check_cursor(conn, policy) if policy.incremental else None
        by_name = {c.name: c for c in cols}
        manifest = RunManifest(
            run_id=run_id,
            dataset=policy.dataset,
            policy=PolicyRef(file=policy.file, hash=policy.hash, dataset=policy.dataset),
            source=SourceRef(
                table=policy.source.table,
                key=policy.source.key,
                columns=tuple(SourceColumnEntry(**asdict(by_name[n])) for n in declared),
            ),
            target=TargetRef(table=policy.target.table),
            columns=tuple(column_entries(plan, by_name)),
            started=time.time(),
        )
        taking = (
            increment.plan_increment(conn, policy, manifest.columns, cursor_type, full=full)
            if cursor_type is not None
            else None
        )
        if policy.releases and (taking is None or taking.mode != "append"):
            # Refused here, before any work, when the budget cannot pay (an appending run
            # makes no release: full runs do).
            from veilflow.privacy.releases import check_budget

            check_budget(conn, policy, run_id)
        conn.execute(
            "INSERT INTO governance.runs (run_id, dataset, policy_hash, status, manifest)"
            " VALUES (%s, %s, %s, 'running', %s) ON CONFLICT (run_id) DO UPDATE SET"
            " status = 'running', policy_hash = EXCLUDED.policy_hash,"
            " manifest = EXCLUDED.manifest, error = NULL, finished_at = NULL",
            (run_id, policy.dataset, policy.hash, json.dumps(manifest.to_json())),
        )
        conn.execute("DELETE FROM governance.run_chunks WHERE run_id = %s", (run_id,))
        conn.commit()
        emit_stage(
            conn,
            stage="extract",
            event_type="START",
            policy=policy,
            run_id=run_id,
            manifest=manifest,
            parent=parent,
        )
        if taking is None:
            rows = create_snapshot(
                conn,
                rt,
                policy.source.schema_name,
                policy.source.table_name,
                policy.source.key,
                declared,
                subset,
            )
        else:
            rows, taken = increment.take_rows(conn, policy, rt, declared, taking)
            manifest = manifest.but(incremental=taken)
        rows, left_out = leave_out_erased(conn, policy, rt, keys, rows)
        if left_out:
            manifest = manifest.but(erased_left_out=left_out)
        if taking is not None and rows == 0 and taking.mode == "append":
            return _up_to_date(conn, policy, run_id, rt, manifest, parent)
        manifest = manifest.but(detection=scan_source(conn, policy, run_id, declared))
        canaries = 0
        if policy.validation.canaries:
            from veilflow.validate.canaries import plant_canaries

            with conn.transaction():
                canaries = plant_canaries(
                    conn,
                    rt.snapshot,
                    policy,
                    policy.validation.canaries,
                    policy.source.key,
                    first_row=rows + 1,
                )
        index_snapshot(conn, rt)
        outputs = [
            (
                c.name,
                by_name[c.name].type
                if c.operator is None
                else c.operator.output_type(by_name[c.name].type),
            )
            for c in plan.kept
        ]
        create_candidate(conn, rt, outputs)
        from veilflow.validate.sketch import new_key

        # Appending, the run hashes under the published version's key, so its sketches
        # merge with the kept ones.
        create_sketches(conn, rt, (taking.gate_key if taking else None) or new_key())
        total = rows + canaries
        step = policy.chunk_rows
        chunks = [
            ChunkRef(i, 1 + i * step, 1 + min((i + 1) * step, total))
            for i in range(max(1, -(-total // step)))
        ]
        manifest = manifest.but(rows_in=rows, canaries=canaries, chunks=len(chunks))
        save_manifest(conn, run_id, manifest, rows_in=rows)
        conn.commit()
        emit_stage(
            conn,
            stage="extract",
            event_type="COMPLETE",
            policy=policy,
            run_id=run_id,
            manifest=manifest,
            parent=parent,
        )
    log.info(
        "extract %s run %s: %d rows (+%d canaries) in %d chunk(s)",
        policy.dataset,
        run_id,
        rows,
        canaries,
        len(chunks),
    )
    return ExtractResult(run_id, rows, canaries, chunks)


def _up_to_date(
    conn: psycopg.Connection,
    policy: Policy,
    run_id: str,
    rt: RunTables,
    manifest: RunManifest,
    parent: ParentRun | None,
) -> ExtractResult:
    """No source row past the cursor: the run is done, the published version stands."""
    inc = manifest.incremental or {}
    manifest = manifest.but(rows_in=0, canaries=0, chunks=0, rows_out=0, up_to_date=True)
    manifest = manifest.but(finished=time.time())
    save_manifest(
        conn, run_id, manifest, status="published", rows_in=0, rows_out=0, finished_at=True
    )
    conn.commit()
    drop_run_tables(conn, rt)
    emit_stage(
        conn,
        stage="extract",
        event_type="COMPLETE",
        policy=policy,
        run_id=run_id,
        manifest=manifest,
        parent=parent,
    )
    _audit(conn, policy, run_id, "ok", 0, status="up to date", cursor=inc["cursor"])
    log.info(
        "extract %s run %s: no new rows past %s %s; the published version stands",
        policy.dataset,
        run_id,
        inc["cursor"],
        inc["to"],
    )
    return ExtractResult(run_id, 0, 0, [])


# --------------------------------------------------------------------------- transform
def pin_run_keys(keys: KeyProvider, manifest: RunManifest) -> None:
    """Make ``keys`` hand out the key versions extract recorded for this run, so every task
    of a run encrypts alike even when a key is rotated while the run is under way."""
    pin = getattr(keys, "pin", None)
    if pin is None:
        return
    for col in manifest.columns:
        if col.key:
            dataset, purpose, version = parse_key_ref(col.key)
            if version is not None:
                pin(dataset, purpose, version)


def transform_frame(plan: Plan, frame: pd.DataFrame) -> tuple[pd.DataFrame, ChunkContext]:
    """Apply every kept column's operator to a chunk (pure: no I/O)."""
    ctx = ChunkContext(frame=frame, key_column=plan.policy.source.key, row_column=ROW)
    out = pd.DataFrame(index=frame.index)
    for col in plan.kept:
        assert col.operator is not None
        try:
            values = col.operator.apply(frame[col.name], ctx)
        except VeilflowError:
            raise
        except Exception as exc:  # an operator bug must not leak a value through its message
            raise TransformError(
                f"operator {col.action} failed on column {col.name!r}: {type(exc).__name__}"
            ) from None
        if len(values) != len(frame):
            raise TransformError(f"operator {col.action} changed the row count of {col.name!r}")
        out[col.name] = values
    return out, ctx


#: Changes a chunk's outputs (given the raw rows and the outputs, row numbers and canary
#: flags included) before the chunk is checked and written: how tests play a broken operator.
OutputsHook = Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame]


def transform_chunk(
    policy: Policy,
    run_id: str,
    chunk: ChunkRef,
    keys: KeyProvider,
    parent: ParentRun | None = None,
    *,
    outputs_hook: OutputsHook | None = None,
) -> ChunkResult:
    """Transform one key range, run the gate's per-chunk checks on it while it is in memory,
    and write it as one partition of the candidate with its gate summary and sketches, in
    one transaction: a killed task leaves nothing, a retry rewrites the same partition."""
    from veilflow.validate.chunk_gate import check_chunk

    t0 = time.perf_counter()
    rt = RunTables(policy.dataset, run_id)
    names = [ROW, CANARY, *policy.columns]
    with connect() as conn:
        if not table_exists(conn, "staging", rt.snapshot_name):
            raise VeilflowError(f"run {run_id} has no snapshot; run extract first")
        manifest = load_manifest(conn, run_id)
        if manifest.policy.hash != policy.hash:
            raise PolicyError(
                f"the policy changed since run {run_id} started; start a new run", file=policy.file
            )
        pin_run_keys(keys, manifest)
        plan = plan_policy(policy, keys)
        gate_key = sketch_key(conn, rt)
        conn.commit()
        emit_stage(
            conn,
            stage="transform",
            event_type="START",
            policy=policy,
            run_id=run_id,
            manifest=manifest,
            parent=parent,
            chunk=chunk.index,
        )
        present = {c.name for c in source_columns(conn, "staging", rt.snapshot_name)}
        names = [n for n in names if n in present]
        frame = read_frame(
            conn,
            sql.SQL(
                "SELECT {cols} FROM {snap} WHERE {row} >= {lo} AND {row} < {hi} ORDER BY {row}"
            ).format(
                cols=sql.SQL(", ").join(sql.Identifier(n) for n in names),
                snap=rt.snapshot,
                row=sql.Identifier(ROW),
                lo=sql.Literal(chunk.lo),
                hi=sql.Literal(chunk.hi),
            ),
            names,
        )
        out, ctx = transform_frame(plan, frame)
        out[ROW] = frame[ROW]
        out[CANARY] = frame[CANARY].map({"t": "true", "f": "false"}).astype(STRING)
        if outputs_hook is not None:
            out = outputs_hook(frame, out)
        counters = {c: dict(v) for c, v in ctx.counters.items()}
        checked = check_chunk(
            replace(gate_context(policy, run_id, manifest), recompute=recompute_with(plan)),
            chunk.index,
            chunk.lo,
            chunk.hi,
            frame,
            out,
            gate_key,
        )
        with conn.transaction():
            write_partition(conn, rt, chunk.index, chunk.lo, chunk.hi, out)
            conn.execute(
                "INSERT INTO governance.run_chunks (run_id, chunk, rows, counters, summary)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (run_id, chunk) DO UPDATE SET"
                " rows = EXCLUDED.rows, counters = EXCLUDED.counters,"
                " summary = EXCLUDED.summary, finished_at = now()",
                (
                    run_id,
                    chunk.index,
                    len(out),
                    json.dumps(counters),
                    json.dumps(checked.summary.to_json()),
                ),
            )
            write_sketches(conn, rt, chunk.index, checked.sketches)
        emit_stage(
            conn,
            stage="transform",
            event_type="COMPLETE",
            policy=policy,
            run_id=run_id,
            manifest=manifest,
            parent=parent,
            chunk=chunk.index,
        )
    seconds = time.perf_counter() - t0
    log.info(
        "transform %s chunk %d: %d rows in %.2fs (gate checks %.2f CPU-s)",
        policy.dataset,
        chunk.index,
        len(out),
        seconds,
        checked.summary.cpu_seconds,
    )
    return ChunkResult(chunk.index, len(out), seconds, counters)


# --------------------------------------------------------------------------- validate
def recompute_with(plan: Plan) -> Callable[[str, pd.Series], pd.Series]:
    """For the gate's re-derivation check: apply a column's operator again to raw values."""
    ops = {c.name: c.operator for c in plan.kept if c.operator is not None}
    key = plan.policy.source.key

    def recompute(column: str, values: pd.Series) -> pd.Series:
        frame = pd.DataFrame({key: values})
        return ops[column].apply(values, ChunkContext(frame=frame, key_column=key))

    return recompute


def gate_context(policy: Policy, run_id: str, manifest: RunManifest) -> GateContext:
    cols = [
        GateColumn(
            name=c.name,
            action=c.action,
            hides_raw=c.hides_raw,
            source_type=c.source_type or "text",
            output_type=c.output_type or "text",
            not_null=c.not_null,
        )
        for c in manifest.outputs
    ]
    report_dir = (
        settings().home / "reports" / policy.dataset / RunTables(policy.dataset, run_id).tag
    )
    inc = manifest.incremental or {}
    return GateContext(
        policy=policy,
        tables=RunTables(policy.dataset, run_id),
        columns=cols,
        rows_in=manifest.rows_in or 0,
        report_dir=report_dir,
        canaries=manifest.canaries or 0,
        chunks=manifest.chunks or 0,
        appends_to=policy.target.table if inc.get("mode") == "append" else None,
        keeps_published=bool(inc),
    )


def validate(
    policy: Policy,
    run_id: str,
    parent: ParentRun | None = None,
    keys: KeyProvider | None = None,
    progress: Callable[[str], None] | None = None,
) -> GateReport:
    """Run the gate on the candidate. On failure: quarantine, record, ``ValidationFailed``.
    ``keys`` (default: the vault) lets the gate re-derive a sample of tokens; ``progress``
    hears of each group of checks as it ends."""
    if keys is None:
        from veilflow.pipeline.keys import default_key_provider

        keys = default_key_provider()
    with connect() as conn:
        manifest = load_manifest(conn, run_id)
        if manifest.up_to_date:
            return GateReport()
        pin_run_keys(keys, manifest)
        emit_stage(
            conn,
            stage="validate",
            event_type="START",
            policy=policy,
            run_id=run_id,
            manifest=manifest,
            parent=parent,
        )
        done, _, counters = chunk_counters(conn, run_id)
        manifest = manifest.but(counters=counters)
        ctx = replace(
            gate_context(policy, run_id, manifest),
            recompute=recompute_with(plan_policy(policy, keys)),
        )
        if done != manifest.chunks:
            from veilflow.validate.report import CheckResult

            report = GateReport(
                checks=[
                    CheckResult("chunks_complete", False, observed=done, threshold=manifest.chunks)
                ]
            )
        else:
            report = run_gate(conn, ctx, progress)
            from veilflow.privacy.gate import after_gate

            manifest = manifest.but(**after_gate(conn, ctx, manifest, report, run_id, progress))
        conn.commit()
        manifest = manifest.but(gate=GateSummary.model_validate(report.to_dict()))
        save_manifest(conn, run_id, manifest)
        conn.commit()
        emit_stage(
            conn,
            stage="validate",
            event_type="COMPLETE" if report.passed else "FAIL",
            policy=policy,
            run_id=run_id,
            manifest=manifest,
            parent=parent,
            error=None if report.passed else "gate refused the candidate",
        )
        if not report.passed:
            reasons = report.reasons()
            table = quarantine_candidate(conn, ctx.tables, reasons)
            manifest = manifest.but(quarantine=QuarantineEntry(table=table, reasons=tuple(reasons)))
            save_manifest(
                conn,
                run_id,
                manifest,
                status="quarantined",
                finished_at=True,
                error="gate refused the candidate",
            )
            drop_run_tables(conn, ctx.tables)
            conn.commit()
            emit_stage(
                conn,
                stage="quarantine",
                event_type="COMPLETE",
                policy=policy,
                run_id=run_id,
                manifest=manifest,
                parent=parent,
            )
            _audit(
                conn,
                policy,
                run_id,
                "error",
                manifest.rows_in,
                status="quarantined",
                failed_checks=sorted({r["check"] for r in reasons}),
            )
            names = ", ".join(
                sorted({r["check"] + (f"[{r['column']}]" if r["column"] else "") for r in reasons})
            )
            raise ValidationFailed(
                f"{policy.dataset} run {run_id}: the gate refused the candidate ({names}); "
                f"quarantined as {table}, the published version is untouched",
                reasons,
            )
    return report


# --------------------------------------------------------------------------- publish
def publish(policy: Policy, run_id: str, parent: ParentRun | None = None) -> PublishResult:
    """Swap the validated candidate into the anonymized zone; drop the run's staging."""
    rt = RunTables(policy.dataset, run_id)
    with connect() as conn:
        manifest = load_manifest(conn, run_id)
        if manifest.up_to_date:
            return PublishResult(run_id, policy.target.table, 0)
        emit_stage(
            conn,
            stage="publish",
            event_type="START",
            policy=policy,
            run_id=run_id,
            manifest=manifest,
            parent=parent,
        )
        if not manifest.passed_gate:
            raise ValidationFailed(f"run {run_id} has not passed the gate; nothing published")
        if not table_exists(conn, "staging", rt.candidate_name):
            row = conn.execute(
                "SELECT rows FROM governance.published_versions WHERE run_id = %s", (run_id,)
            ).fetchone()
            if row is not None:  # already published by an earlier attempt of this task
                _apply_erasures(policy)
                return PublishResult(run_id, policy.target.table, int(row[0]))
            raise VeilflowError(f"run {run_id} has no candidate to publish")
        appending = (manifest.incremental or {}).get("mode") == "append"
        if policy.releases and not appending:  # DP releases of the raw snapshot, paid for
            from veilflow.privacy.releases import publish_releases

            releases = publish_releases(conn, policy, run_id, rt.snapshot, _readers(policy), rt.tag)
            manifest = manifest.but(releases=releases)
        if policy.synthetic is not None and not appending:
            from veilflow.privacy.synthetic import publish_synthetic

            publish_synthetic(conn, policy, rt, _readers(policy))
        cols = [c.name for c in manifest.outputs]
        inc = manifest.incremental
        # Erased subjects never enter the new version (veilflow.vault.erasure).
        erased = erased_tokens(conn, policy.dataset)
        leave_out = (policy.source.key, erased) if erased else None
        if inc and inc["mode"] == "append":
            rows = append_version(
                conn,
                rt,
                policy.target.schema_name,
                policy.target.table_name,
                cols,
                after_run=inc["appends_to_run"],
                leave_out=leave_out,
            )
        else:
            rows = publish_version(
                conn,
                rt,
                policy.target.schema_name,
                policy.target.table_name,
                cols,
                _readers(policy),
                leave_out=leave_out,
            )
        manifest = manifest.but(erased_subjects_left_out=len(erased))
        if inc:
            from veilflow.zones.increment import record_cursor

            # In the transaction that publishes: the next run starts from what this one
            # published, or, should publishing fail, from what was published before.
            keep_published_sketches(conn, rt, fresh=inc["mode"] != "append")
            record_cursor(conn, policy.dataset, run_id, inc)
        manifest = manifest.but(rows_out=rows, published=policy.target.table, finished=time.time())
        save_manifest(conn, run_id, manifest, status="published", rows_out=rows, finished_at=True)
        conn.commit()
        drop_run_tables(conn, rt)
        conn.commit()
        emit_stage(
            conn,
            stage="publish",
            event_type="COMPLETE",
            policy=policy,
            run_id=run_id,
            manifest=manifest,
            parent=parent,
        )
        _audit(conn, policy, run_id, "ok", rows, status="published")
    log.info("published %s: %d rows (run %s)", policy.target.table, rows, run_id)
    _apply_erasures(policy)
    return PublishResult(run_id, policy.target.table, rows)


def _apply_erasures(policy: Policy) -> None:
    """Purge the quarantined candidates of the subjects whose erasure is pending, and mark
    the requests applied (the new version has left their rows out already)."""
    with connect(autocommit=True) as conn:
        for report in apply_erasures(conn, policy):
            log.info(
                "erasure request %d applied: %d row(s) removed, %d left",
                report.request,
                report.total,
                report.left,
            )


# --------------------------------------------------------------------------- failure
def fail_chunk(
    policy: Policy, run_id: str, chunk: int, error: str, parent: ParentRun | None = None
) -> None:
    """Record that chunk ``chunk`` failed for good: the run becomes failed (the first error
    recorded is kept), its tables stay. Other chunks of the run may still be reading the
    snapshot and writing the candidate; ``fail_run`` quarantines and drops once every chunk
    has stopped (in a DAG, the ``cleanup`` teardown, which waits for all mapped tasks).
    Never raises for a database that is down: the original error is what matters."""
    try:
        with connect() as conn:
            conn.execute(
                "UPDATE governance.runs SET status = 'failed', error = coalesce(error, %s)"
                " WHERE run_id = %s AND status IN ('running', 'failed')",
                (error[:2000], run_id),
            )
            conn.commit()
            emit_stage(
                conn,
                stage="transform",
                event_type="FAIL",
                policy=policy,
                run_id=run_id,
                manifest=load_manifest(conn, run_id),
                parent=parent,
                error=error,
                chunk=chunk,
            )
    except VeilflowError as exc:
        log.error("could not record the failure of run %s chunk %d: %s", run_id, chunk, exc)


def fail_run(policy: Policy, run_id: str, error: str, parent: ParentRun | None = None) -> None:
    """Finish a failed run: record it, quarantine its candidate (if any) and drop its raw
    snapshot. Call it only once no task of the run works on its tables any more. An error a
    chunk recorded (``fail_chunk``) is kept over ``error``; a run already finished is left
    as it is, so a second call records nothing twice. Never raises for a database that is
    down: the original error is what matters."""
    rt = RunTables(policy.dataset, run_id)
    try:
        with connect() as conn:
            row = conn.execute(
                "SELECT status, error, finished_at FROM governance.runs WHERE run_id = %s",
                (run_id,),
            ).fetchone()
            if row is None:  # stopped before extract recorded the run (drift, bad source)
                _audit(conn, policy, run_id, "error", None, status="failed", error=error[:300])
                return
            status, recorded, finished = row
            if status in ("published", "quarantined") or (
                status == "failed" and finished is not None
            ):
                return
            error = recorded or error
            quarantine_candidate(conn, rt, [{"check": "run_failed", "error": error}])
            conn.execute(
                "UPDATE governance.runs SET status = 'failed', error = %s,"
                " finished_at = now() WHERE run_id = %s",
                (error[:2000], run_id),
            )
            conn.commit()
            drop_run_tables(conn, rt)
            conn.commit()
            manifest = load_manifest(conn, run_id)
            emit_stage(
                conn,
                stage="quarantine",
                event_type="FAIL",
                policy=policy,
                run_id=run_id,
                manifest=manifest,
                parent=parent,
                error=error,
            )
            _audit(
                conn,
                policy,
                run_id,
                "error",
                manifest.rows_in,
                status="failed",
                error=error[:300],
            )
    except VeilflowError as exc:
        log.error("could not record the failure of run %s: %s", run_id, exc)
