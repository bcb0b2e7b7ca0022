"""Hash sketches of the per-chunk gate (ADR 0016): a value hashes alike whatever chunk or
batch it is in, and the merged counts equal counts made on the values themselves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veilflow.transform.base import STRING
from veilflow.validate import sketch

KEY = bytes(range(32))


@given(st.lists(st.one_of(st.none(), st.text(max_size=90)), max_size=40), st.integers(0, 3))
@settings(max_examples=200, deadline=None)
def test_a_value_hashes_alike_in_any_batch(values: list[str | None], lane: int) -> None:
    clean = [v.replace("\x00", "") if v is not None else None for v in values]
    whole, ok = sketch.hash_strings(pd.Series(clean, dtype=STRING), KEY, lane)
    for i, v in enumerate(clean):
        alone, alone_ok = sketch.hash_strings(pd.Series([v], dtype=STRING), KEY, lane)
        assert bool(ok[i]) == bool(alone_ok[0]) == (v is not None)
        if v is not None:
            assert whole[i] == alone[0]


def test_distinct_values_hash_apart_and_keys_matter() -> None:
    values = pd.Series([f"value-{i}" for i in range(20_000)] + ["", "a", "a\x01"], dtype=STRING)
    h, _ = sketch.hash_strings(values, KEY)
    assert np.unique(h).size == len(values)
    other, _ = sketch.hash_strings(values, bytes(32))
    assert not np.any(h == other)


def brute_pairs(a: list[int], b: list[int]) -> tuple[int, int]:
    by_b: dict[int, set[int]] = {}
    by_a: dict[int, set[int]] = {}
    for x, y in zip(a, b, strict=True):
        by_b.setdefault(y, set()).add(x)
        by_a.setdefault(x, set()).add(y)
    return sum(len(v) > 1 for v in by_b.values()), sum(len(v) > 1 for v in by_a.values())


@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), max_size=60), st.integers(1, 4))
def test_pair_counts_over_chunks_equal_a_count_on_the_values(
    pairs: list[tuple[int, int]], chunks: int
) -> None:
    a = np.array([p[0] for p in pairs], dtype=np.uint64)
    b = np.array([p[1] for p in pairs], dtype=np.uint64)
    parts = [
        sketch.distinct_pairs(x, y)
        for x, y in zip(np.array_split(a, chunks), np.array_split(b, chunks), strict=True)
    ]
    merged = sketch.pair_counts(
        np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    )
    assert (merged.shared_outputs, merged.split_originals) == brute_pairs(list(a), list(b))


def test_duplicated_marks_every_member_of_a_repeated_hash() -> None:
    h = np.array([5, 1, 5, 2, 9, 9, 9], dtype=np.uint64)
    assert sketch.duplicated(h).tolist() == [True, False, True, False, True, True, True]


def test_sketch_bytes_round_trip_and_refuse_a_wrong_length() -> None:
    a, b = np.arange(4, dtype=np.uint64), np.arange(4, 8, dtype=np.uint64)
    back = sketch.from_bytes(sketch.to_bytes(a, b), 2)
    assert [x.tolist() for x in back] == [a.tolist(), b.tolist()]
    with pytest.raises(ValueError):
        sketch.from_bytes(sketch.to_bytes(a, b)[:-8], 2)


@pytest.mark.parametrize(
    ("sizes", "expected"),
    [
        ([3, 2], [2, 1]),
        ([3, 2, 0], [2, 1, 0]),  # an empty last key range (reduceat fell over here)
        ([0, 3, 0, 2], [0, 2, 0, 1]),
        ([0, 0], [0, 0]),
        ([], []),
    ],
)
def test_per_chunk_counts_handle_empty_chunks(sizes: list[int], expected: list[int]) -> None:
    from veilflow.validate.merge import per_chunk_counts

    pattern = [True, False, True, True, False]
    flags = np.array(pattern[: sum(sizes)], dtype=bool)
    assert per_chunk_counts(flags, sizes).tolist() == expected
