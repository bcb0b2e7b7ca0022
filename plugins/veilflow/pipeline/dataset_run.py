"""Run a dataset of several tables in this process: the same functions the dataset's DAG
tasks call, in the DAG's order (ADR 0023)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from veilflow.pipeline.dataset import (
    check_foreign_keys,
    extract_table,
    fail_dataset,
    publish_dataset,
    transform_table_chunk,
    validate_table,
)
from veilflow.pipeline.keys import default_key_provider
from veilflow.pipeline.runner import fork_pool, new_run_id, preload_gate, stop_and_fail
from veilflow.pipeline.stages import ChunkRef, ChunkResult, ExtractResult
from veilflow.policy.dataset import DatasetPolicy
from veilflow.transform.keys import KeyProvider
from veilflow.validate.foreign_keys import ForeignKeyCount


@dataclass(frozen=True)
class DatasetSummary:
    run_id: str
    dataset: str
    #: Source rows taken, by table.
    rows_in: dict[str, int]
    #: Rows published, by table.
    rows_published: dict[str, int]
    foreign_keys: list[ForeignKeyCount]
    seconds: float


#: What forked chunk workers inherit (set just before the pool forks).
_WORKER_STATE: dict[str, Any] = {}


def _transform_in_worker(job: tuple[str, ChunkRef]) -> ChunkResult:
    table, chunk = job
    return transform_table_chunk(
        _WORKER_STATE["ds"], table, _WORKER_STATE["run_id"], chunk, _WORKER_STATE["keys"]
    )


def _transform_all(
    ds: DatasetPolicy,
    run_id: str,
    extracted: dict[str, ExtractResult],
    keys: KeyProvider,
    pool: ProcessPoolExecutor | None,
) -> Iterator[ChunkResult]:
    """Every chunk of every table: the tables are independent (a token depends on its key,
    not on another table's output), so their chunks share the forked ``pool``."""
    jobs = [(t, c) for t in ds.order for c in extracted[t].chunks]
    if pool is None or len(jobs) <= 1:
        for table, chunk in jobs:
            yield transform_table_chunk(ds, table, run_id, chunk, keys)
        return
    yield from pool.map(_transform_in_worker, jobs)


def _fork_workers(
    ds: DatasetPolicy, run_id: str, keys: KeyProvider, workers: int
) -> ProcessPoolExecutor:
    """``workers`` chunk workers, forked now, before any other thread of this process runs
    (as ``run_policy`` forks them; a fork pool starts every worker at its first task)."""
    from veilflow.validate.rescan import warm_scanner

    for policy in ds.table_policies().values():
        warm_scanner(policy)  # built once here, inherited by every forked worker
    _WORKER_STATE.update(ds=ds, run_id=run_id, keys=keys)
    return fork_pool(workers)


def run_dataset(
    ds: DatasetPolicy,
    run_id: str | None = None,
    keys: KeyProvider | None = None,
    progress: Callable[[str], None] | None = None,
    workers: int | None = None,
) -> DatasetSummary:
    """extract every table (parents first) → transform the chunks of every table, in
    ``workers`` processes (default: one per CPU) → each table's gate → the foreign-key
    check → one publish of every table. On any failure the workers are stopped, every
    table's candidate is quarantined, the runs recorded as failed, and the error
    re-raised."""
    run_id = run_id or new_run_id()
    keys = keys or default_key_provider()
    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    rows_in: dict[str, int] = {}
    n = workers if workers is not None else (os.cpu_count() or 1)
    pool = _fork_workers(ds, run_id, keys, n) if n > 1 else None
    preload_gate()  # as run_policy does
    try:
        extracted: dict[str, ExtractResult] = {}
        for table in ds.order:
            extracted[table] = extract_table(ds, table, run_id, keys)
            rows_in[table] = extracted[table].rows_in
            say(f"{table}: extracted {rows_in[table]:,} rows")
        done = sum(1 for _ in _transform_all(ds, run_id, extracted, keys, pool))
        say(f"{done} chunk(s) of {len(ds.order)} tables transformed")
        if pool is not None:
            pool.shutdown()
            pool = None
        for table in ds.order:
            report = validate_table(ds, table, run_id, keys, progress=say)
            say(f"{table}: gate passed ({len(report.checks)} checks)")
        counts = check_foreign_keys(ds, run_id)
        for c in counts:
            say(f"foreign key {c.describe()}")
        published = publish_dataset(ds, run_id)
    except BaseException as exc:
        stop_and_fail(pool, exc, lambda error: fail_dataset(ds, run_id, error))
        raise
    return DatasetSummary(
        run_id=run_id,
        dataset=ds.dataset,
        rows_in=rows_in,
        rows_published=published.rows,
        foreign_keys=counts,
        seconds=time.perf_counter() - t0,
    )
