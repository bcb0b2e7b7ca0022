"""The character layout the ``ff1`` operator works on: every character of a slice of
values in one flat array of code points, which of them are alphabet characters (numerals),
their rank within their value, and why a value cannot be encrypted; plus column access to a
fixed-width character matrix through contiguous runs.

Kept apart from the operator (``fpe.py``) so each module reads in one sitting.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

from veilflow.transform import ff1
from veilflow.transform.checksums import luhn_matrix_sums, luhn_position_sums

#: Why a value could not be encrypted; counter names in the chunk's counters.
REASONS = ("invalid_characters", "below_minimum_domain", "luhn_invalid", "no_at_sign")


def reason_code(name: str) -> int:
    return REASONS.index(name) + 1


@dataclass
class Layout:
    """Where each value's characters go: one flat array over all characters of a slice of
    non-NULL values, row by row."""

    codes: NDArray[Any]
    lengths: NDArray[np.int64]
    ascii: bool
    numerals: NDArray[np.int32]
    #: Alphabet characters (outside an email's domain).
    is_num: NDArray[np.bool_]
    n_alpha: NDArray[np.int32]
    #: Per value: 0 when it can be encrypted, else 1 + its index in ``REASONS``.
    reason: NDArray[np.int8]
    #: The common width when every value has the same length, else 0.
    width: int

    @property
    def rows(self) -> int:
        return int(self.lengths.size)

    @cached_property
    def row_of(self) -> NDArray[np.int32]:
        return np.repeat(np.arange(self.rows, dtype=np.int32), self.lengths)

    @cached_property
    def rank(self) -> NDArray[np.int32]:
        """0-based rank of each alphabet character within its value."""
        before = np.zeros(self.rows, dtype=np.int32)
        np.cumsum(self.n_alpha[:-1], out=before[1:])
        rank = np.cumsum(self.is_num, dtype=np.int32)
        rank -= 1
        rank -= before[self.row_of]
        return rank

    def pattern(self, rows: NDArray[np.bool_]) -> NDArray[np.bool_] | None:
        """When the selected values share one length and have their alphabet characters at
        the same places (``dddd-dddd-dddd-dddd``), that shared pattern: the work then goes
        column-wise over a character matrix, without per-character masks."""
        if not self.width or not rows.any():
            return None
        grid = self.is_num.reshape(self.rows, self.width)
        chosen = grid if rows.all() else grid[rows]
        first = chosen[0]
        return first if bool((chosen == first).all()) else None

    def luhn_valid(self, pattern: NDArray[np.bool_] | None) -> NDArray[np.bool_]:
        """Per row: do its digits pass the Luhn check? (Column-wise under a shared pattern;
        rows outside the pattern's selection give meaningless answers there.)"""
        if pattern is not None:
            places = np.flatnonzero(pattern)
            digits = take_columns(self.numerals.reshape(self.rows, self.width), places)
            # Rows outside the selection may hold -1 (not a digit) at these places.
            sums = luhn_matrix_sums(np.maximum(digits, 0).astype(np.uint8))
            return np.asarray(sums % 10 == 0)
        where = self.is_num
        rows_of = self.row_of[where]
        from_right = self.n_alpha[rows_of] - 1 - self.rank[where]
        sums = luhn_position_sums(self.numerals[where], from_right, rows_of, self.rows)
        return np.asarray(sums % 10 == 0)


def codes_of(arr: Any) -> tuple[NDArray[Any], NDArray[np.int64], bool]:
    """Code points of all characters of a large_string array without NULLs (flat) and each
    value's length. ASCII data is read straight from the Arrow buffers as bytes."""
    n = len(arr)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset : arr.offset + n + 1]
    data_buf = arr.buffers()[2]
    data = (
        np.frombuffer(data_buf, dtype=np.uint8)
        if data_buf is not None
        else np.empty(0, dtype=np.uint8)
    )[offsets[0] : offsets[-1]]
    if data.size == 0 or int(data.max()) < 128:
        # ASCII: one byte is one character.
        return data, np.diff(offsets), True
    codes, lengths = ff1.code_points(arr.to_pylist())
    return codes, lengths, bool(codes.size == 0 or codes.max() < 128)


def column_runs(columns: NDArray[np.int64]) -> list[tuple[int, int]]:
    """Contiguous runs of sorted column indexes, as (start, stop) pairs."""
    if columns.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(columns) != 1) + 1
    starts = np.r_[0, breaks]
    stops = np.r_[breaks, columns.size]
    return [(int(columns[a]), int(columns[b - 1]) + 1) for a, b in zip(starts, stops, strict=True)]


def take_columns(matrix: NDArray[Any], columns: NDArray[np.int64]) -> NDArray[Any]:
    """``matrix[:, columns]`` through slices of contiguous runs (much faster than fancy
    indexing for a few runs such as the digit groups of a card number)."""
    runs = column_runs(columns)
    if len(runs) == 1:
        return matrix[:, runs[0][0] : runs[0][1]]
    return np.concatenate([matrix[:, a:b] for a, b in runs], axis=1)


def set_columns(matrix: NDArray[Any], columns: NDArray[np.int64], values: NDArray[Any]) -> None:
    """``matrix[:, columns] = values`` through slices of contiguous runs."""
    at = 0
    for a, b in column_runs(columns):
        matrix[:, a:b] = values[:, at : at + b - a]
        at += b - a
