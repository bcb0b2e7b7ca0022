"""The extract stage: check the source against the policy, snapshot it (or, for an
incremental policy, the rows past the published cursor), plant canaries, prepare the
candidate and cut the snapshot into chunks. It records the run and its first manifest."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

from psycopg import sql

from veilflow.lineage.events import ParentRun
from veilflow.pipeline.erased import LeaveOut, leave_out_erased
from veilflow.pipeline.manifest import column_entries
from veilflow.pipeline.plan import plan_policy
from veilflow.pipeline.source_checks import check_keys, check_schema, scan_source
from veilflow.pipeline.stage_context import StageContext
from veilflow.policy.model import Policy
from veilflow.transform.keys import KeyProvider
from veilflow.zones import runs
from veilflow.zones.db import connect
from veilflow.zones.manifest import (
    PolicyRef,
    RunManifest,
    SourceColumnEntry,
    SourceRef,
    TargetRef,
)
from veilflow.zones.run_tables import (
    RunTables,
    create_candidate,
    create_sketches,
    create_snapshot,
    drop_run_tables,
    index_snapshot,
    source_columns,
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


def extract(
    policy: Policy,
    run_id: str,
    keys: KeyProvider,
    parent: ParentRun | None = None,
    *,
    full: bool = False,
    subset: sql.Composable | None = None,
    leave_out: LeaveOut | None = None,
) -> ExtractResult:
    """Check the source against the policy, snapshot it, plant canaries, cut key ranges.
    An incremental policy's run takes only the rows past the published cursor (ADR 0017)
    unless ``full``; with none, the run ends here, up to date. ``subset``: a predicate on
    the source's rows, the only ones taken (a dataset's subset, ADR 0023); ``leave_out``:
    how erased subjects leave the snapshot, when not by the table's own key (a dataset's
    tables, ADR 0023)."""
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
        runs.start_run(conn, manifest, policy.hash)
        conn.commit()
        stage = StageContext(conn, policy, run_id, "extract", parent)
        stage.emit("START", manifest)
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
        if leave_out is None:
            rows, left_out = leave_out_erased(conn, policy, rt, keys, rows)
        else:
            rows, left_out = leave_out(conn, rt, rows)
        if left_out:
            manifest = manifest.but(erased_left_out=left_out)
        if taking is not None and rows == 0 and taking.mode == "append":
            return _up_to_date(stage, manifest)
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
        runs.save_manifest(conn, run_id, manifest, rows_in=rows)
        conn.commit()
        stage.emit("COMPLETE", manifest)
    log.info(
        "extract %s run %s: %d rows (+%d canaries) in %d chunk(s)",
        policy.dataset,
        run_id,
        rows,
        canaries,
        len(chunks),
    )
    return ExtractResult(run_id, rows, canaries, chunks)


def _up_to_date(stage: StageContext, manifest: RunManifest) -> ExtractResult:
    """No source row past the cursor: the run is done, the published version stands."""
    conn, run_id = stage.conn, stage.run_id
    inc = manifest.incremental or {}
    manifest = manifest.but(
        rows_in=0, canaries=0, chunks=0, rows_out=0, up_to_date=True, finished=time.time()
    )
    runs.save_manifest(
        conn, run_id, manifest, status="published", rows_in=0, rows_out=0, finished_at=True
    )
    conn.commit()
    drop_run_tables(conn, stage.tables)
    stage.emit("COMPLETE", manifest)
    stage.audit("ok", 0, status="up to date", cursor=inc["cursor"])
    log.info(
        "extract %s run %s: no new rows past %s %s; the published version stands",
        stage.policy.dataset,
        run_id,
        inc["cursor"],
        inc["to"],
    )
    return ExtractResult(run_id, 0, 0, [])
