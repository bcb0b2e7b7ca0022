"""The validation gate on real runs: a clean candidate passes and publishes; each check
fails on purpose (raw SSN left in a note, canary leaked, token collision, dropped row, k
below threshold) and the gate quarantines, leaving the published version readable.

The per-chunk gate (ADR 0016) checks a chunk's outputs in the transform task, so a fault
is played where it would happen: a broken operator changes the outputs before the chunk is
checked and written (``transform_chunk``'s ``outputs_hook``), odd source data is written
into the snapshot before the chunks read it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import psycopg
import pytest
import yaml
from psycopg import sql
from sqlalchemy import event
from sqlalchemy.engine import Engine

from veilflow.errors import ValidationFailed
from veilflow.pipeline.keys import default_key_provider
from veilflow.pipeline.manifest import load_manifest
from veilflow.pipeline.plan import plan_policy
from veilflow.pipeline.stages import (
    extract,
    gate_context,
    publish,
    recompute_with,
    transform_chunk,
    validate,
)
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
    data.pop("releases", None)  # DP releases and risk ceilings have tests of their own
    data.pop("risk", None)
    data.pop("utility", None)
    data.pop("synthetic", None)
    data.pop("incremental", None)  # every run a full run; appending has tests of its own
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


#: A broken operator: changes the outputs of a chunk (raw rows, outputs) before the check.
Outputs = Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame]
Tamper = Callable[[psycopg.Connection, RunTables], None]


def stage(
    policy: Policy,
    run_id: str,
    *,
    source: Tamper | None = None,
    outputs: Outputs | None = None,
    url: str | None = None,
) -> RunTables:
    """extract + transform every chunk: the candidate waits in staging for the gate.
    ``source`` changes the snapshot before the chunks read it, ``outputs`` every chunk's
    outputs before they are checked and written."""
    keys = default_key_provider()
    ex = extract(policy, run_id, keys)
    rt = RunTables(policy.dataset, run_id)
    if source is not None:
        assert url is not None
        with psycopg.connect(url, autocommit=True) as c:
            source(c, rt)
    for chunk in ex.chunks:
        transform_chunk(policy, run_id, chunk, keys, outputs_hook=outputs)
    return rt


def refused(
    policy: Policy,
    run_id: str,
    url: str,
    *,
    source: Tamper | None = None,
    outputs: Outputs | None = None,
) -> ValidationFailed:
    stage(policy, run_id, source=source, outputs=outputs, url=url)
    with pytest.raises(ValidationFailed) as info:
        validate(policy, run_id)
    return info.value


def at(frame: pd.DataFrame, row: int) -> pd.Series:
    """The rows of a chunk's frame with snapshot number ``row``."""
    return frame["_vf_row"] == str(row)


def plain_notes(raw: pd.DataFrame, out: pd.DataFrame) -> pd.DataFrame:
    """Notes kept, but without personal data: what v1 of a note column publishes."""
    out.loc[out["note"].notna(), "note"] = "customer asked about fees"
    return out


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
    stage(policy, "v1", outputs=plain_notes)  # v1: notes without PII
    assert validate(policy, "v1").passed
    publish(policy, "v1")
    before = published(seeded_db)

    def leak_ssn(raw: pd.DataFrame, out: pd.DataFrame) -> pd.DataFrame:
        out = plain_notes(raw, out)
        row = at(out, 7) & raw["ssn"].notna() & out["note"].notna()
        out.loc[row, "note"] = "caller gave SSN " + raw.loc[row, "ssn"] + " to verify"
        return out

    err = refused(policy, "v2", seeded_db, outputs=leak_ssn)
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

    def leak_canary(raw: pd.DataFrame, out: pd.DataFrame) -> pd.DataFrame:
        # A broken operator passes canary e-mail addresses through in another column.
        canary = raw["_vf_canary"] == "t"
        out.loc[canary, "diagnosis"] = raw.loc[canary, "email"]
        return out

    err = refused(policy, "canary", seeded_db, outputs=leak_canary)
    assert "canaries" in failed_checks(err)
    reason = next(r for r in err.reasons if r["check"] == "canaries")
    assert reason["details"]["leaks"] == {"email->diagnosis": 4}, reason  # type: ignore[index]
    assert reason["observed"] == 4


def test_token_collision_is_quarantined(seeded_db: str) -> None:
    def collide(raw: pd.DataFrame, out: pd.DataFrame) -> pd.DataFrame:
        out.loc[at(out, 2), "email"] = out.loc[at(out, 1), "email"].iloc[0]
        return out

    err = refused(policy_with(), "collide", seeded_db, outputs=collide)
    reasons = {(r["check"], r["column"]) for r in err.reasons}
    assert ("token_unique", "email") in reasons
    assert ("token_joinable", "email") not in reasons


def test_key_token_collision_fails_uniqueness(seeded_db: str) -> None:
    def collide(raw: pd.DataFrame, out: pd.DataFrame) -> pd.DataFrame:
        out.loc[at(out, 3), "customer_id"] = out.loc[at(out, 1), "customer_id"].iloc[0]
        return out

    err = refused(policy_with(), "keycollide", seeded_db, outputs=collide)
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
    policy = policy_with()

    def plant(c: psycopg.Connection, rt: RunTables) -> None:
        # Row 4's raw e-mail becomes the token row 1's e-mail gets.
        row = c.execute(sql.SQL("SELECT email FROM {} WHERE _vf_row = 1").format(rt.snapshot))
        (email,) = row.fetchone() or ("",)
        recompute = recompute_with(plan_policy(policy, default_key_provider()))
        token = recompute("email", pd.Series([email], dtype="string[pyarrow]")).iloc[0]
        c.execute(
            sql.SQL("UPDATE {} SET email = %s WHERE _vf_row = 4").format(rt.snapshot), (token,)
        )

    err = refused(policy, "shaped", seeded_db, source=plant)
    assert observed(err, "no_raw_value_survives", "email") == 1


def test_raw_value_in_a_canary_row_is_found(seeded_db: str) -> None:
    """GX checks the formats of real rows only; a canary row whose output is a raw value is
    caught by testing the canaries' outputs beside the raw values."""

    def plant(raw: pd.DataFrame, out: pd.DataFrame) -> pd.DataFrame:
        first_canary = (raw["_vf_canary"] == "t").idxmax()
        out.loc[first_canary, "email"] = raw.loc[at(raw, 1), "email"].iloc[0]
        return out

    policy = policy_with(validation={"canaries": 3})
    err = refused(policy, "canaryraw", seeded_db, outputs=plant)
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
    def tamper(raw: pd.DataFrame, out: pd.DataFrame) -> pd.DataFrame:
        out.loc[at(out, 2), "ssn"] = None
        out.loc[at(out, 3), "credit_card"] = "x" + out.loc[at(out, 3), "credit_card"]
        out.loc[at(out, 4), "ssn"] = raw.loc[at(raw, 4), "ssn"]
        return out

    err = refused(policy_with(), "rowchecks", seeded_db, outputs=tamper)
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

    def forward(raw: pd.DataFrame, out: pd.DataFrame) -> pd.DataFrame:
        out = plain_notes(raw, out)
        out.loc[at(out, 9), "note"] = f"forwarded to {shaped}."
        return out

    err = refused(
        policy_with({"note": {"action": "keep"}}),
        "tokenword",
        seeded_db,
        source=plant,
        outputs=forward,
    )
    assert observed(err, "no_raw_value_in_text", "note") == 1


def test_dropped_row_is_quarantined(seeded_db: str) -> None:
    def drop_row(raw: pd.DataFrame, out: pd.DataFrame) -> pd.DataFrame:
        return out[~at(out, 5)]

    err = refused(policy_with(), "dropped", seeded_db, outputs=drop_row)
    reason = next(r for r in err.reasons if r["check"] == "row_count_parity")
    assert (reason["observed"], reason["threshold"]) == (1999, 2000)


def test_k_below_threshold_fails(seeded_db: str) -> None:
    policy = policy_with(privacy={"k": 3})
    err = refused(policy, "lowk", seeded_db)
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
    err = refused(policy, "toomuch", seeded_db)
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
