"""Per-subject date shifting: one offset per subject, intervals kept, PostgreSQL text forms."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Sequence

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from veilflow.errors import TransformError
from veilflow.transform.base import STRING, ChunkContext, ColumnContext
from veilflow.transform.keys import LocalKeyProvider
from veilflow.transform.operators.date_shift import DateShift, DateShiftConfig

PROVIDER = LocalKeyProvider(b"d" * 32)
KEY = PROVIDER.data_key("ds", "date_shift").material


def expected_offset(subject: str, max_days: int, key: bytes = KEY) -> int:
    """The documented draw, computed with the standard library."""
    if max_days == 0:
        return 0
    digest = hmac.new(key, subject.encode(), hashlib.sha256).digest()
    draw = int.from_bytes(digest[:8], "little") % (2 * max_days)
    return draw - max_days if draw < max_days else draw - max_days + 1


def shift(
    values: Sequence[str | None],
    subjects: Sequence[str | None],
    max_days: int = 30,
    provider: LocalKeyProvider = PROVIDER,
    chunk: ChunkContext | None = None,
) -> list[str | None]:
    frame = pd.DataFrame(
        {"id": [f"r{i}" for i in range(len(values))], "cid": list(subjects), "d": list(values)},
        dtype=STRING,
    )
    op = DateShift(
        DateShiftConfig(max_days=max_days, subject="cid"), ColumnContext("ds", "d", provider)
    )
    out = op.apply(frame["d"], chunk or ChunkContext(frame, "id"))
    assert out.dtype == STRING and len(out) == len(values)
    return [None if pd.isna(v) else v for v in out]


def test_hand_computed_offsets_for_dates_and_timestamps() -> None:
    values = [
        "2020-01-01",
        "2020-01-31 12:00:00.5+02",
        "2024-02-29T01:02:03Z",
        "1999-12-31 23:59:59",
        "2000-03-01 00:00:00-03:30",
    ]
    subjects = ["a", "a", "b", "b", "c"]
    out = shift(values, subjects, max_days=400)
    for v, s, o in zip(values, subjects, out, strict=True):
        moved = dt.date.fromisoformat(v[:10]) + dt.timedelta(days=expected_offset(s, 400))
        assert o == moved.isoformat() + v[10:]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["s1", "s2", "s3", "s4"]),
            st.dates(dt.date(1900, 1, 1), dt.date(2100, 1, 1)),
        ),
        min_size=1,
        max_size=30,
    ),
    st.integers(0, 3650),
)
def test_intervals_within_a_subject_are_preserved(
    rows: list[tuple[str, dt.date]], max_days: int
) -> None:
    out = shift([d.isoformat() for _, d in rows], [s for s, _ in rows], max_days=max_days)
    moved = [dt.date.fromisoformat(o or "") for o in out]
    offsets: dict[str, int] = {}
    for (subject, day), new in zip(rows, moved, strict=True):
        delta = (new - day).days
        assert offsets.setdefault(subject, delta) == delta
        assert abs(delta) <= max_days
        assert delta != 0 or max_days == 0


def test_offsets_are_never_zero_and_spread() -> None:
    subjects = [f"customer-{i}" for i in range(400)]
    out = shift(["2000-01-01"] * 400, subjects, max_days=3)
    deltas = [(dt.date.fromisoformat(o or "") - dt.date(2000, 1, 1)).days for o in out]
    assert set(deltas) == {-3, -2, -1, 1, 2, 3}
    assert deltas == [expected_offset(s, 3) for s in subjects]


def test_keys_give_other_offsets_and_max_days_zero_is_identity() -> None:
    subjects = [f"c{i}" for i in range(50)]
    mine = shift(["2010-06-15"] * 50, subjects, max_days=365)
    other = shift(["2010-06-15"] * 50, subjects, max_days=365, provider=LocalKeyProvider(b"e" * 32))
    assert sum(a == b for a, b in zip(mine, other, strict=True)) < 5
    assert shift(["2010-06-15", "2010-06-15 10:00:00"], ["a", "b"], max_days=0) == [
        "2010-06-15",
        "2010-06-15 10:00:00",
    ]


def test_nulls_infinity_and_null_subjects() -> None:
    frame_chunk_rows = ["2020-05-05", None, "infinity", "-infinity", "2020-05-05"]
    subjects = ["a", "a", "a", "b", None]
    frame = pd.DataFrame(
        {"id": [f"r{i}" for i in range(5)], "cid": subjects, "d": frame_chunk_rows}, dtype=STRING
    )
    chunk = ChunkContext(frame, "id")
    out = shift(frame_chunk_rows, subjects, chunk=chunk)
    assert out[1] is None and out[2] == "infinity" and out[3] == "-infinity"
    assert out[4] is not None and out[4] != "2020-05-05"
    assert chunk.counters["d"]["date_shift_subject_null"] == 1
    # The NULL-subject fallback is deterministic too (drawn from the row key).
    assert shift(frame_chunk_rows, subjects)[4] == out[4]


@pytest.mark.parametrize(
    ("values", "bad"),
    [
        (["2020-01-01", "2023-02-30", "01/02/2020", "2020-01-01 BC", "secret"], [1, 2, 3, 4]),
        (["2020-01-01 25:00:00", "2020-1-1", "0000-01-01", "2020-01-01 10:00"], [0, 1, 2, 3]),
    ],
)
def test_unparseable_values_raise_with_rows_never_keys_or_values(
    values: list[str], bad: list[int]
) -> None:
    with pytest.raises(TransformError) as err:
        shift(values, ["a"] * len(values))
    message = str(err.value)
    assert "column d" in message and f"{len(bad)} value(s)" in message
    assert "chunk positions " + ", ".join(str(i + 1) for i in bad) in message
    for i in bad:
        assert values[i] not in message and f"r{i}" not in message


def test_shift_out_of_range_is_an_error() -> None:
    with pytest.raises(TransformError, match="years 1-9999"):
        shift(["0001-01-01"] * 40, [f"s{i}" for i in range(40)], max_days=30)


def test_missing_subject_column_and_config() -> None:
    op = DateShift(DateShiftConfig(max_days=5, subject="nope"), ColumnContext("ds", "d", PROVIDER))
    frame = pd.DataFrame({"id": ["1"], "d": ["2020-01-01"]}, dtype=STRING)
    with pytest.raises(TransformError, match="nope"):
        op.apply(frame["d"], ChunkContext(frame, "id"))
    assert op.output_type("timestamp with time zone") == "timestamp with time zone"
    for params in (
        {"max_days": -1, "subject": "x"},
        {"max_days": 3},
        {"subject": "x"},
        {"max_days": 3, "subject": "x", "seed": 1},
    ):
        with pytest.raises(ValidationError):
            DateShiftConfig.model_validate(params)


def test_empty_and_all_null_chunks() -> None:
    assert shift([], []) == []
    assert shift([None, None], [None, "a"]) == [None, None]
