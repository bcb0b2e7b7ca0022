"""Incremental runs (ADR 0017) on the real embedded PostgreSQL: the first run is a full run,
the next ones append the rows past the cursor with the gate's global checks on the union,
a run with no new rows ends at once, and a source that changed below the cursor, a NULL
cursor or a missing chunk summary are refused with the published version untouched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pytest
import yaml
from psycopg import sql

from veilflow.errors import SourceChanged, SourceError, ValidationFailed
from veilflow.pipeline.keys import default_key_provider
from veilflow.pipeline.manifest import load_manifest
from veilflow.pipeline.runner import run_policy
from veilflow.pipeline.seed import append_customers
from veilflow.pipeline.stages import extract, publish, transform_chunk, validate
from veilflow.policy.loader import parse_policy
from veilflow.policy.model import Policy
from veilflow.validate.privacy import table_risk

pytestmark = pytest.mark.slow

BASE = Path(__file__).resolve().parents[2] / "policies" / "customers.yaml"
TARGET = "anonymized.customers"


def incremental_policy(cursor: str = "customer_id", **privacy: Any) -> Policy:
    """The demo policy, appending by ``cursor``, in chunks of 700 rows (the free text
    redacted: its scan has tests of its own)."""
    data = yaml.safe_load(BASE.read_text())
    for section in ("releases", "risk", "utility", "synthetic"):
        data.pop(section, None)  # DP releases and risk ceilings have tests of their own
    data["columns"]["note"] = {"action": "redact"}
    data["chunk_rows"] = 700
    data["incremental"] = {"cursor": cursor}
    data["privacy"].update({"k": 1, "l": 1, **privacy})
    data["validation"] = {"canaries": 3}
    return parse_policy(yaml.safe_dump(data), file="incremental.yaml")


def run(policy: Policy, run_id: str, **kw: Any) -> dict[str, Any]:
    run_policy(policy, run_id=run_id, workers=1, **kw)
    with psycopg.connect(_url()) as c:
        return load_manifest(c, run_id).to_json()


def _url() -> str:
    import os

    return os.environ["VEILFLOW_DATABASE_URL"]


def published(conn: psycopg.Connection) -> pd.DataFrame:
    cur = conn.execute(f"SELECT customer_id, email, birth_date FROM {TARGET}")
    return pd.DataFrame(cur.fetchall(), columns=["customer_id", "email", "birth_date"])


def test_first_run_is_full_then_runs_append_and_an_empty_one_ends_at_once(
    seeded_db: str, conn: psycopg.Connection
) -> None:
    policy = incremental_policy()
    first = run(policy, "inc-1")
    assert first["incremental"]["mode"] == "full"
    assert first["incremental"]["rows_taken"] == 2_000
    assert first["incremental"]["to"] == "2000"
    before = published(conn)
    assert len(before) == 2_000

    with psycopg.connect(seeded_db) as c:
        append_customers(c, 150, seed=7)
    second = run(policy, "inc-2")
    inc = second["incremental"]
    assert (inc["mode"], inc["from"], inc["to"], inc["rows_taken"]) == (
        "append",
        "2000",
        "2150",
        150,
    )
    assert inc["rows_total"] == 2_150 and second["rows_in"] == 150
    assert second["gate"]["passed"] and second["gate"]["metrics"]["appends_to"] == TARGET
    after = published(conn)
    assert len(after) == 2_150
    # Deterministic tokens: every published row is still there, token for token, so joins
    # on the old tokens hold; the new rows' tokens are new.
    merged = before.merge(after, on="customer_id", suffixes=("", "_after"))
    assert len(merged) == 2_000 and (merged["email"] == merged["email_after"]).all()
    assert after["customer_id"].is_unique
    versions = conn.execute(
        "SELECT run_id, rows FROM governance.published_versions ORDER BY published_at"
    ).fetchall()
    assert versions == [("inc-1", 2_000), ("inc-2", 2_150)]
    facet = conn.execute(
        "SELECT event->'run'->'facets'->'veilflow_anonymization'->'increment' FROM governance.lineage_events"
        " WHERE run_id = 'inc-2' AND stage = 'publish' AND event_type = 'COMPLETE'"
    ).fetchone()
    assert facet is not None and facet[0] == {
        "cursor": "customer_id",
        "mode": "append",
        "from": "2000",
        "to": "2150",
        "rowsTaken": 150,
    }
    cursors = conn.execute(
        "SELECT run_id, cursor_from, cursor_to, rows_taken FROM governance.published_cursors"
        " ORDER BY published_at"
    ).fetchall()
    assert cursors == [("inc-1", None, "2000", 2_000), ("inc-2", "2000", "2150", 150)]

    third = run(policy, "inc-3")
    assert third["up_to_date"] and third["rows_in"] == 0
    status = conn.execute(
        "SELECT status, rows_out FROM governance.runs WHERE run_id = 'inc-3'"
    ).fetchone()
    assert status == ("published", 0)
    assert len(published(conn)) == 2_150
    # The published version is still inc-2's: the next run appends to it.
    with psycopg.connect(seeded_db) as c:
        append_customers(c, 20, seed=7)
    fourth = run(policy, "inc-4")
    assert fourth["incremental"]["appends_to_run"] == "inc-2"
    assert len(published(conn)) == 2_170


def test_risk_is_measured_on_the_whole_published_table_after_the_append(
    seeded_db: str, conn: psycopg.Connection
) -> None:
    """k, l and t of the append run are those of the published table after the append,
    measured in PostgreSQL, to the last digit; the run's rows in classes too small even
    with the published rows are suppressed, and no published row is."""
    policy = incremental_policy(
        quasi_identifiers=["zip", "birth_date", "gender"], k=2, l=1, max_suppression=0.6
    )
    first = run(policy, "risk-1")
    assert first["gate"]["passed"]
    rows_before = len(published(conn))
    with psycopg.connect(seeded_db) as c:
        append_customers(c, 400, seed=11)
    second = run(policy, "risk-2")
    risk = second["gate"]["metrics"]["risk"]["after"]
    measured = table_risk(
        conn, TARGET, ["zip", "birth_date", "gender"], "diagnosis", distance="equal"
    ).to_dict()
    assert risk == measured
    suppressed = second["gate"]["suppressed_rows"]
    assert 0 < suppressed < 400
    assert len(published(conn)) == rows_before + 400 - suppressed
    assert measured["k"] >= 2


def test_an_ordered_t_closeness_is_measured_on_both_tables_in_postgresql(
    seeded_db: str, conn: psycopg.Connection
) -> None:
    """A numeric sensitive column (ordered distance) has no hash histogram: the append run
    measures k / l / t in PostgreSQL over the published table and its candidate together."""
    policy = incremental_policy(sensitive="amount", t=1.0, distance="ordered")
    run(policy, "ord-1")
    with psycopg.connect(seeded_db) as c:
        append_customers(c, 200, seed=5)
    second = run(policy, "ord-2")
    risk = second["gate"]["metrics"]["risk"]
    assert risk["measured_on"] == "union"
    measured = table_risk(
        conn, TARGET, ["zip", "birth_date", "gender"], "amount", distance="ordered"
    ).to_dict()
    assert risk["after"] == measured and measured["rows"] == 2_200


def test_a_row_changed_below_the_cursor_is_refused_naming_the_range(
    seeded_db: str, conn: psycopg.Connection
) -> None:
    policy = incremental_policy()
    run(policy, "chg-1")
    secret = conn.execute(
        "SELECT email FROM restricted.customers WHERE customer_id = 10"
    ).fetchone()
    conn.execute(
        "UPDATE restricted.customers SET email = 'changed@example.org' WHERE customer_id = 10"
    )
    conn.execute("DELETE FROM restricted.customers WHERE customer_id = 1500")
    with psycopg.connect(seeded_db) as c:
        append_customers(c, 30, seed=7)
    with pytest.raises(SourceChanged) as err:
        run(policy, "chg-2")
    message = str(err.value)
    assert "customer_id <= 2000" in message
    assert "1 row(s) written since" in message and "customer_id 10 .. 10" in message
    assert "2 of its rows no longer there" in message  # the deleted one, the updated one
    assert "customer_id >= 1 " in message and "--full" in message
    assert secret is not None and secret[0] not in message and "changed@" not in message
    # Refused before anything was written: the published version is chg-1's, the run is
    # recorded as failed with the reason.
    assert len(published(conn)) == 2_000
    row = conn.execute(
        "SELECT status, error FROM governance.runs WHERE run_id = 'chg-2'"
    ).fetchone()
    assert row is not None and row[0] == "failed" and "changed below the cursor" in row[1]
    leftovers = conn.execute(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'staging' AND tablename LIKE '%chg2%'"
    ).fetchone()
    assert leftovers == (0,)

    # A full run publishes the source as it is now, and appending resumes from it.
    rerun = run(policy, "chg-3", full=True)
    assert rerun["incremental"]["mode"] == "full"
    assert rerun["incremental"]["reason"] == "a full run was asked for"
    assert len(published(conn)) == 2_029


def test_a_row_added_below_the_cursor_is_refused(seeded_db: str, conn: psycopg.Connection) -> None:
    policy = incremental_policy()
    run(policy, "low-1")
    conn.execute(
        "INSERT INTO restricted.customers SELECT * FROM restricted.customers WHERE customer_id = 7"
        " ON CONFLICT DO NOTHING"
    )
    conn.execute("UPDATE restricted.customers SET customer_id = 0 WHERE customer_id = 7")
    with pytest.raises(SourceChanged, match=r"customer_id >= -infinity < 1: 0 row\(s\) published"):
        run(policy, "low-2")


def test_a_null_cursor_is_refused_before_extract_writes(
    seeded_db: str, conn: psycopg.Connection
) -> None:
    policy = incremental_policy(cursor="phone")  # about 5% of phones are NULL
    with pytest.raises(SourceError, match=r"row\(s\) have a NULL cursor 'phone'"):
        extract(policy, "null-1", default_key_provider())
    assert conn.execute("SELECT count(*) FROM governance.runs").fetchone() == (0,)
    assert conn.execute(
        "SELECT count(*) FROM pg_tables WHERE schemaname IN ('staging', 'anonymized')"
    ).fetchone() == (0,)


def test_a_missing_chunk_summary_in_an_append_run_quarantines_it(
    seeded_db: str, conn: psycopg.Connection
) -> None:
    policy = incremental_policy()
    run(policy, "sum-1")
    with psycopg.connect(seeded_db) as c:
        append_customers(c, 900, seed=7)  # two chunks
    keys = default_key_provider()
    ex = extract(policy, "sum-2", keys)
    assert len(ex.chunks) == 2
    for chunk in ex.chunks:
        transform_chunk(policy, "sum-2", chunk, keys)
    conn.execute("UPDATE governance.run_chunks SET summary = NULL WHERE run_id = 'sum-2'")
    with pytest.raises(ValidationFailed, match="chunk_summaries"):
        validate(policy, "sum-2", keys=keys)
    assert len(published(conn)) == 2_000
    row = conn.execute(
        "SELECT quarantine_table FROM governance.quarantined WHERE run_id = 'sum-2'"
    ).fetchone()
    assert row is not None and row[0] is not None
    # The next run appends to sum-1's version, as if sum-2 never ran.
    nxt = run(policy, "sum-3")
    assert nxt["incremental"]["appends_to_run"] == "sum-1" and nxt["rows_in"] == 900


def test_a_token_that_collides_with_a_published_one_is_refused(
    seeded_db: str, conn: psycopg.Connection
) -> None:
    """Token uniqueness across old and new rows: a new row's email token equal to a
    published row's token for another email fails the gate; nothing is appended."""
    policy = incremental_policy()
    run(policy, "tok-1")
    taken = conn.execute(f"SELECT email FROM {TARGET} LIMIT 1").fetchone()
    assert taken is not None
    with psycopg.connect(seeded_db) as c:
        append_customers(c, 50, seed=99)
    keys = default_key_provider()
    ex = extract(policy, "tok-2", keys)

    def collide(raw: pd.DataFrame, out: pd.DataFrame) -> pd.DataFrame:
        out.loc[out.index[0], "email"] = taken[0]
        return out

    for chunk in ex.chunks:
        transform_chunk(policy, "tok-2", chunk, keys, outputs_hook=collide)
    with pytest.raises(ValidationFailed, match=r"token_unique\[email\]"):
        validate(policy, "tok-2", keys=keys)
    assert len(published(conn)) == 2_000


def test_a_concurrent_publish_stops_the_append(seeded_db: str, conn: psycopg.Connection) -> None:
    """Two runs that start from the same published version: the second to publish stops
    (it would append to a version it did not check against)."""
    policy = incremental_policy()
    run(policy, "cc-1")
    with psycopg.connect(seeded_db) as c:
        append_customers(c, 40, seed=7)
    keys = default_key_provider()
    ex = extract(policy, "cc-2", keys)
    for chunk in ex.chunks:
        transform_chunk(policy, "cc-2", chunk, keys)
    validate(policy, "cc-2", keys=keys)
    run(policy, "cc-3")  # took the same 40 rows and published first
    with pytest.raises(SourceError, match="published since this run started"):
        publish(policy, "cc-2")
    assert len(published(conn)) == 2_040
    assert conn.execute(
        sql.SQL("SELECT count(*) FROM governance.published_cursors WHERE run_id = 'cc-2'")
    ).fetchone() == (0,)
