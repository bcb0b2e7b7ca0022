"""The stages of a dataset of several tables (ADR 0023): each table is extracted, transformed
and gated by the single-table stages as a policy of its own (``DatasetPolicy.table_policy``),
under one key scope; the dataset adds what spans its tables:

- extract in dependency order, a ``subset:`` following the foreign keys down, after a check
  that every foreign key the catalog has between the dataset's tables is declared, erased
  subjects left out of every table (``pipeline/erased_dataset.py``);
- the foreign-key check of the gate (``veilflow.validate.foreign_keys``) once every table has
  passed its own gate;
- one publish that swaps every table in one transaction (``veilflow.zones.publish_dataset``),
  leaving out the rows of erased subjects in every table, the child rows by the foreign-key
  token;
- a failure of any table fails them all: every candidate is quarantined, nothing published.

A table's run id is the dataset's run id and the table name (``<run>/<table>``), so each table
keeps its own manifest, chunks and lineage, and the dataset's run is the set of them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from veilflow.errors import PolicyError, ValidationFailed, VeilflowError
from veilflow.lineage.events import ParentRun
from veilflow.pipeline import stages
from veilflow.pipeline.erased_dataset import apply_dataset_erasures, leave_out_erased, rows_left_out
from veilflow.pipeline.manifest import load_manifest, save_manifest
from veilflow.pipeline.stage_context import StageContext, audit_run
from veilflow.policy.dataset import DatasetPolicy
from veilflow.transform.keys import KeyProvider
from veilflow.validate.foreign_keys import ForeignKeyCount, count_orphans
from veilflow.validate.report import GateReport
from veilflow.vault.erasure import erased_tokens
from veilflow.zones import runs
from veilflow.zones.catalog import foreign_keys_of
from veilflow.zones.db import connect
from veilflow.zones.manifest import GateCheck, GateSummary
from veilflow.zones.publish import ROLE_NAMES, LeaveOut
from veilflow.zones.publish_dataset import TableVersion, candidate_rows, publish_versions
from veilflow.zones.run_tables import RunTables, drop_run_tables, table_exists

log = logging.getLogger(__name__)

#: 2^32: a subset's fraction is drawn on the first 32 bits of the key's MD5.
_HASH_RANGE = 1 << 32


def table_run_id(run_id: str, table: str) -> str:
    """The run id of one table's part of the dataset run ``run_id``."""
    return f"{run_id}/{table}"


def table_tables(ds: DatasetPolicy, run_id: str, table: str) -> RunTables:
    return RunTables(ds.table_dataset(table), table_run_id(run_id, table))


def table_stage(
    conn: psycopg.Connection,
    ds: DatasetPolicy,
    run_id: str,
    table: str,
    stage: str,
    parent: ParentRun | None = None,
) -> StageContext:
    """One table's part of a stage of the dataset run, as a single-table stage sees it."""
    return StageContext(conn, ds.table_policy(table), table_run_id(run_id, table), stage, parent)


# --------------------------------------------------------------------------- subset
def _source(ds: DatasetPolicy, table: str) -> sql.Identifier:
    src = ds.tables[table].source
    return sql.Identifier(src.schema_name, src.table_name)


def _subset_rows(ds: DatasetPolicy, table: str) -> sql.Composable | None:
    """The predicate on ``table``'s source rows that the dataset's subset keeps, or None for
    all of them: on the subset's table, the fraction or predicate; below it, the rows whose
    foreign keys refer to kept rows of their parents."""
    subset = ds.subset
    if subset is None or table not in ds.below(subset.table):
        return None
    spec = ds.tables[table]
    if table == subset.table:
        if subset.where is not None:
            # Reviewed policy text, one predicate (no statement separator, no comment).
            return sql.SQL("({})").format(sql.SQL(subset.where))
        assert subset.fraction is not None
        return sql.SQL("('x' || substr(md5({key}::text), 1, 8))::bit(32)::bigint < {limit}").format(
            key=sql.Identifier(spec.source.key),
            limit=sql.Literal(int(subset.fraction * _HASH_RANGE)),
        )
    parts: list[sql.Composable] = []
    for column, parent in spec.foreign_keys.items():
        kept = _subset_rows(ds, parent)
        if kept is None:
            continue
        parts.append(
            sql.SQL("{fk} IN (SELECT {pk} FROM {src} WHERE {kept})").format(
                fk=sql.Identifier(column),
                pk=sql.Identifier(ds.tables[parent].source.key),
                src=_source(ds, parent),
                kept=kept,
            )
        )
    return sql.SQL(" AND ").join(parts) if parts else None


# --------------------------------------------------------------------------- stages
def _references(ds: DatasetPolicy, table: str) -> dict[str, dict[str, str]]:
    """Each foreign-key column of ``table`` and the source column whose token it shares."""
    spec = ds.tables[table]
    return {
        column: {
            "table": ds.tables[parent].source.table,
            "column": ds.tables[parent].source.key,
            "dataset_table": parent,
        }
        for column, parent in spec.foreign_keys.items()
    }


def check_catalog_keys(conn: psycopg.Connection, ds: DatasetPolicy, table: str) -> None:
    """Stop on a foreign key the catalog has between two tables of the dataset that the
    policy does not declare: its column would be tokenized apart from the key it refers
    to (or not at all), and the join would not survive."""
    spec = ds.tables[table]
    by_source = {ds.tables[t].source.table: t for t in ds.tables}
    for fk in foreign_keys_of(conn, spec.source.schema_name, spec.source.table_name):
        parent = by_source.get(fk.ref_table)
        if parent is None or spec.foreign_keys.get(fk.column) == parent:
            continue
        raise PolicyError(
            f"the catalog has the foreign key {fk.table}.{fk.column} -> "
            f"{fk.ref_table}.{fk.ref_column}, a table of this dataset; declare it "
            f"(foreign_keys: {{{fk.column}: {parent}}}) so both get one token",
            file=ds.file,
            line=ds.line_of("tables", table, "foreign_keys") or ds.line_of("tables", table),
            field=f"tables.{table}.foreign_keys",
        )


def extract_table(
    ds: DatasetPolicy,
    table: str,
    run_id: str,
    keys: KeyProvider,
    parent: ParentRun | None = None,
) -> stages.ExtractResult:
    """Extract one table of the dataset (its parents first, as the DAG orders them): the
    single-table extract, with the subset's rows only, and the manifest told which dataset
    run the table belongs to and which foreign keys it has (lineage shows them)."""
    policy = ds.table_policy(table)
    trun = table_run_id(run_id, table)
    with connect() as conn:
        check_catalog_keys(conn, ds, table)
    result = stages.extract(
        policy,
        trun,
        keys,
        parent=parent,
        subset=_subset_rows(ds, table),
        leave_out=leave_out_erased(ds, table, keys),
    )
    refs = _references(ds, table)
    with connect() as conn:
        manifest = load_manifest(conn, trun)
        manifest = manifest.but(
            dataset_run={
                "dataset": ds.dataset,
                "run_id": run_id,
                "table": table,
                "policy_hash": ds.hash,
                "subset": ds.subset.model_dump(mode="json") if ds.subset else None,
            },
            columns=tuple(
                e.but(references=refs[e.name]) if e.name in refs else e for e in manifest.columns
            ),
        )
        save_manifest(conn, trun, manifest)
        conn.commit()
    return result


def transform_table_chunk(
    ds: DatasetPolicy,
    table: str,
    run_id: str,
    chunk: stages.ChunkRef,
    keys: KeyProvider,
    parent: ParentRun | None = None,
) -> stages.ChunkResult:
    return stages.transform_chunk(
        ds.table_policy(table), table_run_id(run_id, table), chunk, keys, parent=parent
    )


def validate_table(
    ds: DatasetPolicy,
    table: str,
    run_id: str,
    keys: KeyProvider,
    parent: ParentRun | None = None,
    progress: Any = None,
) -> GateReport:
    """The table's own gate; a refusal quarantines the table (the dataset's other tables
    are failed by ``fail_dataset``)."""
    return stages.validate(
        ds.table_policy(table),
        table_run_id(run_id, table),
        parent=parent,
        keys=keys,
        progress=progress,
    )


def check_foreign_keys(ds: DatasetPolicy, run_id: str) -> list[ForeignKeyCount]:
    """The dataset's part of the gate, once every table has passed its own: orphans of
    every foreign key counted in the snapshots and the candidates. Recorded in every
    table's manifest; a new orphan refuses the whole dataset (every candidate
    quarantined) with ``ValidationFailed``."""
    counts: list[ForeignKeyCount] = []
    with connect() as conn:
        for child in ds.order:
            crt = table_tables(ds, run_id, child)
            for column, parent in ds.tables[child].foreign_keys.items():
                prt = table_tables(ds, run_id, parent)
                key = ds.tables[parent].source.key
                _, source_orphans = count_orphans(conn, crt.snapshot, column, prt.snapshot, key)
                rows, orphans = count_orphans(conn, crt.candidate, column, prt.candidate, key)
                counts.append(
                    ForeignKeyCount(child, column, parent, key, rows, source_orphans, orphans)
                )
        passed = all(c.passed for c in counts)
        for table in ds.order:
            trun = table_run_id(run_id, table)
            manifest = load_manifest(conn, trun)
            mine = [c for c in counts if table in (c.child, c.parent)]
            gate = manifest.gate or GateSummary(passed=True, checks=())
            checks = (
                *[c for c in gate.checks if c.name != "foreign_key_orphans"],
                *[
                    GateCheck.model_validate(c.check().to_dict())
                    for c in counts
                    if c.child == table
                ],
            )
            manifest = manifest.but(
                foreign_keys={"passed": passed, "checks": [c.to_dict() for c in mine]},
                gate=gate.but(checks=checks, passed=gate.passed and passed),
            )
            save_manifest(conn, trun, manifest)
        conn.commit()
    for c in counts:
        log.info("foreign key %s", c.describe())
    if not passed:
        failed = [c for c in counts if not c.passed]
        reasons = [{"check": "foreign_key_orphans", **c.to_dict()} for c in failed]
        refuse_dataset(ds, run_id, reasons)
        raise ValidationFailed(
            f"{ds.dataset} run {run_id}: the gate refused the dataset: "
            + "; ".join(c.describe() for c in failed)
            + "; every table quarantined, the published versions are untouched",
            reasons,
        )
    return counts


def refuse_dataset(ds: DatasetPolicy, run_id: str, reasons: list[dict[str, Any]]) -> None:
    """Quarantine every table's candidate with ``reasons`` and record the runs refused."""
    with connect() as conn:
        for table in ds.order:
            stage = table_stage(conn, ds, run_id, table, "quarantine")
            stage.quarantine(
                runs.load_manifest(conn, stage.run_id),
                reasons,
                status="quarantined",
                error="the gate refused the dataset",
                event_type="COMPLETE",
                audit=None,
            )
        _audit(
            conn,
            ds,
            run_id,
            "error",
            None,
            status="quarantined",
            failed_checks=sorted({str(r["check"]) for r in reasons}),
        )


def fail_dataset(
    ds: DatasetPolicy, run_id: str, error: str, parent: ParentRun | None = None
) -> None:
    """Finish a failed dataset run: every table's run is failed and its candidate
    quarantined (a table already finished is left as it is). Never raises for a database
    that is down."""
    for table in ds.order:
        stages.fail_run(ds.table_policy(table), table_run_id(run_id, table), error, parent)


# --------------------------------------------------------------------------- publish
@dataclass(frozen=True)
class DatasetPublished:
    run_id: str
    #: Rows published, by table of the dataset.
    rows: dict[str, int]
    #: Rows of erased subjects left out, by table (at extract, and at publish).
    left_out: dict[str, int]


def _leave_out(
    conn: psycopg.Connection, ds: DatasetPolicy, run_id: str
) -> dict[str, list[LeaveOut]]:
    """What each table leaves out for the dataset's erasure requests: the subject table the
    erased keys' tokens, each table below it the rows whose foreign key refers to a row left
    out of its parent (by that row's key token)."""
    erased = erased_tokens(conn, ds.dataset)
    out: dict[str, list[LeaveOut]] = {t: [] for t in ds.order}
    if not erased:
        return out
    gone: dict[str, list[str]] = {ds.subject_table: erased}
    out[ds.subject_table].append((ds.tables[ds.subject_table].source.key, erased))
    for table in ds.below(ds.subject_table)[1:]:
        spec = ds.tables[table]
        found: set[str] = set()
        for column, parent in spec.foreign_keys.items():
            if gone.get(parent):
                out[table].append((column, gone[parent]))
                rows = conn.execute(
                    sql.SQL("SELECT {k}::text FROM {c} WHERE {fk} = ANY(%s)").format(
                        k=sql.Identifier(spec.source.key),
                        c=table_tables(ds, run_id, table).candidate,
                        fk=sql.Identifier(column),
                    ),
                    (gone[parent],),
                ).fetchall()
                found.update(str(r[0]) for r in rows)
        gone[table] = sorted(found)
    return out


def publish_dataset(
    ds: DatasetPolicy, run_id: str, parent: ParentRun | None = None
) -> DatasetPublished:
    """Swap every table's candidate into the anonymized zone in one transaction: consumers
    see every table's old version or every table's new one; a failure in any table
    publishes none. Requires each table's gate and the foreign-key check to have passed."""
    readers = [ROLE_NAMES[r] for r, zones in ds.access.items() if "anonymized" in zones]
    with connect() as conn:
        manifests = {t: load_manifest(conn, table_run_id(run_id, t)) for t in ds.order}
        for table, manifest in manifests.items():
            checked = manifest.foreign_keys or {}
            if not manifest.passed_gate or not checked.get("passed"):
                raise ValidationFailed(
                    f"{ds.dataset} run {run_id}: table {table} has not passed the gate and "
                    "the foreign-key check; nothing published"
                )
        run_ids = [table_run_id(run_id, t) for t in ds.order]
        if set(runs.statuses(conn, run_ids).values()) == {"published"}:
            # Published by an earlier attempt of this task, which may have stopped before
            # it dropped the run tables.
            for table in ds.order:
                drop_run_tables(conn, table_tables(ds, run_id, table))
            conn.commit()
            return DatasetPublished(
                run_id,
                {t: m.rows_out or 0 for t, m in manifests.items()},
                {t: rows_left_out(m) for t, m in manifests.items()},
            )
        for table in ds.order:
            rt = table_tables(ds, run_id, table)
            if not table_exists(conn, "staging", rt.candidate_name):
                raise VeilflowError(f"run {rt.run_id} has no candidate to publish")
        for table in ds.order:
            table_stage(conn, ds, run_id, table, "publish", parent).emit("START", manifests[table])
        leave_out = _leave_out(conn, ds, run_id)
        before = {t: candidate_rows(conn, table_tables(ds, run_id, t)) for t in ds.order}
        conn.commit()
        versions = [
            TableVersion(
                tables=table_tables(ds, run_id, table),
                target=ds.tables[table].target.table,
                columns=[c.name for c in manifests[table].outputs],
                leave_out=leave_out[table],
            )
            for table in ds.order
        ]
        with conn.transaction():
            by_target = publish_versions(conn, versions, readers)
            published = {t: by_target[v.target] for t, v in zip(ds.order, versions, strict=True)}
            for table, version in zip(ds.order, versions, strict=True):
                manifest = manifests[table] = manifests[table].but(
                    rows_out=published[table],
                    published=version.target,
                    finished=time.time(),
                    erased_rows_left_out=before[table] - published[table],
                )
                save_manifest(
                    conn,
                    table_run_id(run_id, table),
                    manifest,
                    status="published",
                    rows_out=published[table],
                    finished_at=True,
                )
        for table in ds.order:
            stage = table_stage(conn, ds, run_id, table, "publish", parent)
            drop_run_tables(conn, stage.tables)
            conn.commit()
            stage.emit("COMPLETE", manifests[table])
        _audit(
            conn,
            ds,
            run_id,
            "ok",
            sum(published.values()),
            status="published",
            tables={ds.tables[t].target.table: n for t, n in published.items()},
        )
    log.info(
        "published %s: %s (run %s)",
        ds.dataset,
        ", ".join(f"{ds.tables[t].target.table} {n} rows" for t, n in published.items()),
        run_id,
    )
    with connect(autocommit=True) as conn:
        for report in apply_dataset_erasures(conn, ds):
            log.info("erasure request %d applied: %d row(s) removed", report.request, report.total)
    return DatasetPublished(
        run_id,
        published,
        {t: rows_left_out(manifests[t]) for t in ds.order},
    )


def _audit(
    conn: psycopg.Connection,
    ds: DatasetPolicy,
    run_id: str,
    outcome: str,
    count: int | None,
    **details: Any,
) -> None:
    """Record a dataset run's outcome in the audit log, once for all its tables."""
    audit_run(
        conn,
        target=ds.dataset,
        dataset=ds.dataset,
        policy_hash=ds.hash,
        run_id=run_id,
        outcome=outcome,
        count=count,
        **details,
    )
