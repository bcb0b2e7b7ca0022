"""The expectations the gate derives from a policy, and the output formats they assert,
checked against what the real operators produce."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veilflow.policy.loader import parse_policy
from veilflow.transform.base import STRING, ChunkContext, ColumnContext
from veilflow.transform.keys import LocalKeyProvider
from veilflow.transform.operators.basic import Mask
from veilflow.transform.operators.generalize import Generalize
from veilflow.transform.operators.tokenize import Tokenize
from veilflow.validate.context import GateColumn, GateContext
from veilflow.validate.gx_suite import (
    build_expectations,
    gx_type_names,
    output_pattern,
    token_format_parts,
)
from veilflow.zones.run_tables import RunTables

POLICY = """
dataset: people
source: {table: restricted.people, key: person_id}
target: {table: anonymized.people}
columns:
  person_id: {action: tokenize}
  email:     {action: tokenize, keep_domain: true}
  phone:     {action: mask, keep_last: 2}
  zip:       {action: generalize, keep_prefix: 3}
  note:      {action: redact}
  age:       keep
  secret:    drop
"""


def _ctx() -> GateContext:
    policy = parse_policy(POLICY)
    cols = [
        GateColumn("person_id", "tokenize", True, "bigint", "text", True),
        GateColumn("email", "tokenize", True, "text", "text", True),
        GateColumn("phone", "mask", True, "text", "text", False),
        GateColumn("zip", "generalize", False, "character varying(10)", "text", True),
        GateColumn("note", "redact", True, "text", "text", False),
        GateColumn("age", "keep", False, "integer", "integer", False),
    ]
    return GateContext(
        policy=policy,
        tables=RunTables("people", "r1"),
        columns=cols,
        rows_in=1234,
        report_dir=Path("/nonexistent"),
    )


def test_suite_is_derived_from_the_policy() -> None:
    specs = build_expectations(_ctx(), suppressed=34)
    by = {(s.check, s.column): s for s in specs}
    assert by[("schema_columns", None)].kwargs["column_set"] == [
        "person_id",
        "email",
        "phone",
        "zip",
        "note",
        "age",
        "_vf_row",
        "_vf_canary",
    ]
    assert by[("row_count_parity", None)].kwargs == {"value": 1200}
    assert by[("schema_type", "age")].kwargs["type_list"] == ["INTEGER"]
    # Not-null exactly where the source column is NOT NULL.
    assert {c for (check, c) in by if check == "not_null"} == {"person_id", "email", "zip"}
    # Uniqueness for the deterministically transformed source key only.
    assert {c for (check, c) in by if check == "unique"} == {"person_id"}
    assert by[("format", "note")].gx_type == "ExpectColumnValuesToBeInSet"
    assert by[("format", "note")].kwargs["value_set"] == ["[REDACTED]"]
    assert ("format", "age") not in by and ("format", "secret") not in by
    assert {s.scope for s in specs if s.check.startswith("schema")} == {"table"}


@pytest.mark.parametrize(
    ("pg", "names"),
    [
        ("text", ["TEXT"]),
        ("numeric(12,2)", ["NUMERIC(12, 2)"]),
        ("timestamp with time zone", ["TIMESTAMP WITH TIME ZONE"]),
        ("character varying(20)", ["CHARACTER VARYING(20)", "VARCHAR(20)"]),
    ],
)
def test_gx_type_names(pg: str, names: list[str]) -> None:
    assert gx_type_names(pg) == sorted(names)


def _apply(op: object, values: list[str | None]) -> list[str | None]:
    series = pd.Series(values, dtype=STRING)
    frame = pd.DataFrame({"k": [str(i) for i in range(len(values))]})
    out = op.apply(series, ChunkContext(frame=frame, key_column="k"))  # type: ignore[attr-defined]
    return [None if pd.isna(v) else str(v) for v in out]


VALUES = [
    "ann@example.org",
    "bob.smith+1@mail.example.com",
    "odd@local@example.org",
    "x",
    "123-45-6789",
    "94107",
    "  spaced value  ",
    "Zoë Ünïcode",
]


@pytest.mark.parametrize(
    ("op_cls", "params"),
    [
        (Tokenize, {}),
        (Tokenize, {"keep_domain": True}),
        (Tokenize, {"prefix": "cust"}),
        (Mask, {}),
        (Mask, {"keep_last": 2}),
        (Mask, {"keep_first": 1, "keep_last": 3, "char": "#"}),
        (Generalize, {"keep_prefix": 3}),
        (Generalize, {"keep_prefix": 2, "fill": ""}),
    ],
)
def test_format_regex_accepts_every_real_output_and_rejects_raw(
    op_cls: type, params: dict[str, object]
) -> None:
    keys = LocalKeyProvider(b"\x01" * 32)
    op = op_cls(op_cls.Config(**params), ColumnContext("people", "c", keys))
    outputs = _apply(op, VALUES)
    col = GateColumn("c", op_cls.name, op_cls.hides_raw, "text", "text", False)
    pattern = output_pattern(col, params)
    assert pattern is not None
    rx = re.compile(pattern)
    assert all(rx.search(v) for v in outputs if v is not None), outputs
    if op_cls is Tokenize:  # a raw value is not a token
        assert not any(rx.search(v) for v in VALUES)
    if params.get("keep_domain"):  # one "@": the domain comes after the last one
        token = next(v for v in outputs if v is not None and "@" in v)
        assert not rx.search(token.replace("@", "@x@"))


@pytest.mark.parametrize(
    ("params", "values"),
    [
        ({"truncate": "year"}, ["1980-05-17", "2001-12-31", None]),
        ({"truncate": "month"}, ["1980-05-17", "2001-12-31 10:00:00+00"]),
        ({"truncate": "day"}, ["1980-05-17 23:59:59"]),
        ({"bucket": 10}, ["34", "0", "-5", "99"]),
        ({"bucket": 10, "bottom": 18, "top": 90}, ["5", "34", "95", "18"]),
    ],
)
def test_generalize_modes_match_their_format(
    params: dict[str, object], values: list[str | None]
) -> None:
    op = Generalize(
        Generalize.Config(**params), ColumnContext("people", "c", LocalKeyProvider(b"\x01" * 32))
    )
    outputs = _apply(op, values)
    pattern = output_pattern(GateColumn("c", "generalize", False, "text", "text", False), params)
    assert pattern is not None
    assert all(re.search(pattern, v) for v in outputs if v is not None), outputs


def _like(pattern: str, value: str) -> bool:
    """SQL LIKE with PostgreSQL's default backslash escape, by an independent translation."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.fullmatch("".join(out), value, flags=re.DOTALL) is not None


@pytest.mark.parametrize("prefix", ["tok", "cust7", "cust_id", "a%b"])
def test_token_format_parts_mean_exactly_the_format_regex(prefix: str) -> None:
    col = GateColumn("c", "tokenize", True, "text", "text", False)
    params = {"prefix": prefix}
    exact = output_pattern(col, params)
    parts = token_format_parts(col, params)
    assert exact is not None and parts is not None
    regex, like = parts
    # Near-misses around the real shape: digest lengths 24..28, stray '_', digits, case.
    piece = st.sampled_from(["a", "z", "2", "7", "8", "A", "_", "@", "0", "9", "v", "%"])
    near = st.builds(
        lambda v, d, tail: f"{prefix}_v{v}_{d}{tail}",
        st.sampled_from(["1", "12", "", "x", "1_2"]),
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz234567", min_size=24, max_size=28),
        st.lists(piece, max_size=3).map("".join),
    )

    @settings(max_examples=400, deadline=None)
    @given(st.one_of(near, st.text(max_size=40)))
    def agree(value: str) -> None:
        want = re.fullmatch(exact.strip("^$"), value) is not None
        got = re.fullmatch(regex.strip("^$"), value) is not None and _like(like, value)
        assert got == want, value

    agree()
    if not prefix.isalnum():  # the operator accepts alphanumeric prefixes only
        return
    token = _apply(
        Tokenize(
            Tokenize.Config(prefix=prefix),
            ColumnContext("people", "c", LocalKeyProvider(b"\x01" * 32)),
        ),
        ["x"],
    )[0]
    assert token is not None and re.fullmatch(regex.strip("^$"), token) and _like(like, token)
    assert token_format_parts(col, {"keep_domain": True}) is None
