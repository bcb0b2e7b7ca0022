"""Scan results in the governance schema, table sampling, and `veilflow scan` on a table."""

from __future__ import annotations

import json

import psycopg
import pytest
from typer.testing import CliRunner

from veilflow.detect.report import ScanReport
from veilflow.detect.store import sample_table, store_scan
from veilflow.errors import SourceError
from veilflow.zones.db import connect


def test_store_scan_rows_and_no_values(seeded_db: str, conn: psycopg.Connection) -> None:
    with connect(seeded_db) as c:
        frame = sample_table(c, "restricted.customers", 300)
    assert len(frame) == 300
    report = ScanReport.of_frame("customers", "restricted.customers", frame)
    n = store_scan(conn, "run-1", "customers", report)
    rows = conn.execute(
        'SELECT "column", entity, count, hit_rate, confidence FROM '
        "governance.scan_results WHERE run_id = 'run-1'"
    ).fetchall()
    assert len(rows) == n
    got = {(r[0], r[1]) for r in rows}
    assert ("email", "EMAIL_ADDRESS") in got and ("amount", "NONE") in got
    assert ("note", "PERSON") in got  # free text: one row per entity found in it
    email = next(r for r in rows if r[0] == "email")
    assert email[2] == 300 and email[3] == 1.0
    stored = json.dumps([list(map(str, r)) for r in rows])
    for value in frame["email"].head(20):
        assert value not in stored


def test_scan_results_grants(
    zones_db: str, conn: psycopg.Connection, role_logins: dict[str, str]
) -> None:
    conn.execute(
        'INSERT INTO governance.scan_results (run_id, dataset, "column", entity, count)'
        " VALUES ('r', 'd', 'c', 'PERSON', 1)"
    )
    for role in ("auditor", "steward"):
        with connect(zones_db, user=role_logins[role]) as c:
            assert c.execute("SELECT count(*) FROM governance.scan_results").fetchone() == (1,)
    with connect(zones_db, user=role_logins["pipeline"]) as c:
        store_scan(c, "r2", "d", ScanReport("d", "", 0, []).verdicts)
        c.execute(
            'INSERT INTO governance.scan_results (run_id, dataset, "column", entity, '
            "count) VALUES ('r2', 'd', 'c', 'EMAIL_ADDRESS', 2)"
        )
        c.commit()
    for role in ("ml_engineer", "nobody"):
        with (
            connect(zones_db, user=role_logins[role]) as c,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            c.execute("SELECT count(*) FROM governance.scan_results")


def test_sample_is_bounded_and_missing_table_is_clear(seeded_db: str) -> None:
    with connect(seeded_db) as c:
        assert len(sample_table(c, "customers", 50)) == 50
        with pytest.raises(SourceError, match="does not exist"):
            sample_table(c, "restricted.nope", 10)


def test_cli_scan_table(seeded_db: str) -> None:
    from veilflow.cli import app

    result = CliRunner().invoke(
        app, ["scan", "restricted.customers", "--format", "json", "--sample", "200"]
    )
    assert result.exit_code == 0, result.output
    got = {c["column"]: c["entity"] for c in json.loads(result.output)["columns"]}
    assert got["credit_card"] == "CREDIT_CARD" and got["customer_id"] == "IDENTIFIER"
    assert got["birth_date"] == "DATE_TIME" and got["note"] == "FREE_TEXT"
