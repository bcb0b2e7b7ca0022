"""The validation gate on real runs: a clean candidate passes and publishes; each check
fails on purpose (raw SSN left in a note, canary leaked, token collision, dropped row, k
below threshold) and the gate quarantines, leaving the published version readable."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
import yaml
from psycopg import sql
from sqlalchemy import event
from sqlalchemy.engine import Engine

from veilflow.errors import ValidationFailed
from veilflow.pipeline.keys import default_key_provider
from veilflow.pipeline.manifest import load_manifest
from veilflow.pipeline.stages import extract, gate_context, publish, transform_chunk, validate
from veilflow.policy.loader import parse_policy
from veilflow.policy.model import Policy
from veilflow.validate.gx_suite import GATE_WORK_MEM, build_expectations, run_expectations
from veilflow.zones.run_tables import RunTables

pytestmark = pytest.mark.slow

BASE = Path(__file__).resolve().parents[2] / "policies" / "customers.yaml"


def policy_with(
    columns: dict[str, object] | None = None,
    privacy: dict[str, object] | None = None,
    validation: dict[str, object] | None = None,
) -> Policy:
    """The demo policy with columns and sections overridden. The base for these tests keeps
    the gate's inputs simple and deterministic: readable key tokens, a redacted note, no
    risk thresholds and no canaries unless a test sets them."""
    data = yaml.safe_load(BASE.read_text())
    data["columns"].update(
        {"customer_id": {"action": "tokenize"}, "note": {"action": "redact"}}, **(columns or {})
    )
    data["privacy"] = {
        "quasi_identifiers": ["zip", "birth_date", "gender"],
        "sensitive": "diagnosis",
        **(privacy or {}),
    }
    data["validation"] = {"canaries": 0, **(validation or {})}
    return parse_policy(yaml.safe_dump(data), file="test-policy.yaml")


def stage(policy: Policy, run_id: str) -> RunTables:
    """extract + transform every chunk: the candidate waits in staging for the gate."""
    keys = default_key_provider()
    ex = extract(policy, run_id, keys)
    for chunk in ex.chunks:
        transform_chunk(policy, run_id, chunk, keys)
    return RunTables(policy.dataset, run_id)


def refused(
    policy: Policy, run_id: str, tamper: Callable[[psycopg.Connection, RunTables], None], url: str
) -> ValidationFailed:
    rt = stage(policy, run_id)
    with psycopg.connect(url, autocommit=True) as c:
        tamper(c, rt)
    with pytest.raises(ValidationFailed) as info:
        validate(policy, run_id)
    return info.value


def tampering(*statements: str) -> Callable[[psycopg.Connection, RunTables], None]:
    """A tamper step that runs each statement with ``{snap}`` and ``{cand}`` filled in."""

    def tamper(c: psycopg.Connection, rt: RunTables) -> None:
        for statement in statements:
            c.execute(sql.SQL(statement).format(snap=rt.snapshot, cand=rt.candidate))  # type: ignore[arg-type]

    return tamper


def observed(err: ValidationFailed, check: str, column: str) -> object:
    """The observed value of the failed check ``check`` on ``column``."""
    return next(r for r in err.reasons if r["check"] == check and r["column"] == column)["observed"]


def failed_checks(err: ValidationFailed) -> set[str]:
    return {str(r["check"]) for r in err.reasons}


def published(url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as c:
        return c.execute("SELECT * FROM anonymized.customers ORDER BY customer_id").fetchall()


def test_clean_run_passes_publishes_and_keeps_values_out_of_the_report(seeded_db: str) -> None:
    policy = policy_with(validation={"canaries": 3})
    stage(policy, "clean")
    report = validate(policy, "clean")
    assert report.passed, report.reasons()
    names = {c.name for c in report.checks}
    assert {
        "schema_columns",
        "schema_type",
        "row_count_parity",
        "not_null",
        "format",
        "unique",
        "no_raw_value_survives",
        "null_parity",
        "token_unique",
        "token_joinable",
        "canaries",
        "residual_pii",
        "k_anonymity",
    } <= names
    assert report.data_docs and Path(report.data_docs).is_file()
    html = Path(report.data_docs).read_text()
    assert "customers" in html
    # No raw value of a personal column reaches the report (checked against the source).
    text = json.dumps(report.to_dict(), default=str)
    with psycopg.connect(seeded_db) as c:
        raw = c.execute(
            "SELECT ssn, email, full_name FROM restricted.customers WHERE ssn IS NOT NULL LIMIT 200"
        ).fetchall()
    assert not any(v in text for row in raw for v in row)
    assert publish(policy, "clean").rows == 2000


def test_raw_ssn_left_in_a_note_is_quarantined_and_the_published_version_stays(
    seeded_db: str,
) -> None:
    policy = policy_with({"note": {"action": "keep"}})
    stage(policy, "v1")
    with psycopg.connect(seeded_db, autocommit=True) as c:  # v1: notes without PII
        c.execute(
            sql.SQL(
                "UPDATE {} SET note = 'customer asked about fees' WHERE note IS NOT NULL"
            ).format(RunTables("customers", "v1").candidate)
        )
    assert validate(policy, "v1").passed
    publish(policy, "v1")
    before = published(seeded_db)

    def leak_ssn(c: psycopg.Connection, rt: RunTables) -> None:
        c.execute(
            sql.SQL(
                "UPDATE {cand} o SET note = 'caller gave SSN ' || s.ssn || ' to verify'"
                " FROM {snap} s WHERE s._vf_row = o._vf_row AND s.ssn IS NOT NULL"
                " AND o._vf_row = 7 AND o.note IS NOT NULL"
            ).format(cand=rt.candidate, snap=rt.snapshot)
        )
        c.execute(
            sql.SQL(
                "UPDATE {} SET note = 'customer asked about fees'"
                " WHERE _vf_row <> 7 AND note IS NOT NULL"
            ).format(rt.candidate)
        )

    err = refused(policy, "v2", leak_ssn, seeded_db)
    assert {"residual_pii", "no_raw_value_in_text"} <= failed_checks(err)
    assert "quarantined as quarantine." in str(err)
    # The message and reasons carry check names and counts, never the SSN.
    with psycopg.connect(seeded_db) as c:
        ssn = c.execute("SELECT ssn FROM restricted.customers WHERE ssn IS NOT NULL").fetchall()
        quarantined = c.execute(
            "SELECT reasons FROM governance.quarantined WHERE run_id = 'v2'"
        ).fetchone()
    dumped = json.dumps(err.reasons) + str(err)
    assert not any(s[0] in dumped for s in ssn)
    assert quarantined is not None
    assert published(seeded_db) == before  # the previous version is untouched and readable


def test_leaked_canary_is_quarantined(seeded_db: str) -> None:
    policy = policy_with(validation={"canaries": 4})

    def leak_canary(c: psycopg.Connection, rt: RunTables) -> None:
        # A broken operator passes canary e-mail addresses through in another column.
        c.execute(
            sql.SQL(
                "UPDATE {cand} o SET diagnosis = s.email FROM {snap} s"
                " WHERE s._vf_row = o._vf_row AND s._vf_canary"
            ).format(cand=rt.candidate, snap=rt.snapshot)
        )

    err = refused(policy, "canary", leak_canary, seeded_db)
    assert "canaries" in failed_checks(err)
    reason = next(r for r in err.reasons if r["check"] == "canaries")
    assert reason["details"]["leaks"] == {"email->diagnosis": 4}, reason  # type: ignore[index]
    assert reason["observed"] == 4


def test_token_collision_is_quarantined(seeded_db: str) -> None:
    def collide(c: psycopg.Connection, rt: RunTables) -> None:
        c.execute(
            sql.SQL(
                "UPDATE {cand} SET email = (SELECT email FROM {cand} WHERE _vf_row = 1)"
                " WHERE _vf_row = 2"
            ).format(cand=rt.candidate)
        )

    err = refused(policy_with(), "collide", collide, seeded_db)
    reasons = {(r["check"], r["column"]) for r in err.reasons}
    assert ("token_unique", "email") in reasons
    assert ("token_joinable", "email") not in reasons


def test_key_token_collision_fails_uniqueness(seeded_db: str) -> None:
    def collide(c: psycopg.Connection, rt: RunTables) -> None:
        c.execute(
            sql.SQL(
                "UPDATE {cand} SET customer_id = (SELECT customer_id FROM {cand} WHERE _vf_row = 1)"
                " WHERE _vf_row = 3"
            ).format(cand=rt.candidate)
        )

    err = refused(policy_with(), "keycollide", collide, seeded_db)
    reasons = {(r["check"], r["column"]) for r in err.reasons}
    assert {("unique", "customer_id"), ("token_unique", "customer_id")} <= reasons
    # GX found the duplicate; its Data Docs show counts, never the duplicated value.
    with psycopg.connect(seeded_db) as c:
        manifest = c.execute(
            "SELECT manifest FROM governance.runs WHERE run_id = 'keycollide'"
        ).fetchone()
        token = c.execute(
            "SELECT customer_id FROM quarantine.{} WHERE _vf_row = 1".format(
                f'"customers__{RunTables("customers", "keycollide").tag}"'
            )
        ).fetchone()
    assert manifest is not None and token is not None
    docs = Path(manifest[0]["gate"]["data_docs"]).parent
    pages = [p.read_text() for p in docs.rglob("*.html")]
    assert len(pages) >= 3 and any(
        "expect_column_values_to_be_unique" in p or "unique" in p for p in pages
    )
    assert not any(token[0] in p for p in pages)


def test_raw_value_shaped_like_a_token_is_compared_value_for_value(seeded_db: str) -> None:
    """The cheap proof (no raw value has the output's format) does not hold when a raw
    e-mail looks like a token; the gate then compares values and finds the one that
    survived in another row."""

    plant = tampering(
        "UPDATE {snap} SET email = (SELECT email FROM {cand} WHERE _vf_row = 1) WHERE _vf_row = 4"
    )
    err = refused(policy_with(), "shaped", plant, seeded_db)
    assert observed(err, "no_raw_value_survives", "email") == 1


def test_raw_value_in_a_canary_row_is_found(seeded_db: str) -> None:
    """GX checks the formats of real rows only; a canary row whose output is a raw value is
    caught by testing the canaries' outputs beside the raw values."""
    plant = tampering(
        "UPDATE {cand} SET email = (SELECT email FROM {snap} WHERE _vf_row = 1)"
        " WHERE _vf_row = (SELECT min(_vf_row) FROM {cand} WHERE _vf_canary)"
    )
    err = refused(policy_with(validation={"canaries": 3}), "canaryraw", plant, seeded_db)
    assert observed(err, "no_raw_value_survives", "email") == 1


def test_clean_columns_rest_on_the_format_proof(seeded_db: str) -> None:
    policy = policy_with()
    stage(policy, "proof")
    report = validate(policy, "proof")
    survives = {c.column: c for c in report.checks if c.name == "no_raw_value_survives"}
    assert survives["email"].passed and "proof" in survives["email"].details
    assert survives["phone"].passed and survives["ip_address"].passed


def test_row_checks_catch_a_lost_null_a_broken_shape_and_a_value_left_in_its_row(
    seeded_db: str,
) -> None:
    tamper = tampering(
        "UPDATE {cand} SET ssn = NULL WHERE _vf_row = 2",
        "UPDATE {cand} SET credit_card = 'x' || credit_card WHERE _vf_row = 3",
        "UPDATE {cand} o SET ssn = s.ssn FROM {snap} s WHERE o._vf_row = 4 AND s._vf_row = 4",
    )
    err = refused(policy_with(), "rowchecks", tamper, seeded_db)
    found = {(r["check"], r["column"]): r["observed"] for r in err.reasons}
    assert found[("null_parity", "ssn")] == 1
    assert found[("format_preserved", "credit_card")] == 1
    assert found[("no_raw_value_survives", "ssn")] == 1
    assert ("null_parity", "credit_card") not in found


def test_raw_value_shaped_like_a_token_is_still_found_in_text(seeded_db: str) -> None:
    """Token-shaped words are left out of the text search only while no raw value looks
    like a token: a raw value that does, copied into a note, is found."""
    shaped = "tok_v1_" + "b" * 26

    def plant(c: psycopg.Connection, rt: RunTables) -> None:
        c.execute(
            sql.SQL("UPDATE {} SET iban = %s WHERE _vf_row = 5").format(rt.snapshot), (shaped,)
        )
        c.execute(
            sql.SQL(
                "UPDATE {} SET note = 'customer asked about fees' WHERE note IS NOT NULL"
            ).format(rt.candidate)
        )
        c.execute(
            sql.SQL("UPDATE {} SET note = %s WHERE _vf_row = 9").format(rt.candidate),
            (f"forwarded to {shaped}.",),
        )

    err = refused(policy_with({"note": {"action": "keep"}}), "tokenword", plant, seeded_db)
    assert observed(err, "no_raw_value_in_text", "note") == 1


def test_dropped_row_is_quarantined(seeded_db: str) -> None:
    def drop_row(c: psycopg.Connection, rt: RunTables) -> None:
        c.execute(sql.SQL("DELETE FROM {} WHERE _vf_row = 5").format(rt.candidate))

    err = refused(policy_with(), "dropped", drop_row, seeded_db)
    reason = next(r for r in err.reasons if r["check"] == "row_count_parity")
    assert (reason["observed"], reason["threshold"]) == (1999, 2000)


def test_k_below_threshold_fails(seeded_db: str) -> None:
    policy = policy_with(privacy={"k": 3})
    err = refused(policy, "lowk", lambda c, rt: None, seeded_db)
    reason = next(r for r in err.reasons if r["check"] == "k_anonymity")
    assert reason["observed"] == 1 and reason["threshold"] == 3


def test_suppression_removes_small_classes_counts_them_and_passes(seeded_db: str) -> None:
    """QI gender only: classes F, M and the rare X. With k above the size of X but below
    F and M, suppression removes exactly the X rows (counted from the source)."""
    with psycopg.connect(seeded_db) as c:
        sizes = dict(
            c.execute(
                "SELECT gender, count(*) FROM restricted.customers GROUP BY gender"
            ).fetchall()
        )
    k = sizes["X"] + 1
    assert k <= min(sizes["F"], sizes["M"])
    policy = policy_with(
        privacy={"quasi_identifiers": ["gender"], "k": k, "on_violation": "suppress"}
    )
    stage(policy, "suppress")
    report = validate(policy, "suppress")
    assert report.passed, report.reasons()
    assert report.suppressed_rows == sizes["X"]
    risk = report.metrics["risk"]
    assert risk["before"]["k"] == sizes["X"] and risk["after"]["k"] == min(sizes["F"], sizes["M"])
    parity = next(c for c in report.checks if c.name == "row_count_parity")
    assert parity.observed == 2000 - sizes["X"]
    assert publish(policy, "suppress").rows == 2000 - sizes["X"]


def test_suppression_beyond_the_bound_fails(seeded_db: str) -> None:
    policy = policy_with(privacy={"k": 2, "on_violation": "suppress", "max_suppression": 0.01})
    err = refused(policy, "toomuch", lambda c, rt: None, seeded_db)
    reason = next(r for r in err.reasons if r["check"] == "suppression")
    assert reason["observed"] > reason["threshold"] == 20  # type: ignore[operator]


def test_gx_fetches_counts_not_rows_and_leaves_canaries_out(seeded_db: str) -> None:
    """GX must run whole-table checks in PostgreSQL: no statement it sends may return the
    candidate's rows to Python (a query asset made GX fetch every row to learn its
    columns). Expectations on real rows leave the planted canaries out: the row count is
    that of the source, though the candidate holds the canaries too."""
    policy = policy_with(validation={"canaries": 3})
    rt = stage(policy, "gxrows")
    fetched: list[tuple[int, str]] = []

    work_mem: list[str] = []

    def count_rows(
        conn: object, cursor: psycopg.Cursor[object], statement: str, *args: object
    ) -> None:
        fetched.append((cursor.rowcount, " ".join(statement.split())[:120]))
        if not work_mem:  # the session GX validates in has the gate's memory setting
            work_mem.append(str(cursor.connection.execute("SHOW work_mem").fetchone()))

    with psycopg.connect(seeded_db) as c:
        ctx = gate_context(policy, "gxrows", load_manifest(c, "gxrows"))
        in_candidate = c.execute(sql.SQL("SELECT count(*) FROM {}").format(rt.candidate)).fetchone()
        event.listen(Engine, "after_cursor_execute", count_rows)
        try:
            checks, docs = run_expectations(c, ctx, build_expectations(ctx), None)
        finally:
            event.remove(Engine, "after_cursor_execute", count_rows)
    assert in_candidate == (2003,) and docs is None
    assert work_mem == [f"('{GATE_WORK_MEM}',)"]
    assert fetched, "GX sent no SQL"
    most = max(fetched)
    assert most[0] <= len(ctx.columns) + 2, most  # catalog rows at most, never data rows
    assert all(c.passed for c in checks), [c.name for c in checks if not c.passed]
    parity = next(c for c in checks if c.name == "row_count_parity")
    assert parity.observed == 2000
    nulls = [c for c in checks if c.name == "not_null"]
    assert nulls and all(c.details["checked"] == 2000 for c in nulls)
