"""Generalization modes: prefix (as before), numeric buckets with top/bottom coding, dates."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from veilflow.errors import TransformError
from veilflow.transform.base import STRING, ChunkContext, ColumnContext
from veilflow.transform.keys import LocalKeyProvider
from veilflow.transform.operators.generalize import Generalize, GeneralizeConfig

COL = ColumnContext("ds", "age", LocalKeyProvider(b"g" * 32))


def apply(values: Sequence[str | None], **params: object) -> list[str | None]:
    op = Generalize(GeneralizeConfig.model_validate(params), COL)
    frame = pd.DataFrame({"id": [f"r{i}" for i in range(len(values))]})
    out = op.apply(pd.Series(list(values), dtype=STRING), ChunkContext(frame, "id"))
    assert out.dtype == STRING and len(out) == len(values)
    return [None if pd.isna(v) else v for v in out]


def test_prefix_mode_unchanged() -> None:
    assert apply(["94107", "1", None, "héllo"], keep_prefix=3) == ["941**", "1", None, "hél**"]
    assert apply(["1980-05-01"], keep_prefix=4, fill="") == ["1980"]
    assert apply(["abc"], keep_prefix=0, fill="#") == ["###"]


def test_buckets_with_top_and_bottom_coding_by_hand() -> None:
    values = ["17", "18", "19", "20", "34", " 89 ", "90", "100", None, "-3", "+25"]
    assert apply(values, bucket=10, bottom=18, top=90) == [
        "<18",
        "18-19",
        "18-19",
        "20-29",
        "30-39",
        "80-89",
        "90+",
        "90+",
        None,
        "<18",
        "20-29",
    ]
    assert apply(["84", "85", "0"], bucket=10, top=85) == ["80-84", "85+", "0-9"]
    assert apply(["7", "-1", "-10", "-11"], bucket=5) == ["5-9", "-5--1", "-10--6", "-15--11"]


def test_buckets_of_decimals() -> None:
    assert apply(["34.5", "39.99", "1e2", ".5", "-0.5"], bucket=10) == [
        "30-39",
        "30-39",
        "100-109",
        "0-9",
        "-10--1",
    ]


LABEL = re.compile(r"^(-?\d+)-(-?\d+)$")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-(10**6), 10**6), min_size=1, max_size=20), st.integers(1, 1000))
def test_every_integer_lies_in_its_bucket(values: list[int], width: int) -> None:
    for v, label in zip(values, apply([str(v) for v in values], bucket=width), strict=True):
        match = LABEL.match(label or "")
        assert match is not None
        lo, hi = int(match[1]), int(match[2])
        assert lo <= v <= hi and hi - lo == width - 1 and lo % width == 0


@settings(max_examples=100, deadline=None)
@given(st.floats(-1e9, 1e9, allow_nan=False), st.integers(1, 100))
def test_float_buckets_contain_the_value(v: float, width: int) -> None:
    [label] = apply([repr(v)], bucket=width)
    assert label is not None
    lo = int(v // width) * width  # exact floor division, unlike floor(v / width)
    assert lo <= v < lo + width
    assert label == f"{lo}-{lo + width - 1}"


def test_date_truncation() -> None:
    values = ["1987-04-12", "1987-04-12 08:15:00+02", None, "infinity", "2000-12-31T23:59:59Z"]
    assert apply(values, truncate="year") == ["1987", "1987", None, "infinity", "2000"]
    assert apply(values, truncate="month") == ["1987-04", "1987-04", None, "infinity", "2000-12"]
    assert apply(values, truncate="day") == [
        "1987-04-12",
        "1987-04-12",
        None,
        "infinity",
        "2000-12-31",
    ]


@pytest.mark.parametrize(
    ("params", "values", "bad_rows"),
    [
        ({"bucket": 10}, ["12", "forty two", "7", "NaN", "1,5"], [1, 3, 4]),
        (
            {"truncate": "year"},
            ["1987-04-12", "1987-02-30", "12/04/1987", "1987-04-12 BC"],
            [1, 2, 3],
        ),
    ],
)
def test_bad_input_names_rows_never_values(
    params: dict[str, object], values: list[str], bad_rows: list[int]
) -> None:
    with pytest.raises(TransformError) as err:
        apply(values, **params)
    message = str(err.value)
    assert "column age" in message and f"{len(bad_rows)} value(s)" in message
    assert "chunk positions " + ", ".join(str(i + 1) for i in bad_rows) in message
    for i in bad_rows:
        assert values[i] not in message and f"r{i}" not in message


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"keep_prefix": 3, "bucket": 10},
        {"bucket": 10, "truncate": "year"},
        {"truncate": "year", "fill": "#"},
        {"keep_prefix": 2, "top": 5},
        {"bucket": 10, "bottom": 90, "top": 18},
        {"bucket": 0},
        {"truncate": "week"},
        {"keep_prefix": -1},
        {"keep_prefix": 2, "round": 3},
    ],
)
def test_config_is_strict(params: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        GeneralizeConfig.model_validate(params)


def test_mode_and_describe() -> None:
    cfg = GeneralizeConfig(bucket=5, top=90)
    assert cfg.mode == "bucket"
    assert Generalize(cfg, COL).describe() == "generalize {'bucket': 5, 'top': 90}"


@pytest.mark.parametrize("params", [{"keep_prefix": 2}, {"bucket": 5}, {"truncate": "year"}])
def test_empty_and_all_null_chunks(params: dict[str, object]) -> None:
    assert apply([], **params) == []
    assert apply([None, None], **params) == [None, None]
