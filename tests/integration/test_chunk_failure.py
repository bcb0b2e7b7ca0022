"""A chunk that fails for good does not pull the run's tables from under its siblings.

The failing chunk only marks the run failed; the candidate is quarantined and the run's
tables dropped once every chunk has stopped: by the ``cleanup`` teardown in a DAG (it waits
for every mapped task), by ``veilflow run`` after its chunk workers have stopped."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import psycopg
import pytest

from veilflow.errors import TransformError
from veilflow.pipeline import stages
from veilflow.pipeline.runner import run_policy
from veilflow.policy import load_policy
from veilflow.zones.run_tables import ROW, RunTables, table_exists

CHUNK_ROWS = 100
#: The bad value sits in the first chunk, at snapshot row 3 (keys sort as numbered).
BAD_KEY, BAD_ROW = "acct-0003", 3

POLICY = f"""\
dataset: accounts
source: {{table: restricted.accounts, key: account_id}}
target: {{table: anonymized.accounts}}
chunk_rows: {CHUNK_ROWS}
columns:
  account_id: {{action: tokenize}}
  card: {{action: ff1, alphabet: digits, on_invalid: fail}}
"""


@pytest.fixture
def accounts(conn: psycopg.Connection, tmp_path: Path) -> Path:
    """``restricted.accounts``: 200 rows (two chunks), one card FF1 cannot take in the first
    chunk; returns the policy file."""
    conn.execute("CREATE TABLE restricted.accounts (account_id text PRIMARY KEY, card text)")
    conn.execute(
        "INSERT INTO restricted.accounts SELECT 'acct-' || lpad(i::text, 4, '0'),"
        " lpad((i * 7919)::text, 10, '0') FROM generate_series(1, 200) i"
    )
    conn.execute(
        "UPDATE restricted.accounts SET card = 'VOID-7Q2X' WHERE account_id = %s", (BAD_KEY,)
    )
    path = tmp_path / "accounts.yaml"
    path.write_text(POLICY)
    return path


def staging_tables(conn: psycopg.Connection) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'staging' ORDER BY 1"
        ).fetchall()
    ]


def assert_failed_and_cleaned(conn: psycopg.Connection, run_id: str) -> None:
    """The run is failed with the chunk's own error; nothing is left in staging; the
    sibling's finished chunk is in quarantine; one audit entry, the quarantine FAIL."""
    status, error, finished = conn.execute(
        "SELECT status, error, finished_at IS NOT NULL FROM governance.runs WHERE run_id = %s",
        (run_id,),
    ).fetchone() or (None, None, None)
    assert (status, finished) == ("failed", True)
    assert "column 'card': 1 value(s) cannot be FF1-encrypted" in str(error)
    assert f"snapshot row {BAD_ROW} " in str(error) and BAD_KEY not in str(error)
    assert staging_tables(conn) == []
    quarantined = conn.execute(
        "SELECT quarantine_table FROM governance.quarantined WHERE run_id = %s", (run_id,)
    ).fetchone()
    assert quarantined is not None and quarantined[0] is not None
    assert conn.execute(f"SELECT count(*) FROM {quarantined[0]}").fetchone() == (CHUNK_ROWS,)
    audits = conn.execute(
        "SELECT count(*) FROM governance.audit_log WHERE action = 'policy_run'"
        " AND details->>'run_id' = %s",
        (run_id,),
    ).fetchone()
    assert audits == (1,)


def test_dag_tasks_a_failing_chunk_leaves_a_running_sibling_its_tables(
    accounts: Path, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The DAG's tasks, as Airflow calls them: chunk 1 is mid-way (snapshot read, candidate
    not yet written) when chunk 0's task fails for good. Chunk 1 then writes its partition
    into a candidate that is still there; ``cleanup`` finishes the failed run."""
    from airflow.sdk.exceptions import AirflowFailException

    from veilflow.airflow.operators import VeilflowStageOperator, veilflow_run_id

    policy = load_policy(accounts)
    context: dict[str, Any] = {
        "run_id": "manual__sibling",
        "ti": SimpleNamespace(dag_id="veilflow_accounts", task_id="transform", try_number=1),
    }
    run_id = veilflow_run_id(policy.dataset, context["run_id"])

    def task(stage: str, chunk: dict[str, int] | None = None) -> VeilflowStageOperator:
        return VeilflowStageOperator(
            task_id=stage, policy_path=str(accounts), stage=stage, chunk=chunk
        )

    chunks = task("extract").execute(context)
    assert [c["index"] for c in chunks] == [0, 1]

    reached, release = threading.Event(), threading.Event()
    transform_frame = stages.transform_frame

    def held(plan: Any, frame: pd.DataFrame) -> Any:
        if threading.current_thread().name == "sibling":
            reached.set()
            assert release.wait(120)
        return transform_frame(plan, frame)

    monkeypatch.setattr(stages, "transform_frame", held)
    sibling_error: list[BaseException] = []

    def sibling() -> None:
        try:
            task("transform", chunks[1]).execute(context)
        except BaseException as exc:
            sibling_error.append(exc)

    thread = threading.Thread(target=sibling, name="sibling")
    thread.start()
    try:
        assert reached.wait(120)
        with pytest.raises(AirflowFailException, match=f"snapshot row {BAD_ROW} "):
            task("transform", chunks[0]).execute(context)
        # Marked failed at once; the tables stay while the sibling works.
        assert conn.execute(
            "SELECT status FROM governance.runs WHERE run_id = %s", (run_id,)
        ).fetchone() == ("failed",)
        rt = RunTables(policy.dataset, run_id)
        assert table_exists(conn, "staging", rt.snapshot_name)
        assert table_exists(conn, "staging", rt.candidate_name)
    finally:
        release.set()
        thread.join(120)
    assert sibling_error == []
    assert conn.execute(
        "SELECT chunk, rows FROM governance.run_chunks WHERE run_id = %s", (run_id,)
    ).fetchall() == [(1, CHUNK_ROWS)]

    assert task("cleanup").execute(context) is None  # the teardown, after every chunk
    assert_failed_and_cleaned(conn, run_id)
    task("cleanup").execute(context)  # a second cleanup records nothing twice
    assert_failed_and_cleaned(conn, run_id)
    failed = conn.execute(
        "SELECT event->'job'->>'name' FROM governance.lineage_events"
        " WHERE event->>'eventType' = 'FAIL' ORDER BY 1"
    ).fetchall()
    assert failed == [("accounts.quarantine",), ("accounts.transform",)]


def slow_sibling(plan: Any, frame: pd.DataFrame) -> Any:
    """In a forked chunk worker: the second chunk takes its time, so the first chunk's
    failure reaches the runner while it is still running."""
    if int(frame[ROW].iloc[0]) > CHUNK_ROWS:
        time.sleep(3)
    return TRANSFORM_FRAME(plan, frame)


TRANSFORM_FRAME = stages.transform_frame


def test_veilflow_run_stops_its_chunk_workers_before_failing_the_run(
    accounts: Path, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``veilflow run`` with two chunk workers: chunk 0 fails at once, chunk 1 is still
    transforming. The runner waits for it before it fails the run, so chunk 1 writes its
    partition (it is in the quarantined candidate) and nothing is left in staging."""
    monkeypatch.setattr(stages, "transform_frame", slow_sibling)  # forked workers inherit it
    with pytest.raises(TransformError, match=f"snapshot row {BAD_ROW} "):
        run_policy(load_policy(accounts), run_id="sibling-run", workers=2)
    assert conn.execute(
        "SELECT chunk FROM governance.run_chunks WHERE run_id = 'sibling-run'"
    ).fetchall() == [(1,)]
    assert_failed_and_cleaned(conn, "sibling-run")
