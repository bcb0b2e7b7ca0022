"""The per-chunk gate (ADR 0016) on real runs: what the chunks count equals what GX and the
SQL checks count on the same candidate; k, l and t from the merged class histograms equal
the figures measured on the table; checks that need the whole run see across chunks; and a
chunk whose summary or sketches are missing or malformed fails the gate and quarantines
the candidate."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import psycopg
import pytest
import yaml
from psycopg import sql

from veilflow.errors import ValidationFailed
from veilflow.pipeline.keys import default_key_provider
from veilflow.pipeline.manifest import load_manifest
from veilflow.pipeline.stages import extract, gate_context, transform_chunk, validate
from veilflow.policy.loader import parse_policy
from veilflow.policy.model import Policy
from veilflow.validate.chunk_gate import matches
from veilflow.validate.gate_risk import chunk_spans
from veilflow.validate.gx_suite import (
    PER_ROW,
    build_expectations,
    output_pattern,
    run_expectations,
    spec_key,
)
from veilflow.validate.merge import histogram_metrics, load_summaries, merged_histogram
from veilflow.validate.privacy import table_risk
from veilflow.zones.run_tables import RunTables

pytestmark = pytest.mark.slow

BASE = Path(__file__).resolve().parents[2] / "policies" / "customers.yaml"
Outputs = Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame]


def chunked_policy(**privacy: object) -> Policy:
    """The demo policy in chunks of 700 rows (three chunks of the 2,000-row table)."""
    data = yaml.safe_load(BASE.read_text())
    data.pop("releases", None)  # DP releases and risk ceilings have tests of their own
    data.pop("risk", None)
    data.pop("utility", None)
    data.pop("synthetic", None)
    data.pop("incremental", None)  # every run a full run; appending has tests of its own
    data["columns"].update({"customer_id": {"action": "tokenize"}, "note": {"action": "redact"}})
    data["chunk_rows"] = 700
    data["privacy"] = {
        "quasi_identifiers": ["zip", "birth_date", "gender"],
        "sensitive": "diagnosis",
        **privacy,
    }
    data["validation"] = {"canaries": 3}
    return parse_policy(yaml.safe_dump(data), file="chunked.yaml")


def stage(
    policy: Policy,
    run_id: str,
    outputs: Outputs | None = None,
    url: str | None = None,
    source: str | None = None,
) -> RunTables:
    keys = default_key_provider()
    ex = extract(policy, run_id, keys)
    rt = RunTables(policy.dataset, run_id)
    if source is not None:
        assert url is not None
        with psycopg.connect(url, autocommit=True) as c:
            c.execute(sql.SQL(source).format(snap=rt.snapshot))  # type: ignore[arg-type]
    for chunk in ex.chunks:
        transform_chunk(policy, run_id, chunk, keys, outputs_hook=outputs)
    return rt


def at(frame: pd.DataFrame, row: int) -> pd.Series:
    return frame["_vf_row"] == str(row)


def reasons(err: ValidationFailed) -> dict[tuple[str, str | None], object]:
    return {(str(r["check"]), r["column"]): r["observed"] for r in err.reasons}  # type: ignore[misc]


def test_chunks_count_what_gx_counts_in_postgresql(seeded_db: str) -> None:
    """Every expectation the chunks decide, summed over three chunks, equals GX's own count
    on the written candidate in PostgreSQL, broken rows included (a mask with a letter too
    many, a NULL where the source has none, a token without its digest's length)."""
    policy = chunked_policy(k=1)

    def break_some(raw: pd.DataFrame, out: pd.DataFrame) -> pd.DataFrame:
        out.loc[at(out, 5), "phone"] = "x" + out.loc[at(out, 5), "phone"]
        out.loc[at(out, 900), "customer_id"] = None
        out.loc[at(out, 1500), "email"] = "tok_v1_abc@example.org"
        out.loc[at(out, 1501), "zip"] = "12\n3**"
        return out

    stage(policy, "counts", break_some)
    with psycopg.connect(seeded_db) as c:
        ctx = gate_context(policy, "counts", load_manifest(c, "counts"))
        summaries = load_summaries(c, ctx, chunk_spans(ctx))
        specs = [s for s in build_expectations(ctx) if s.gx_type in PER_ROW]
        gx_checks, _ = run_expectations(c, ctx, specs, None)
    assert len(summaries.chunks) == 3 and len(gx_checks) == len(specs)
    for spec, check in zip(specs, gx_checks, strict=True):
        ours = sum(s.expectations[spec_key(spec)].unexpected for s in summaries.chunks)
        assert (spec_key(spec), ours) == (spec_key(spec), check.observed)
    assert sum(check.observed for check in gx_checks) >= 4  # type: ignore[misc]


def test_format_patterns_read_as_postgresql_reads_them(conn: psycopg.Connection) -> None:
    """Arrow's regular expressions and PostgreSQL's agree on every output pattern the gate
    generates, on values made to split them (a newline, a trailing newline, letters outside
    ASCII, an empty text)."""
    policy = chunked_policy()
    patterns = {
        output_pattern(col, dict(spec.params))
        for name, spec in policy.columns.items()
        for col in [_column(name, spec.action)]
    } - {None}
    values = [
        "",
        "\n",
        "abc\n",
        "12345",
        "123**",
        "1990",
        "1990\n",
        "*****12",
        "ab\ncd**",
        "tok_v1_" + "a" * 26,
        "tok_v1_" + "a" * 26 + "@exämple.org",
        "tok_v1_" + "a" * 26 + "\n",
        "Ünïcode",
        "20-29",
        "90+",
    ]
    import pyarrow as pa

    for pattern in patterns:
        assert pattern is not None
        ours = matches(pa.array(values, pa.string()), pattern).to_pylist()
        theirs = [
            conn.execute("SELECT %s::text ~ %s", (v, pattern)).fetchone()[0]  # type: ignore[index]
            for v in values
        ]
        assert ours == theirs, pattern


def _column(name: str, action: str) -> object:
    from veilflow.validate.context import GateColumn

    return GateColumn(name, action, True, "text", "text", False)


@pytest.mark.parametrize("privacy", [{"k": 1}, {"k": 1, "distance": "equal", "t": 1.0}])
def test_k_l_t_from_summaries_equal_the_table(seeded_db: str, privacy: dict[str, object]) -> None:
    """Merged from three chunks' class histograms, k, l, the class sizes and t are those
    PostgreSQL measures on the written candidate, to the last digit reported."""
    policy = chunked_policy(**privacy)

    def some_nulls(raw: pd.DataFrame, out: pd.DataFrame) -> pd.DataFrame:
        out.loc[at(out, 10) | at(out, 1200), "zip"] = None
        out.loc[at(out, 11) | at(out, 1300), "diagnosis"] = None
        return out

    rt = stage(policy, "risk", some_nulls)
    with psycopg.connect(seeded_db) as c:
        ctx = gate_context(policy, "risk", load_manifest(c, "risk"))
        hist = merged_histogram(ctx, load_summaries(c, ctx, chunk_spans(ctx)))
        assert hist is not None
        ours = histogram_metrics(ctx, hist)
        table = table_risk(
            c, f'staging."{rt.candidate_name}"', ["zip", "birth_date", "gender"], "diagnosis"
        )
    assert (ours.rows, ours.classes, ours.k, ours.l, ours.class_sizes) == (
        table.rows,
        table.classes,
        table.k,
        table.l,
        table.class_sizes,
    )
    assert ours.t is not None and table.t is not None
    assert ours.to_dict() == table.to_dict()
    assert abs(ours.t - table.t) < 1e-12


def test_tokens_are_checked_across_chunks(seeded_db: str) -> None:
    """Row 1 (first chunk) and row 1,500 (last chunk) share an original. Unchanged, their
    tokens agree and the gate passes them; when the last chunk's operator gives that
    original another token, and another row of it the first chunk's token of a different
    original, the gate finds both though no chunk could alone."""
    policy = chunked_policy(k=1)
    same = (
        "UPDATE {snap} SET email = (SELECT email FROM {snap} WHERE _vf_row = 1)"
        " WHERE _vf_row = 1500"
    )
    stage(policy, "across", url=seeded_db, source=same)
    assert validate(policy, "across").passed

    seen: dict[str, str] = {}

    def split(raw: pd.DataFrame, out: pd.DataFrame) -> pd.DataFrame:
        has_ssn = raw["ssn"].notna()
        if at(out, 1).any():
            seen["ssn"] = str(out.loc[has_ssn, "ssn"].iloc[0])
        if at(out, 1500).any():
            out.loc[at(out, 1500), "email"] = "tok_v1_" + "b" * 26 + "@x.org"
            later = has_ssn & (raw["_vf_row"].astype(int) > 1500)
            out.loc[later[later].index[0], "ssn"] = seen["ssn"]
        return out

    stage(policy, "across2", split, url=seeded_db, source=same)
    with pytest.raises(ValidationFailed) as info:
        validate(policy, "across2")
    got = reasons(info.value)
    assert got[("token_joinable", "email")] == 1
    assert got[("token_unique", "ssn")] == 1
    assert ("token_unique", "email") not in got and ("token_joinable", "ssn") not in got


def test_a_missing_or_malformed_summary_fails_the_gate_and_quarantines(seeded_db: str) -> None:
    """Each way a chunk's record can be wrong: no summary, not an object, a field of the
    wrong type, a negative count, a count of other rows, another key range, a sketch that
    is gone or cut short. Each fails the gate on ``chunk_summaries`` naming the chunk, and
    the candidate goes to quarantine."""
    policy = chunked_policy(k=1)
    breaks = {
        "none": "UPDATE governance.run_chunks SET summary = NULL WHERE run_id = %s AND chunk = 1",
        "array": "UPDATE governance.run_chunks SET summary = '[]' WHERE run_id = %s AND chunk = 1",
        "type": "UPDATE governance.run_chunks SET summary = jsonb_set(summary, '{rows}',"
        " '\"many\"') WHERE run_id = %s AND chunk = 1",
        "negative": "UPDATE governance.run_chunks SET summary = jsonb_set(summary,"
        " '{row_checks,null_parity|email}', '-1') WHERE run_id = %s AND chunk = 1",
        "lacking": "UPDATE governance.run_chunks SET summary = summary #- "
        "'{expectations}' || '{\"expectations\": {}}' WHERE run_id = %s AND chunk = 1",
        "rows": "UPDATE governance.run_chunks SET rows = rows - 1 WHERE run_id = %s AND chunk = 1",
        "range": "UPDATE governance.run_chunks SET summary = jsonb_set(summary, '{lo}', '2')"
        " WHERE run_id = %s AND chunk = 0",
        "gone": "DELETE FROM governance.run_chunks WHERE run_id = %s AND chunk = 2",
    }
    for name, statement in breaks.items():
        run = f"bad-{name}"
        stage(policy, run)
        with psycopg.connect(seeded_db, autocommit=True) as c:
            c.execute(statement, (run,))
        with pytest.raises(ValidationFailed) as info:
            validate(policy, run)
        got = reasons(info.value)
        # A chunk with no record at all is caught a step earlier, by the chunk count.
        want = "chunks_complete" if name == "gone" else "chunk_summaries"
        assert set(got) == {(want, None)}, (name, got)
        with psycopg.connect(seeded_db) as c:
            moved = c.execute(
                "SELECT quarantine_table FROM governance.quarantined WHERE run_id = %s", (run,)
            ).fetchone()
            status = c.execute("SELECT status FROM governance.runs WHERE run_id = %s", (run,))
            assert status.fetchone() == ("quarantined",)
        assert moved is not None and moved[0], name

    for name, statement in {
        "sketch gone": "DELETE FROM {sk} WHERE chunk = 1 AND name = 'pairs|email'",
        "sketch cut": "UPDATE {sk} SET data = substring(data FROM 9) WHERE chunk = 0"
        " AND name = 'pairs|ssn'",
        "sketch odd": "UPDATE {sk} SET data = data || '\\x00'::bytea WHERE chunk = 0"
        " AND name = 'risk'",
    }.items():
        run = "bad-" + name.replace(" ", "-")
        rt = stage(policy, run)
        with psycopg.connect(seeded_db, autocommit=True) as c:
            c.execute(sql.SQL(statement).format(sk=rt.sketches))  # type: ignore[arg-type]
        with pytest.raises(ValidationFailed) as info:
            validate(policy, run)
        assert set(reasons(info.value)) == {("chunk_summaries", None)}, name
    # The reasons name chunks and checks, never a value.
    text = json.dumps(info.value.reasons)
    assert "chunk 0" in text and "@" not in text
