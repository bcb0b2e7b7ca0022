"""Run a policy's stages in this process: the same functions the DAG's tasks call."""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from veilflow.errors import DatabaseUnavailable, VeilflowError
from veilflow.pipeline.keys import default_key_provider
from veilflow.pipeline.stages import (
    ChunkRef,
    ChunkResult,
    extract,
    fail_run,
    publish,
    transform_chunk,
    validate,
)
from veilflow.policy.model import Policy
from veilflow.transform.keys import KeyProvider

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    dataset: str
    rows_in: int
    rows_published: int
    target: str
    seconds: float
    columns: list[tuple[str, str]]
    gate: dict[str, Any]
    #: Wall seconds per stage: extract, transform, validate, publish.
    stage_seconds: dict[str, float]


def new_run_id() -> str:
    return "manual__" + datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


#: What forked chunk workers inherit (set just before the pool forks).
_WORKER_STATE: dict[str, Any] = {}


def _transform_in_worker(chunk: ChunkRef) -> ChunkResult:
    return transform_chunk(
        _WORKER_STATE["policy"], _WORKER_STATE["run_id"], chunk, _WORKER_STATE["keys"]
    )


def _transform_all(
    policy: Policy,
    run_id: str,
    chunks: list[ChunkRef],
    keys: KeyProvider,
    pool: ProcessPoolExecutor | None,
) -> Iterator[ChunkResult]:
    """Transform every chunk: in the forked ``pool`` when there is one and more than one
    chunk (chunks are independent key ranges), else here."""
    if pool is None or len(chunks) <= 1:
        for chunk in chunks:
            yield transform_chunk(policy, run_id, chunk, keys)
        return
    yield from pool.map(_transform_in_worker, chunks)


def _fork_workers(
    policy: Policy, run_id: str, keys: KeyProvider, workers: int
) -> ProcessPoolExecutor:
    """``workers`` chunk workers, forked now, before any other thread of this process runs
    (a child would inherit a lock held by a thread it does not have). A fork pool starts
    all its workers at the first task, so one empty task forks them."""
    _WORKER_STATE.update(policy=policy, run_id=run_id, keys=keys)
    return fork_pool(workers)


def fork_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes forked now (one empty task forks them all), holding
    what this process has built so far; call it before any other thread starts."""
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"))
    pool.submit(int).result()
    return pool


def preload_gate() -> None:
    """Import Great Expectations (seconds of pure import) in a background thread while
    extract waits on PostgreSQL and the workers transform, so the gate does not pay for it.
    Start it early, once the workers have forked (a child would inherit a lock held by a
    thread it does not have): a late preload would race the gate's own import of SQLAlchemy
    (a partially initialized module)."""
    from veilflow.validate.gx_suite import preload

    threading.Thread(target=preload, name="veilflow-gx-import", daemon=True).start()


def stop_and_fail(
    pool: ProcessPoolExecutor | None, exc: BaseException, fail: Callable[[str], None]
) -> None:
    """After a run stopped on ``exc``: the chunk workers stop first (running chunks finish,
    queued ones are cancelled), as they may still read the snapshot and write the
    candidate that ``fail`` quarantines and drops; then ``fail`` records the failure with
    its message, unless the database is what failed (nothing can be recorded or
    quarantined without it)."""
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)
    if not isinstance(exc, DatabaseUnavailable):
        fail(str(exc) if isinstance(exc, VeilflowError) else type(exc).__name__)


def run_policy(
    policy: Policy,
    run_id: str | None = None,
    keys: KeyProvider | None = None,
    progress: Callable[[str], None] | None = None,
    workers: int | None = None,
    *,
    full: bool = False,
) -> RunSummary:
    """extract → transform every chunk → validate → publish; on any failure the chunk
    workers are stopped, then the candidate is quarantined, the run recorded as failed and
    the error re-raised. ``workers`` processes transform chunks in parallel (default: one
    per CPU). ``full``: an incremental policy's run re-anonymizes the whole source."""
    run_id = run_id or new_run_id()
    keys = keys or default_key_provider()
    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    stage_seconds: dict[str, float] = {}

    def lap(stage: str, since: float) -> float:
        now = time.perf_counter()
        stage_seconds[stage] = round(now - since, 3)
        return now

    n = workers if workers is not None else (os.cpu_count() or 1)
    if n > 1:
        from veilflow.validate.rescan import warm_scanner

        warm_scanner(policy)  # built once here, inherited by every forked chunk worker
    pool = _fork_workers(policy, run_id, keys, n) if n > 1 else None
    try:
        preload_gate()
        ex = extract(policy, run_id, keys, full=full)
        t = lap("extract", t0)
        if ex.chunks:
            say(f"extracted {ex.rows_in:,} rows into {len(ex.chunks)} chunk(s)")
        else:
            say("no rows past the cursor: the published version stands")
        done = 0
        for i, res in enumerate(_transform_all(policy, run_id, ex.chunks, keys, pool), start=1):
            done += res.rows
            say(f"chunk {i}/{len(ex.chunks)}: {done:,} rows transformed")
        if pool is not None:
            pool.shutdown()
            pool = None
        t = lap("transform", t)
        report = validate(policy, run_id, keys=keys, progress=say)
        t = lap("validate", t)
        if ex.chunks:
            say(f"gate passed ({len(report.checks)} checks)")
        pub = publish(policy, run_id)
        lap("publish", t)
    except BaseException as exc:
        stop_and_fail(pool, exc, lambda error: fail_run(policy, run_id, error))
        raise
    return RunSummary(
        run_id=run_id,
        dataset=policy.dataset,
        rows_in=ex.rows_in,
        rows_published=pub.rows,
        target=pub.table,
        seconds=time.perf_counter() - t0,
        columns=[(name, spec.action) for name, spec in policy.columns.items()],
        gate=report.to_dict(),
        stage_seconds=stage_seconds,
    )
