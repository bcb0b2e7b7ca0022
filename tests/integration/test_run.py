"""A policy run end to end on the embedded PostgreSQL, and every way it must fail closed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psycopg
import pytest

from veilflow.errors import (
    DatabaseUnavailable,
    PolicyError,
    SchemaDrift,
    SourceError,
    ValidationFailed,
)
from veilflow.pipeline.keys import default_key_provider
from veilflow.pipeline.runner import run_policy
from veilflow.pipeline.stages import ChunkRef, extract, transform_chunk
from veilflow.policy import load_policy, parse_policy
from veilflow.zones.run_tables import RunTables, table_exists


@pytest.fixture
def policy_text(customers_policy_path: Path) -> str:
    return customers_policy_path.read_text()


def rows(conn: psycopg.Connection, q: str) -> list[tuple[object, ...]]:
    return conn.execute(q).fetchall()


def test_run_publishes_every_row_transformed(
    seeded_db: str, conn: psycopg.Connection, policy_text: str
) -> None:
    policy = parse_policy(policy_text)
    said: list[str] = []
    summary = run_policy(policy, progress=said.append)
    assert summary.rows_in == 2000 and summary.rows_published == 2000
    # Progress: the chunks, then each group of gate checks as it ends (counts only), then
    # the verdict.
    steps = [re.fullmatch(r"gate: ([a-zA-Z ,-]+): (\d+) check\(s\), (\d+) failed", m) for m in said]
    groups = [m.group(1) for m in steps if m]
    assert groups[-4:] == [
        "canaries and residual-PII rescan",
        "Great Expectations suite",
        "no raw value survives",
        "risk over time",
    ]
    assert "rows against the snapshot, tokens re-derived, raw values in text" in groups
    assert all(m.group(3) == "0" for m in steps if m)
    first = next(i for i, m in enumerate(steps) if m)
    assert said[first - 1].startswith("chunk ") and said[-1].startswith("gate passed")
    assert sum(int(m.group(2)) for m in steps if m) == int(said[-1].split("(")[1].split()[0])
    out = rows(conn, "SELECT count(*), count(DISTINCT customer_id) FROM anonymized.customers")
    assert out == [(2000, 2000)]
    # Nothing raw survives in a transformed column, nor inside the scrubbed notes. (Names are
    # checked row by row by the gate's rescan: a surrogate may equal another customer's name.)
    for col in ("email", "ssn", "credit_card", "iban", "ip_address", "phone"):
        leaked = rows(
            conn,
            f"""SELECT count(*) FROM anonymized.customers
                                WHERE {col} IN (SELECT {col} FROM restricted.customers)""",
        )
        assert leaked == [(0,)], col
    in_notes = rows(
        conn,
        """SELECT count(*) FROM anonymized.customers a
                             WHERE EXISTS (SELECT 1 FROM restricted.customers r
                                           WHERE position(r.email IN a.note) > 0
                                              OR position(r.phone IN a.note) > 0)""",
    )
    assert in_notes == [(0,)]
    # Types of kept columns are kept; transformed ones are text.
    types = dict(
        rows(
            conn,
            """SELECT column_name, data_type FROM information_schema.columns
                               WHERE table_schema = 'anonymized' AND table_name = 'customers'""",
        )
    )
    assert types["amount"] == "numeric" and types["email"] == "text"
    status = rows(conn, "SELECT status, rows_in, rows_out FROM governance.runs")
    assert status == [("published", 2000, 2000)]
    # The raw snapshot does not linger in staging.
    assert rows(conn, "SELECT count(*) FROM pg_tables WHERE schemaname = 'staging'") == [(0,)]


def test_tokens_are_deterministic_across_runs(
    seeded_db: str, conn: psycopg.Connection, policy_text: str
) -> None:
    policy = parse_policy(policy_text)
    run_policy(policy)
    first = rows(conn, "SELECT customer_id, email FROM anonymized.customers ORDER BY 1")
    run_policy(policy)
    assert rows(conn, "SELECT customer_id, email FROM anonymized.customers ORDER BY 1") == first
    assert rows(conn, "SELECT count(*) FROM governance.published_versions") == [(2,)]


def test_schema_drift_stops_before_anything_is_written(
    seeded_db: str, conn: psycopg.Connection, policy_text: str
) -> None:
    run_policy(parse_policy(policy_text))
    conn.execute("ALTER TABLE restricted.customers ADD COLUMN passport_no text")
    with pytest.raises(SchemaDrift, match="passport_no"):
        run_policy(parse_policy(policy_text))
    assert rows(conn, "SELECT count(*) FROM anonymized.customers") == [(2000,)]
    assert rows(conn, "SELECT count(*) FROM pg_tables WHERE schemaname = 'staging'") == [(0,)]
    # With `unlisted: drop` the new column is left out and the run goes on.
    run_policy(parse_policy(policy_text.replace("unlisted: fail", "unlisted: drop")))
    cols = [
        r[0]
        for r in rows(
            conn,
            """SELECT column_name FROM information_schema.columns
                                        WHERE table_schema = 'anonymized'""",
        )
    ]
    assert "passport_no" not in cols


def test_drift_message_carries_the_scan_verdict(
    seeded_db: str, conn: psycopg.Connection, policy_text: str
) -> None:
    conn.execute("ALTER TABLE restricted.customers ADD COLUMN backup_email text")
    conn.execute("UPDATE restricted.customers SET backup_email = email")
    with pytest.raises(SchemaDrift) as info:
        run_policy(parse_policy(policy_text))
    message = str(info.value)
    assert "backup_email" in message and "EMAIL_ADDRESS" in message
    assert "@" not in message  # a verdict, never a value


def test_declared_column_missing_from_source(
    seeded_db: str, conn: psycopg.Connection, policy_text: str
) -> None:
    conn.execute("ALTER TABLE restricted.customers DROP COLUMN iban")
    with pytest.raises(SchemaDrift, match="missing from the source: iban"):
        run_policy(parse_policy(policy_text))


def test_null_key_stops_the_run(seeded_db: str, conn: psycopg.Connection, policy_text: str) -> None:
    conn.execute("ALTER TABLE restricted.customers DROP CONSTRAINT customers_pkey")
    conn.execute("ALTER TABLE restricted.customers ALTER COLUMN customer_id DROP NOT NULL")
    conn.execute("UPDATE restricted.customers SET customer_id = NULL WHERE customer_id < 3")
    with pytest.raises(SourceError, match=r"2 row\(s\) have a NULL key"):
        run_policy(parse_policy(policy_text))
    assert not table_exists(conn, "anonymized", "customers")


def test_duplicate_key_without_a_unique_index_stops_the_run(
    seeded_db: str, conn: psycopg.Connection, policy_text: str
) -> None:
    conn.execute("ALTER TABLE restricted.customers DROP CONSTRAINT customers_pkey")
    conn.execute("UPDATE restricted.customers SET customer_id = 7340155 WHERE customer_id < 3")
    with pytest.raises(SourceError, match=r"duplicate key 'customer_id': 1 key value\(s\)") as err:
        run_policy(parse_policy(policy_text))
    assert "(2 rows)" in str(err.value)
    assert "7340155" not in str(err.value)  # a key is the source's data: counted, never quoted


@pytest.mark.parametrize(
    ("ddl", "proven"),
    [
        ("", True),  # the seeded table's primary key
        ("ALTER TABLE restricted.customers DROP CONSTRAINT customers_pkey", False),
        (
            "ALTER TABLE restricted.customers DROP CONSTRAINT customers_pkey;"
            " CREATE UNIQUE INDEX ON restricted.customers (customer_id, email)",
            False,
        ),
        (
            "ALTER TABLE restricted.customers DROP CONSTRAINT customers_pkey;"
            " CREATE UNIQUE INDEX ON restricted.customers (customer_id) WHERE customer_id > 5",
            False,
        ),
        (
            "ALTER TABLE restricted.customers DROP CONSTRAINT customers_pkey;"
            " ALTER TABLE restricted.customers ALTER COLUMN customer_id DROP NOT NULL;"
            " CREATE UNIQUE INDEX ON restricted.customers (customer_id)",
            False,
        ),
    ],
)
def test_only_a_not_null_key_with_its_own_unique_index_skips_the_key_scan(
    seeded_db: str, conn: psycopg.Connection, policy_text: str, ddl: str, proven: bool
) -> None:
    from veilflow.pipeline.stages import key_is_declared_unique

    if ddl:
        conn.execute(ddl)
    assert key_is_declared_unique(conn, parse_policy(policy_text)) is proven


def test_missing_source_table(zones_db: str, policy_text: str) -> None:
    with pytest.raises(SourceError, match=r"restricted\.customers does not exist"):
        run_policy(parse_policy(policy_text))


def test_database_down_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, policy_text: str
) -> None:
    monkeypatch.setenv(
        "VEILFLOW_DATABASE_URL", f"postgresql://pipeline:s3cret@/veilflow?host={tmp_path}"
    )
    with pytest.raises(DatabaseUnavailable) as info:
        run_policy(parse_policy(policy_text))
    assert "cannot connect" in str(info.value)
    assert "s3cret" not in str(info.value)


def test_gate_failure_quarantines_and_keeps_the_published_version(
    seeded_db: str, conn: psycopg.Connection, policy_text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_policy(parse_policy(policy_text))
    before = rows(
        conn, "SELECT md5(string_agg(email, ',' ORDER BY email)) FROM anonymized.customers"
    )
    # An operator that claims to hide values but passes them through must be caught.
    import veilflow.registry as registry
    from veilflow.policy.operators import OPERATOR_CONFIGS
    from veilflow.transform.operators.basic import Keep

    class Leaky(Keep):
        name = "leaky"
        hides_raw = True

    monkeypatch.setitem(registry.OPERATORS, "leaky", Leaky)
    # A policy names only operators whose config the policy layer knows (ADR 0028).
    monkeypatch.setitem(OPERATOR_CONFIGS, "leaky", Leaky.Config)
    said: list[str] = []
    with pytest.raises(ValidationFailed) as info:
        run_policy(
            parse_policy(
                policy_text.replace(
                    "ssn:         {action: ff1, alphabet: digits}", "ssn:         {action: leaky}"
                )
            ),
            progress=said.append,
        )
    # Progress already names the group that failed, with counts only.
    survives = [m for m in said if m.startswith("gate: no raw value survives:")]
    assert len(survives) == 1 and not survives[0].endswith(" 0 failed")
    assert any(
        r["check"] == "no_raw_value_survives" and r["column"] == "ssn" for r in info.value.reasons
    )
    assert (
        rows(conn, "SELECT md5(string_agg(email, ',' ORDER BY email)) FROM anonymized.customers")
        == before
    )
    q = rows(conn, "SELECT quarantine_table, reasons FROM governance.quarantined")
    assert len(q) == 1 and q[0][0].startswith("quarantine.customers__")
    assert rows(conn, "SELECT status FROM governance.runs ORDER BY started_at") == [
        ("published",),
        ("quarantined",),
    ]
    assert rows(conn, "SELECT count(*) FROM pg_tables WHERE schemaname = 'staging'") == [(0,)]


def test_a_chunk_retried_after_a_crash_gives_the_same_rows(
    seeded_db: str, conn: psycopg.Connection, policy_text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = parse_policy(policy_text)
    keys = default_key_provider()
    ex = extract(policy, "retry-run", keys)
    assert len(ex.chunks) == 3
    rt = RunTables("customers", "retry-run")

    import veilflow.zones.run_tables as run_tables

    real_write = run_tables.write_frame

    def crash_mid_copy(c: psycopg.Connection, table: object, frame: object) -> int:
        real_write(c, table, frame)  # the rows are sent ...
        raise KeyboardInterrupt("killed")  # ... and the task dies before commit

    monkeypatch.setattr(run_tables, "write_frame", crash_mid_copy)
    with pytest.raises(KeyboardInterrupt):
        transform_chunk(policy, "retry-run", ex.chunks[1], keys)
    monkeypatch.setattr(run_tables, "write_frame", real_write)
    assert rows(conn, f'SELECT count(*) FROM staging."{rt.candidate_name}"') == [(0,)]
    for chunk in ex.chunks:
        transform_chunk(policy, "retry-run", chunk, keys)
    transform_chunk(policy, "retry-run", ex.chunks[1], keys)  # a second, late retry
    got = rows(conn, f'SELECT count(*), count(DISTINCT _vf_row) FROM staging."{rt.candidate_name}"')
    assert got == [(2020, 2020)]  # 2,000 rows and 20 canaries


def test_a_chunk_task_killed_before_commit_leaves_nothing_and_its_retry_is_exact(
    seeded_db: str, conn: psycopg.Connection, policy_text: str, tmp_path: Path
) -> None:
    """A real kill: a transform task in its own process is stopped with SIGKILL after it has
    written its chunk's rows and before it commits (it waits on a lock this test holds on
    ``governance.run_chunks``). Nothing of it stays; the retry gives every row once, and a
    second retry gives the same rows again."""
    policy = parse_policy(policy_text)
    keys = default_key_provider()
    ex = extract(policy, "kill-run", keys)
    rt = RunTables("customers", "kill-run")
    chunk = ex.chunks[1]
    path = tmp_path / "customers.yaml"
    path.write_text(policy_text)
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from veilflow.pipeline.keys import default_key_provider
        from veilflow.pipeline.stages import ChunkRef, transform_chunk
        from veilflow.policy import parse_policy
        policy = parse_policy(Path({str(path)!r}).read_text())
        chunk = ChunkRef({chunk.index}, {chunk.lo}, {chunk.hi})
        transform_chunk(policy, "kill-run", chunk, default_key_provider())
        """
    )
    log = tmp_path / "task.log"
    waiting = (
        "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND query LIKE 'INSERT INTO governance.run_chunks%'"
    )
    with psycopg.connect(seeded_db) as locker, log.open("w") as out:
        locker.execute("LOCK TABLE governance.run_chunks IN SHARE ROW EXCLUSIVE MODE")
        task = subprocess.Popen(
            [sys.executable, "-c", script], env=dict(os.environ), stdout=out, stderr=out
        )
        try:
            deadline = time.monotonic() + 120
            while (found := conn.execute(waiting).fetchone()) is None:
                assert task.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, "the task never reached its commit"
                time.sleep(0.05)
        finally:
            task.kill()
            task.wait(timeout=30)
        locker.rollback()  # the killed task's backend goes on, finds no client and rolls back
    backend = found[0]
    deadline = time.monotonic() + 30
    while conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (backend,)).fetchone():
        assert time.monotonic() < deadline, "the killed task's session did not end"
        time.sleep(0.05)
    assert rows(conn, f'SELECT count(*) FROM staging."{rt.candidate_name}"') == [(0,)]
    assert rows(conn, "SELECT count(*) FROM governance.run_chunks WHERE run_id = 'kill-run'") == [
        (0,)
    ]

    for c in ex.chunks:
        transform_chunk(policy, "kill-run", c, keys)
    everything = f'SELECT * FROM staging."{rt.candidate_name}" ORDER BY _vf_row'
    first = rows(conn, everything)
    got = rows(conn, f'SELECT count(*), count(DISTINCT _vf_row) FROM staging."{rt.candidate_name}"')
    assert got == [(2020, 2020)]  # 2,000 rows and 20 canaries, each once
    transform_chunk(policy, "kill-run", chunk, keys)  # a late second retry
    assert rows(conn, everything) == first


def test_chunk_ranges_cover_every_row_once(seeded_db: str, policy_text: str) -> None:
    ex = extract(parse_policy(policy_text), "ranges", default_key_provider())
    assert ex.canaries == 20
    covered = [r for c in ex.chunks for r in range(c.lo, c.hi)]
    assert covered == list(range(1, 2021))
    assert ex.chunks[-1] == ChunkRef(2, 1401, 2021)


def test_broken_policy_file_stops_before_reading(seeded_db: str, tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("dataset: customers\nsource: {table: restricted.customers\n")
    with pytest.raises(PolicyError) as info:
        load_policy(p)
    assert str(p) in str(info.value) and info.value.line is not None
