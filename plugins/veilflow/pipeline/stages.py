"""The stages of a run: extract → transform[chunk] → validate → publish (or quarantine).

Each stage is a plain function that opens its own connection, so each can be one Airflow
task, retried on its own: re-running a stage for the same run gives the same tables. The
transform stage is here; the others have a module each (``extract``, ``validation``,
``publishing``, ``failure``), and this module names them all for the DAG tasks and the
in-process runner. What every stage does around its work (lineage, audit, quarantine) is
``stage_context``; the run's records are ``veilflow.zones.runs``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pandas as pd
from psycopg import sql

from veilflow.errors import PolicyError, TransformError, VeilflowError
from veilflow.lineage.events import ParentRun
from veilflow.pipeline.extract import ChunkRef, ExtractResult, extract
from veilflow.pipeline.failure import fail_chunk, fail_run
from veilflow.pipeline.keys import pin_run_keys
from veilflow.pipeline.plan import Plan, plan_policy
from veilflow.pipeline.publishing import PublishResult, publish
from veilflow.pipeline.source_checks import (
    check_keys,
    check_schema,
    key_is_declared_unique,
    scan_source,
)
from veilflow.pipeline.stage_context import StageContext
from veilflow.pipeline.validation import gate_context, recompute_with, validate
from veilflow.policy.model import Policy
from veilflow.transform.base import STRING, ChunkContext
from veilflow.transform.keys import KeyProvider
from veilflow.zones import runs
from veilflow.zones.copy_io import read_frame
from veilflow.zones.db import connect
from veilflow.zones.run_tables import (
    CANARY,
    ROW,
    RunTables,
    sketch_key,
    source_columns,
    table_exists,
    write_partition,
    write_sketches,
)

__all__ = [
    "ChunkRef",
    "ChunkResult",
    "ExtractResult",
    "OutputsHook",
    "PublishResult",
    "check_keys",
    "check_schema",
    "extract",
    "fail_chunk",
    "fail_run",
    "gate_context",
    "key_is_declared_unique",
    "pin_run_keys",
    "publish",
    "recompute_with",
    "scan_source",
    "transform_chunk",
    "transform_frame",
    "validate",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChunkResult:
    index: int
    rows: int
    seconds: float
    counters: dict[str, dict[str, int]] = field(default_factory=dict)


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
        manifest = runs.load_manifest(conn, run_id)
        if manifest.policy.hash != policy.hash:
            raise PolicyError(
                f"the policy changed since run {run_id} started; start a new run", file=policy.file
            )
        pin_run_keys(keys, manifest)
        plan = plan_policy(policy, keys)
        gate_key = sketch_key(conn, rt)
        conn.commit()
        stage = StageContext(conn, policy, run_id, "transform", parent, chunk.index)
        stage.emit("START", manifest)
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
            runs.record_chunk(
                conn, run_id, chunk.index, len(out), counters, checked.summary.to_json()
            )
            write_sketches(conn, rt, chunk.index, checked.sketches)
        stage.emit("COMPLETE", manifest)
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
