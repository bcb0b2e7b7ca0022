"""The run records: every statement on ``governance.runs`` and ``governance.run_chunks``.

A run is recorded at extract (``start_run``), its manifest is saved as stages finish, a
chunk's outcome is one ``run_chunks`` row, and a failed run keeps the first error
recorded. Readers (the CLI, the UI, re-identification, the gate command, the incremental
cursor) ask here, so the tables' columns and statuses are spelt in one module.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from veilflow.errors import VeilflowError
from veilflow.zones.manifest import ColumnEntry, RunManifest

#: The columns ``save_manifest`` may set beside the manifest.
_SETTABLE = ("status", "rows_in", "rows_out", "error", "finished_at")
#: How much of an error message a run record keeps.
ERROR_CHARS = 2000


@dataclass(frozen=True)
class RunRow:
    """One row of ``governance.runs`` but its manifest."""

    run_id: str
    dataset: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    rows_in: int | None
    rows_out: int | None
    error: str | None
    policy_hash: str


@dataclass(frozen=True)
class RunState:
    """Where a run stands, for deciding whether a failure still has to be recorded."""

    status: str
    error: str | None
    finished: bool


_ROW = "run_id, dataset, status, started_at, finished_at, rows_in, rows_out, error, policy_hash"


# ------------------------------------------------------------------------------ writing
def start_run(conn: psycopg.Connection, manifest: RunManifest, policy_hash: str) -> None:
    """Record the run as running with its first manifest; a run id used again starts over
    (its chunks' rows are removed)."""
    conn.execute(
        "INSERT INTO governance.runs (run_id, dataset, policy_hash, status, manifest)"
        " VALUES (%s, %s, %s, 'running', %s) ON CONFLICT (run_id) DO UPDATE SET"
        " status = 'running', policy_hash = EXCLUDED.policy_hash,"
        " manifest = EXCLUDED.manifest, error = NULL, finished_at = NULL",
        (manifest.run_id, manifest.dataset, policy_hash, json.dumps(manifest.to_json())),
    )
    conn.execute("DELETE FROM governance.run_chunks WHERE run_id = %s", (manifest.run_id,))


def save_manifest(
    conn: psycopg.Connection, run_id: str, manifest: RunManifest, **fields: Any
) -> None:
    """Store the manifest, and ``fields`` of the run row (``finished_at=True`` sets now)."""
    sets = ["manifest = %s"]
    params: list[Any] = [json.dumps(manifest.to_json())]
    for name, value in fields.items():
        if name not in _SETTABLE:
            raise ValueError(name)
        if name == "finished_at":
            sets.append("finished_at = now()")
            continue
        sets.append(f"{name} = %s")
        params.append(value)
    params.append(run_id)
    conn.execute(f"UPDATE governance.runs SET {', '.join(sets)} WHERE run_id = %s", params)


def record_chunk(
    conn: psycopg.Connection,
    run_id: str,
    chunk: int,
    rows: int,
    counters: dict[str, dict[str, int]],
    summary: dict[str, Any],
) -> None:
    """A chunk's outcome: rows written, its counters and its gate summary (a retry
    rewrites it)."""
    conn.execute(
        "INSERT INTO governance.run_chunks (run_id, chunk, rows, counters, summary)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (run_id, chunk) DO UPDATE SET"
        " rows = EXCLUDED.rows, counters = EXCLUDED.counters,"
        " summary = EXCLUDED.summary, finished_at = now()",
        (run_id, chunk, rows, json.dumps(counters), json.dumps(summary)),
    )


def mark_failed(conn: psycopg.Connection, run_id: str, error: str) -> None:
    """The run failed (a chunk failed for good); the first error recorded is kept and a
    finished run is left as it is."""
    conn.execute(
        "UPDATE governance.runs SET status = 'failed', error = coalesce(error, %s)"
        " WHERE run_id = %s AND status IN ('running', 'failed')",
        (error[:ERROR_CHARS], run_id),
    )


def finish_failed(conn: psycopg.Connection, run_id: str, error: str) -> None:
    conn.execute(
        "UPDATE governance.runs SET status = 'failed', error = %s,"
        " finished_at = now() WHERE run_id = %s",
        (error[:ERROR_CHARS], run_id),
    )


# ------------------------------------------------------------------------------ reading
def load_manifest(conn: psycopg.Connection, run_id: str) -> RunManifest:
    row = conn.execute(
        "SELECT manifest FROM governance.runs WHERE run_id = %s", (run_id,)
    ).fetchone()
    if row is None:
        raise VeilflowError(f"run {run_id} has no record; run extract first")
    return RunManifest.of(row[0])


def run_state(conn: psycopg.Connection, run_id: str) -> RunState | None:
    row = conn.execute(
        "SELECT status, error, finished_at FROM governance.runs WHERE run_id = %s", (run_id,)
    ).fetchone()
    return None if row is None else RunState(row[0], row[1], row[2] is not None)


def chunk_counters(
    conn: psycopg.Connection, run_id: str
) -> tuple[int, int, dict[str, dict[str, int]]]:
    """(chunks done, rows written, counters summed over chunks) from ``governance.run_chunks``."""
    total: dict[str, Counter[str]] = {}
    done = rows = 0
    for n, counters in conn.execute(
        "SELECT rows, counters FROM governance.run_chunks WHERE run_id = %s", (run_id,)
    ):
        done += 1
        rows += int(n)
        for col, counts in counters.items():
            total.setdefault(col, Counter()).update(counts)
    return done, rows, {c: dict(v) for c, v in sorted(total.items())}


def chunk_summaries(conn: psycopg.Connection, run_id: str) -> dict[int, tuple[int, Any]]:
    """Chunk → (rows written, gate summary as stored)."""
    return {
        int(chunk): (int(rows), summary)
        for chunk, rows, summary in conn.execute(
            "SELECT chunk, rows, summary FROM governance.run_chunks WHERE run_id = %s",
            (run_id,),
        ).fetchall()
    }


def get_run(conn: psycopg.Connection, run_id: str) -> tuple[RunRow, RunManifest] | None:
    row = conn.execute(
        f"SELECT {_ROW}, manifest FROM governance.runs WHERE run_id = %s", (run_id,)
    ).fetchone()
    return None if row is None else (RunRow(*row[:9]), RunManifest.of(row[9]))


def latest_run(
    conn: psycopg.Connection, run_id: str | None = None, dataset: str | None = None
) -> tuple[RunRow, RunManifest] | None:
    """The run ``run_id``, else the latest run (of ``dataset`` when given)."""
    row = conn.execute(
        f"SELECT {_ROW}, manifest FROM governance.runs"
        " WHERE (%(run)s::text IS NULL OR run_id = %(run)s)"
        " AND (%(run)s::text IS NOT NULL OR %(ds)s::text IS NULL OR dataset = %(ds)s)"
        " ORDER BY started_at DESC LIMIT 1",
        {"run": run_id, "ds": dataset},
    ).fetchone()
    return None if row is None else (RunRow(*row[:9]), RunManifest.of(row[9]))


def list_runs(
    conn: psycopg.Connection,
    *,
    dataset: str | None = None,
    status: str | None = None,
    limit: int = 200,
) -> list[RunRow]:
    """Runs newest first, filtered by dataset and status."""
    rows = conn.execute(
        f"SELECT {_ROW} FROM governance.runs"
        " WHERE (%(dataset)s::text IS NULL OR dataset = %(dataset)s)"
        "   AND (%(status)s::text IS NULL OR status = %(status)s)"
        " ORDER BY started_at DESC LIMIT %(limit)s",
        {"dataset": dataset, "status": status, "limit": limit},
    ).fetchall()
    return [RunRow(*r) for r in rows]


def statuses(conn: psycopg.Connection, run_ids: list[str]) -> dict[str, str]:
    """Run id → status, for the runs of ``run_ids`` that are recorded."""
    rows = conn.execute(
        "SELECT run_id, status FROM governance.runs WHERE run_id = ANY(%s)", (run_ids,)
    ).fetchall()
    return {str(r): str(s) for r, s in rows}


def running_runs(conn: psycopg.Connection, dataset: str) -> list[str]:
    """The dataset's runs still running, newest first."""
    rows = conn.execute(
        "SELECT run_id FROM governance.runs WHERE dataset = %s AND status = 'running'"
        " ORDER BY started_at DESC",
        (dataset,),
    ).fetchall()
    return [str(r) for (r,) in rows]


def published_manifest(
    conn: psycopg.Connection, dataset: str, run_id: str | None
) -> tuple[str, RunManifest] | None:
    """The run ``run_id`` of ``dataset`` (``VeilflowError`` when there is none), else the
    dataset's latest published run (None when there is none)."""
    row = conn.execute(
        "SELECT run_id, manifest FROM governance.runs WHERE dataset = %s"
        " AND (%s::text IS NULL AND status = 'published' OR run_id = %s)"
        " ORDER BY started_at DESC LIMIT 1",
        (dataset, run_id, run_id),
    ).fetchone()
    if row is None:
        if run_id is not None:
            raise VeilflowError(f"no run {run_id} of dataset {dataset}")
        return None
    return str(row[0]), RunManifest.of(row[1])


def policy_and_columns(
    conn: psycopg.Connection, run_id: str
) -> tuple[str, tuple[ColumnEntry, ...]] | None:
    """The policy hash a run ran and its manifest's columns (their key versions)."""
    row = conn.execute(
        "SELECT policy_hash, manifest -> 'columns' FROM governance.runs WHERE run_id = %s",
        (run_id,),
    ).fetchone()
    if row is None:
        return None
    return str(row[0]), tuple(ColumnEntry.model_validate(c) for c in row[1] or ())
