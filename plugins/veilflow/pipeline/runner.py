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
    workers: int,
    preload: threading.Thread | None = None,
) -> Iterator[ChunkResult]:
    """Transform every chunk, in ``workers`` forked processes when there is more than one
    chunk and more than one worker (chunks are independent key ranges)."""
    if workers <= 1 or len(chunks) <= 1:
        for chunk in chunks:
            yield transform_chunk(policy, run_id, chunk, keys)
        return
    if preload is not None:
        # No thread may be importing when the workers fork: a child would inherit the
        # import lock held by a thread it does not have.
        preload.join()
    _WORKER_STATE.update(policy=policy, run_id=run_id, keys=keys)
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=min(workers, len(chunks)), mp_context=ctx) as pool:
        yield from pool.map(_transform_in_worker, chunks)


def _preload_gate() -> threading.Thread:
    """Import Great Expectations (seconds of pure import) in a background thread while
    extract waits on PostgreSQL, so the gate does not pay for it."""
    from veilflow.validate.gx_suite import preload

    thread = threading.Thread(target=preload, name="veilflow-gx-import", daemon=True)
    thread.start()
    return thread


def run_policy(
    policy: Policy,
    run_id: str | None = None,
    keys: KeyProvider | None = None,
    progress: Callable[[str], None] | None = None,
    workers: int | None = None,
) -> RunSummary:
    """extract → transform every chunk → validate → publish; on any failure the candidate
    is quarantined, the run recorded as failed and the error re-raised. ``workers``
    processes transform chunks in parallel (default: one per CPU)."""
    run_id = run_id or new_run_id()
    keys = keys or default_key_provider()
    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    stage_seconds: dict[str, float] = {}

    def lap(stage: str, since: float) -> float:
        now = time.perf_counter()
        stage_seconds[stage] = round(now - since, 3)
        return now

    try:
        preload = _preload_gate()
        ex = extract(policy, run_id, keys)
        t = lap("extract", t0)
        say(f"extracted {ex.rows_in:,} rows into {len(ex.chunks)} chunk(s)")
        done = 0
        n = workers if workers is not None else (os.cpu_count() or 1)
        for i, res in enumerate(
            _transform_all(policy, run_id, ex.chunks, keys, n, preload), start=1
        ):
            done += res.rows
            say(f"chunk {i}/{len(ex.chunks)}: {done:,} rows transformed")
        t = lap("transform", t)
        report = validate(policy, run_id, keys=keys)
        t = lap("validate", t)
        say(f"gate passed ({len(report.checks)} checks)")
        pub = publish(policy, run_id)
        lap("publish", t)
    except DatabaseUnavailable:
        raise  # nothing can be recorded or quarantined without the database
    except VeilflowError as exc:
        fail_run(policy, run_id, str(exc))
        raise
    except BaseException as exc:
        fail_run(policy, run_id, f"{type(exc).__name__}")
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
