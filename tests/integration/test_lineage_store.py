"""Lineage of real runs on the embedded PostgreSQL: every stage's events land in the
governance store, validate against the official schemas, and give column lineage for every
column of the published table; an unreachable Marquez never fails a run or loses an event."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from tests.conftest import make_login
from tests.unit import lineage_support as ls
from tests.unit.test_lineage_transports import closed_port, marquez  # noqa: F401 (fixture)
from veilflow.errors import ValidationFailed
from veilflow.lineage import transports
from veilflow.lineage.emitter import emit_stage, retry_pending
from veilflow.lineage.naming import as_run_uuid
from veilflow.lineage.store import import_spool, spool_dir
from veilflow.lineage.validation import event_errors
from veilflow.pipeline.runner import run_policy
from veilflow.policy import parse_policy
from veilflow.policy.model import Policy
from veilflow.zones.db import with_database


@pytest.fixture(autouse=True)
def no_transports(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for k in (
        "OPENLINEAGE_URL",
        "OPENLINEAGE_CONFIG",
        "VEILFLOW_LINEAGE_FILE_DIR",
        "VEILFLOW_LINEAGE",
    ):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.chdir(tmp_path)
    transports._cache.clear()


@pytest.fixture
def policy_text(customers_policy_path: Path) -> str:
    return customers_policy_path.read_text().replace("chunk_rows: 50000", "chunk_rows: 700")


def publishing(policy: Policy) -> Policy:
    """The policy with the residual-PII threshold out of the way: these tests need a run
    that publishes (or fails for a reason they choose); the gate has tests of its own."""
    return policy.model_copy(
        update={"validation": policy.validation.model_copy(update={"residual_pii_max": 10**6})}
    )


def stored(conn: psycopg.Connection) -> list[dict[str, Any]]:
    cur = conn.execute(
        "SELECT event_id, run_id, stage, event_type, inputs, outputs, event,"
        " delivered, delivery_attempts, delivery_error"
        " FROM governance.lineage_events ORDER BY event_id"
    )
    names = [d.name for d in cur.description or []]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def test_run_with_marquez_down_publishes_stores_every_event_and_retry_delivers_them(
    seeded_db: str,
    conn: psycopg.Connection,
    policy_text: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    marquez: tuple[str, list[dict[str, Any]]],  # noqa: F811 - the imported fixture
) -> None:
    monkeypatch.setenv("OPENLINEAGE_URL", f"http://127.0.0.1:{closed_port()}")
    policy = publishing(parse_policy(policy_text))
    with caplog.at_level(logging.ERROR):
        summary = run_policy(policy, run_id="run-a", workers=1)
    assert summary.rows_published == 2000
    assert conn.execute("SELECT status FROM governance.runs").fetchall() == [("published",)]

    events = stored(conn)
    assert [(e["stage"], e["event_type"]) for e in events] == [
        ("extract", "START"),
        ("extract", "COMPLETE"),
        *[("transform", t) for _ in range(3) for t in ("START", "COMPLETE")],  # 3 chunks
        ("validate", "START"),
        ("validate", "COMPLETE"),
        ("publish", "START"),
        ("publish", "COMPLETE"),
    ]
    chunks = [
        e["event"]["run"]["facets"]["veilflow_anonymization"].get("chunk")
        for e in events
        if e["stage"] == "transform"
    ]
    assert chunks == [0, 0, 1, 1, 2, 2]
    spec = ls.require_spec()
    for e in events:
        assert event_errors(e["event"], spec) == [], (e["stage"], e["event_type"])
        parent = e["event"]["run"]["facets"]["parent"]  # in-process: the veilflow run itself
        assert parent["job"]["name"] == "customers"
        assert parent["run"]["runId"] == as_run_uuid("run-a")
    # Every event kept, each delivery failure recorded and reported loudly.
    assert all(e["delivered"] is False and e["delivery_attempts"] == 1 for e in events)
    assert all(e["delivery_error"] for e in events)
    assert "ConnectionError" in events[0]["delivery_error"]
    assert any(
        "lineage delivery to openlineage:http failed" in r.getMessage() for r in caplog.records
    )

    # Column lineage for every column the published table really has (from the catalog).
    actual = [
        r[0]
        for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'anonymized'"
            " AND table_name = 'customers' ORDER BY ordinal_position"
        )
    ]
    publish = events[-1]
    assert publish["outputs"] == ["anonymized.customers"]
    assert "restricted.customers" in publish["inputs"]
    (out,) = publish["event"]["outputs"]
    fields = out["facets"]["columnLineage"]["fields"]
    assert sorted(fields) == sorted(actual) and actual
    for column in actual:
        (inp,) = fields[column]["inputFields"]
        assert inp["name"].endswith(".restricted.customers") and inp["field"] == column
    email = fields["email"]["inputFields"][0]["transformations"][0]
    key = conn.execute(
        "SELECT key_id, version, wrapped FROM governance.data_keys"
        " WHERE key_id = 'customers/token' AND state = 'active'"
    ).fetchone()
    assert key is not None
    key_id, version, wrapped = key
    assert email["masking"] is True
    for e in events:  # not even the wrapped form of a key leaves the vault
        assert bytes(wrapped).hex() not in json.dumps(e["event"])
    assert f"with key {key_id} version {version}" in email["description"]
    assert out["outputFacets"]["outputStatistics"]["rowCount"] == 2000
    facet = publish["event"]["run"]["facets"]["veilflow_anonymization"]
    assert facet["rows"]["in"] == 2000 and facet["rows"]["out"] == 2000
    assert facet["gate"]["passed"] is True

    # Marquez comes back: a retry delivers every stored event, unchanged, oldest first.
    url, got = marquez
    monkeypatch.setenv("OPENLINEAGE_URL", url)
    result = retry_pending(conn)
    assert (result.delivered, result.pending, result.error) == (len(events), 0, None)
    assert got == [e["event"] for e in events]
    after = stored(conn)
    assert all(e["delivered"] is True and e["delivery_error"] is None for e in after)

    # The terminal view and the export read the same store.
    from veilflow.cli import app

    runner = CliRunner()
    shown = runner.invoke(app, ["lineage", "show", "customers", "--column", "email"])
    assert shown.exit_code == 0, shown.output
    assert "restricted.customers.email" in shown.output
    assert f"--tokenize [{key_id}@v{version}]-->" in shown.output
    assert "anonymized.customers.email" in shown.output
    assert "customer_id" not in shown.output.split("\n", 2)[2]
    out_dir = Path.cwd() / "export"
    exported = runner.invoke(
        app, ["lineage", "export", "--dataset", "customers", "--out", str(out_dir)]
    )
    assert exported.exit_code == 0, exported.output
    files = sorted(out_dir.glob("*.json"))
    assert [json.loads(f.read_text()) for f in files] == [e["event"] for e in events]
    # By table: the events that read or wrote it (publish only, for the anonymized table).
    exported = runner.invoke(
        app,
        [
            "lineage",
            "export",
            "--dataset",
            "anonymized.customers",
            "--out",
            str(Path.cwd() / "by_table"),
        ],
    )
    assert exported.exit_code == 0, exported.output
    by_table = sorted((Path.cwd() / "by_table").glob("*.json"))
    assert [f.name.split("-", 2)[2] for f in by_table] == [
        "customers.publish-START.json",
        "customers.publish-COMPLETE.json",
    ]


def test_quarantined_run_records_the_gate_failure_and_the_quarantine(
    seeded_db: str, conn: psycopg.Connection, policy_text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An operator that claims to hide values but passes them through: the gate must refuse.
    from veilflow import registry
    from veilflow.policy.operators import OPERATOR_CONFIGS
    from veilflow.transform.operators.basic import Keep

    class Leaky(Keep):
        name = "leaky"
        hides_raw = True

    monkeypatch.setitem(registry.OPERATORS, "leaky", Leaky)
    # A policy names only operators whose config the policy layer knows (ADR 0028).
    monkeypatch.setitem(OPERATOR_CONFIGS, "leaky", Leaky.Config)
    policy = publishing(
        parse_policy(re.sub(r"(?m)^  email: .*$", "  email: {action: leaky}", policy_text))
    )
    with pytest.raises(ValidationFailed):
        run_policy(policy, run_id="run-q", workers=1)
    events = stored(conn)
    assert [(e["stage"], e["event_type"]) for e in events][-3:] == [
        ("validate", "START"),
        ("validate", "FAIL"),
        ("quarantine", "COMPLETE"),
    ]
    spec = ls.require_spec()
    for e in events:
        assert event_errors(e["event"], spec) == []
    fail = events[-2]["event"]
    assert "gate refused" in fail["run"]["facets"]["errorMessage"]["message"]
    cand = fail["inputs"][1]
    failed = [
        a for a in cand["inputFacets"]["dataQualityAssertions"]["assertions"] if not a["success"]
    ]
    assert any(a.get("column") == "email" for a in failed), failed
    q = events[-1]
    (table,) = q["outputs"]
    assert table.startswith("quarantine.customers__")
    count = conn.execute(f'SELECT count(*) FROM quarantine."{table.split(".")[1]}"').fetchone()
    facet = q["event"]["run"]["facets"]["veilflow_anonymization"]
    assert count is not None and facet["rows"]["quarantined"] == count[0] > 0
    assert any(r.get("column") == "email" for r in facet["quarantine"]["reasons"])


def test_store_grants_pipeline_appends_auditor_reads(
    zones_db: str, conn: psycopg.Connection
) -> None:
    make_login(conn, "lin_pipe", "veilflow_pipeline")
    make_login(conn, "lin_audit", "veilflow_auditor")
    make_login(conn, "lin_ml", "veilflow_ml_engineer")
    with psycopg.connect(with_database(zones_db, conn.info.dbname, user="lin_pipe")) as pipe:
        emit_stage(
            pipe,
            stage="publish",
            event_type="COMPLETE",
            policy=ls.policy(),
            run_id=ls.RUN_ID,
            manifest=ls.manifest(),
        )
        pipe.commit()
        (event_id,) = pipe.execute("SELECT event_id FROM governance.lineage_events").fetchone() or (
            None,
        )
        assert event_id is not None
        pipe.execute(
            "UPDATE governance.lineage_events SET delivered = true WHERE event_id = %s", (event_id,)
        )
        pipe.commit()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            pipe.execute(
                "UPDATE governance.lineage_events SET event = '{}' WHERE event_id = %s", (event_id,)
            )
        pipe.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            pipe.execute("DELETE FROM governance.lineage_events")
    with psycopg.connect(with_database(zones_db, conn.info.dbname, user="lin_audit")) as audit:
        assert audit.execute("SELECT count(*) FROM governance.lineage_events").fetchone() == (1,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            audit.execute(
                "INSERT INTO governance.lineage_events (run_id, ol_run_id, dataset,"
                " job_namespace, job_name, stage, event_type, event_time, event)"
                " VALUES ('x', gen_random_uuid(), 'x', 'x', 'x', 'x', 'START', now(),"
                " '{}')"
            )
    with (
        psycopg.connect(with_database(zones_db, conn.info.dbname, user="lin_ml")) as ml,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        ml.execute("SELECT count(*) FROM governance.lineage_events")


def test_spooled_events_are_imported_when_the_database_is_back(
    zones_db: str, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VEILFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VEILFLOW_DATABASE_URL", f"postgresql://nobody@/x?host={tmp_path}")
    emit_stage(
        None,
        stage="extract",
        event_type="START",
        policy=ls.policy(),
        run_id=ls.RUN_ID,
        manifest=ls.manifest(),
    )
    assert len(list(spool_dir().glob("*.json"))) == 1
    monkeypatch.setenv("VEILFLOW_DATABASE_URL", zones_db)
    assert import_spool(conn) == 1
    assert list(spool_dir().glob("*.json")) == []
    (row,) = stored(conn)
    assert (row["run_id"], row["stage"], row["event_type"]) == (ls.RUN_ID, "extract", "START")
    assert row["delivered"] is None
