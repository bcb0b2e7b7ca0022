"""keep, redact, mask and prefix generalization on hand-made values."""

from __future__ import annotations

import pandas as pd
import pytest

from veilflow.registry import OPERATORS
from veilflow.transform.base import STRING, ChunkContext, ColumnContext
from veilflow.transform.keys import LocalKeyProvider

COL = ColumnContext("ds", "c", LocalKeyProvider(b"x" * 32))


def apply(action: str, values: list[str | None], **params: object) -> list[str | None]:
    cls = OPERATORS[action]
    op = cls(cls.Config(**params), COL)
    series = pd.Series(values, dtype=STRING)
    chunk = ChunkContext(pd.DataFrame({"k": range(len(values))}), "k")
    out = op.apply(series, chunk)
    assert len(out) == len(values)
    return [None if pd.isna(v) else v for v in out]


def test_keep_passes_through() -> None:
    assert apply("keep", ["a", None, ""]) == ["a", None, ""]


def test_redact_keeps_nulls() -> None:
    assert apply("redact", ["a", None, ""]) == ["[REDACTED]", None, "[REDACTED]"]
    assert apply("redact", ["a"], replacement="<x>") == ["<x>"]


@pytest.mark.parametrize(
    ("params", "values", "expected"),
    [
        ({}, ["secret", "", None], ["******", "", None]),
        ({"keep_last": 4}, ["4111-1111-1111-1234", "123"], ["***************1234", "***"]),
        ({"keep_first": 1, "keep_last": 2}, ["abcdef", "abc", "héllo"], ["a***ef", "***", "h**lo"]),
        ({"char": "#", "keep_first": 2}, ["abcd"], ["ab##"]),
        ({"char": "\\"}, ["ab"], ["\\\\"]),
    ],
)
def test_mask(
    params: dict[str, object], values: list[str | None], expected: list[str | None]
) -> None:
    assert apply("mask", values, **params) == expected


def test_mask_never_reveals_a_short_value_whole() -> None:
    # keep_first + keep_last >= length would reveal everything: the whole value is masked.
    assert apply("mask", ["ab", "abcde"], keep_first=1, keep_last=1) == ["**", "a***e"]


def test_generalize_prefix() -> None:
    assert apply("generalize", ["94107", "1", None], keep_prefix=3) == ["941**", "1", None]
    assert apply("generalize", ["1980-05-01"], keep_prefix=4, fill="") == ["1980"]
