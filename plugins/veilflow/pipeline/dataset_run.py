"""Run a dataset of several tables in this process: the same functions the dataset's DAG
tasks call, in the DAG's order (ADR 0023)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from veilflow.errors import DatabaseUnavailable, VeilflowError
from veilflow.pipeline.dataset import (
    check_foreign_keys,
    extract_table,
    fail_dataset,
    publish_dataset,
    transform_table_chunk,
    validate_table,
)
from veilflow.pipeline.keys import default_key_provider
from veilflow.pipeline.runner import new_run_id
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


def run_dataset(
    ds: DatasetPolicy,
    run_id: str | None = None,
    keys: KeyProvider | None = None,
    progress: Callable[[str], None] | None = None,
) -> DatasetSummary:
    """extract every table (parents first) → transform each table's chunks → each table's
    gate → the foreign-key check → one publish of every table. On any failure every table's
    candidate is quarantined, the runs recorded as failed, and the error re-raised."""
    run_id = run_id or new_run_id()
    keys = keys or default_key_provider()
    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    rows_in: dict[str, int] = {}
    try:
        extracted = {}
        for table in ds.order:
            extracted[table] = extract_table(ds, table, run_id, keys)
            rows_in[table] = extracted[table].rows_in
            say(f"{table}: extracted {rows_in[table]:,} rows")
        for table in ds.order:
            for chunk in extracted[table].chunks:
                transform_table_chunk(ds, table, run_id, chunk, keys)
            say(f"{table}: {len(extracted[table].chunks)} chunk(s) transformed")
        for table in ds.order:
            report = validate_table(ds, table, run_id, keys, progress=say)
            say(f"{table}: gate passed ({len(report.checks)} checks)")
        counts = check_foreign_keys(ds, run_id)
        for c in counts:
            say(f"foreign key {c.describe()}")
        published = publish_dataset(ds, run_id)
    except BaseException as exc:
        if isinstance(exc, DatabaseUnavailable):
            raise
        fail_dataset(ds, run_id, str(exc) if isinstance(exc, VeilflowError) else type(exc).__name__)
        raise
    return DatasetSummary(
        run_id=run_id,
        dataset=ds.dataset,
        rows_in=rows_in,
        rows_published=published.rows,
        foreign_keys=counts,
        seconds=time.perf_counter() - t0,
    )
