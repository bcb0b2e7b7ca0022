"""The expectations the gate derives from a policy, and the output formats they assert,
checked against what the real operators produce."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from veilflow.policy.loader import parse_policy
from veilflow.transform.base import STRING, ChunkContext, ColumnContext
from veilflow.transform.keys import LocalKeyProvider
from veilflow.transform.operators.basic import Mask
from veilflow.transform.operators.generalize import Generalize
from veilflow.transform.operators.tokenize import Tokenize
from veilflow.validate.context import GateColumn, GateContext
from veilflow.validate.gx_suite import build_expectations, gx_type_names, output_pattern
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
    cols = [GateColumn("person_id", "tokenize", True, "bigint", "text", True),
            GateColumn("email", "tokenize", True, "text", "text", True),
            GateColumn("phone", "mask", True, "text", "text", False),
            GateColumn("zip", "generalize", False, "character varying(10)", "text", True),
            GateColumn("note", "redact", True, "text", "text", False),
            GateColumn("age", "keep", False, "integer", "integer", False)]
    return GateContext(policy=policy, tables=RunTables("people", "r1"), columns=cols,
                       rows_in=1234, report_dir=Path("/nonexistent"))


def test_suite_is_derived_from_the_policy() -> None:
    specs = build_expectations(_ctx(), suppressed=34)
    by = {(s.check, s.column): s for s in specs}
    assert by[("schema_columns", None)].kwargs["column_set"] == [
        "person_id", "email", "phone", "zip", "note", "age", "_vf_row", "_vf_canary"]
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


@pytest.mark.parametrize(("pg", "names"), [
    ("text", ["TEXT"]),
    ("numeric(12,2)", ["NUMERIC(12, 2)"]),
    ("timestamp with time zone", ["TIMESTAMP WITH TIME ZONE"]),
    ("character varying(20)", ["CHARACTER VARYING(20)", "VARCHAR(20)"]),
])
def test_gx_type_names(pg: str, names: list[str]) -> None:
    assert gx_type_names(pg) == sorted(names)


def _apply(op: object, values: list[str | None]) -> list[str | None]:
    series = pd.Series(values, dtype=STRING)
    frame = pd.DataFrame({"k": [str(i) for i in range(len(values))]})
    out = op.apply(series, ChunkContext(frame=frame, key_column="k"))  # type: ignore[attr-defined]
    return [None if pd.isna(v) else str(v) for v in out]


VALUES = ["ann@example.org", "bob.smith+1@mail.example.com", "x", "123-45-6789", "94107",
          "  spaced value  ", "Zoë Ünïcode"]


@pytest.mark.parametrize(("op_cls", "params"), [
    (Tokenize, {}),
    (Tokenize, {"keep_domain": True}),
    (Tokenize, {"prefix": "cust"}),
    (Mask, {}),
    (Mask, {"keep_last": 2}),
    (Mask, {"keep_first": 1, "keep_last": 3, "char": "#"}),
    (Generalize, {"keep_prefix": 3}),
    (Generalize, {"keep_prefix": 2, "fill": ""}),
])
def test_format_regex_accepts_every_real_output_and_rejects_raw(op_cls: type, params: dict[str, object]
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


@pytest.mark.parametrize(("params", "values"), [
    ({"truncate": "year"}, ["1980-05-17", "2001-12-31", None]),
    ({"truncate": "month"}, ["1980-05-17", "2001-12-31 10:00:00+00"]),
    ({"truncate": "day"}, ["1980-05-17 23:59:59"]),
    ({"bucket": 10}, ["34", "0", "-5", "99"]),
    ({"bucket": 10, "bottom": 18, "top": 90}, ["5", "34", "95", "18"]),
])
def test_generalize_modes_match_their_format(params: dict[str, object],
                                             values: list[str | None]) -> None:
    op = Generalize(Generalize.Config(**params),
                    ColumnContext("people", "c", LocalKeyProvider(b"\x01" * 32)))
    outputs = _apply(op, values)
    pattern = output_pattern(GateColumn("c", "generalize", False, "text", "text", False), params)
    assert pattern is not None
    assert all(re.search(pattern, v) for v in outputs if v is not None), outputs
