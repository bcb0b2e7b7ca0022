"""Per-subject date shifting: every date of one subject moves by the same number of days.

The offset of a subject is drawn from HMAC-SHA256(``date_shift`` data key, subject value) and
lies in [-max_days, -1] ∪ [1, max_days]: never 0 (a shift that can be 0 would leave some
subjects' true dates in place), except that ``max_days: 0`` shifts nothing. Intervals between
one subject's events are preserved exactly; so are times of day and UTC offsets, which are
carried over verbatim (a timestamptz moves by exactly a whole number of 24-hour days).

Input is the text PostgreSQL emits for ``date``, ``timestamp`` and ``timestamptz``:
``YYYY-MM-DD``, ``YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM[:SS]]]`` (a ``T`` separator and ``Z``
are accepted too); ``infinity`` / ``-infinity`` stay as they are. Anything else (including BC
dates and impossible days such as 2023-02-30) stops the chunk with a ``TransformError`` naming
the column and the rows by snapshot ordinal (never key or value). A row whose subject is NULL
is shifted by an offset drawn from its row key instead (counted as
``date_shift_subject_null``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from veilflow.errors import TransformError
from veilflow.policy.operators import DateShiftConfig
from veilflow.transform.base import STRING, ChunkContext, Operator
from veilflow.transform.operators.tokenize import as_large_string, hmac_sha256

#: PostgreSQL's text forms of date / timestamp / timestamptz (plus ISO ``T`` and ``Z``).
TEMPORAL_PATTERN = (
    r"^\d{4}-\d{2}-\d{2}"
    r"(?:[ T](?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,6})?"
    r"(?:Z|[+-]\d{2}(?::?[0-5]\d){0,2})?)?$"
)
_INFINITE = pa.array(["infinity", "-infinity"], type=pa.large_string())
_FIRST_DAY = int(np.datetime64("0001-01-01", "D").astype(np.int64))
_LAST_DAY = int(np.datetime64("9999-12-31", "D").astype(np.int64))
#: Row-key fallback messages start with a NUL byte, which no PostgreSQL text value holds.
_ROW_KEY_PREFIX = b"\x00row\x00"


@dataclass(frozen=True)
class TemporalText:
    """A column of date/timestamp text split into day numbers and the verbatim rest."""

    #: Days since 1970-01-01 (0 where not ``dated``).
    days: np.ndarray
    #: The text after ``YYYY-MM-DD`` (time of day and zone), ``""`` for plain dates.
    rest: pa.Array
    #: Rows holding a finite date or timestamp.
    dated: np.ndarray
    #: Rows holding ``infinity`` / ``-infinity``.
    infinite: np.ndarray
    #: Non-NULL rows that are neither: unparseable.
    bad: np.ndarray


def parse_temporal(values: pd.Series | pa.Array | pa.ChunkedArray) -> TemporalText:
    """Split PostgreSQL date/timestamp text into day numbers and the rest, vectorized.
    Never raises on content and never puts a value in an error: callers report ``bad``."""
    arr = as_large_string(values)
    present = np.asarray(arr.is_valid(), dtype=bool)
    infinite = np.asarray(pc.is_in(arr, value_set=_INFINITE).fill_null(False), dtype=bool)
    shaped = np.asarray(
        pc.match_substring_regex(arr, TEMPORAL_PATTERN).fill_null(False), dtype=bool
    )
    head = pc.utf8_slice_codeunits(arr, 0, 10)
    day32 = pc.cast(pc.strptime(head, format="%Y-%m-%d", unit="s", error_is_null=True), pa.date32())
    # strptime rolls 2023-02-30 over to March: only an exact round trip is a real day.
    exact = pc.equal(pc.cast(day32, pa.large_string()), head).fill_null(False)
    days = np.asarray(pc.cast(day32, pa.int32()).fill_null(0), dtype=np.int64)
    dated = shaped & np.asarray(exact, dtype=bool) & (days >= _FIRST_DAY)
    days = np.where(dated, days, 0)
    rest = pc.utf8_slice_codeunits(arr, 10)
    return TemporalText(
        days=days, rest=rest, dated=dated, infinite=infinite, bad=present & ~dated & ~infinite
    )


def format_days(days: np.ndarray) -> pa.Array:
    """``YYYY-MM-DD`` text of day numbers since 1970-01-01."""
    return pc.cast(
        pa.array(days.astype(np.int32), type=pa.int32()).cast(pa.date32()), pa.large_string()
    )


def raise_bad_rows(bad: np.ndarray, chunk: ChunkContext, column: str, what: str) -> None:
    """A ``TransformError`` naming the column, count and first rows (snapshot ordinals);
    never a key or a value."""
    if bad.any():
        raise TransformError(
            f"column {column}: {int(bad.sum())} value(s) are not {what} (at {chunk.row_refs(bad)})"
        )


def day_offsets(digests: np.ndarray, max_days: int) -> np.ndarray:
    """Offsets in [-max_days, -1] ∪ [1, max_days] from the first 64 bits of each digest
    (all 0 when ``max_days`` is 0). The modulo bias is below 2·max_days / 2⁶⁴."""
    if max_days == 0:
        return np.zeros(len(digests), dtype=np.int64)
    draw = (digests[:, :8].copy().view("<u8")[:, 0] % np.uint64(2 * max_days)).astype(np.int64)
    return np.where(draw < max_days, draw - max_days, draw - max_days + 1)


def subject_offsets(subjects: pd.Series | pa.Array, key: bytes, max_days: int) -> np.ndarray:
    """The offset of each row's subject (HMAC over the exact subject text, each distinct
    subject hashed once); rows with a NULL subject get 0 and are the caller's to handle."""
    arr = as_large_string(subjects)
    encoded = pc.dictionary_encode(arr)
    distinct = pc.cast(encoded.dictionary, pa.large_binary()).to_pylist()
    per_subject = day_offsets(hmac_sha256(key, distinct), max_days)
    codes = np.asarray(encoded.indices.fill_null(0), dtype=np.int64)
    offsets = per_subject[codes] if len(distinct) else np.zeros(len(arr), dtype=np.int64)
    return np.where(np.asarray(arr.is_valid(), dtype=bool), offsets, 0)


class DateShift(Operator[DateShiftConfig]):
    """Shift dates and timestamps by a per-subject offset, keeping the column type.

    YAML: ``{action: date_shift, max_days: 180, subject: customer_id}``. All of one
    subject's dates move together (intervals kept); offsets are never 0 unless max_days is
    0. See the module docstring for accepted text forms and NULL subjects."""

    name: ClassVar[str] = "date_shift"
    Config = DateShiftConfig
    key_purpose = "date_shift"
    gdpr = "pseudonymous"
    gdpr_reason = "dates moved by a keyed per-subject offset; reversible by whoever holds the key"
    hides_raw = False  # with max_days 0, or for infinity, the value stays

    def output_type(self, source_type: str) -> str:
        return source_type

    def apply(self, values: pd.Series, chunk: ChunkContext) -> pd.Series:
        key = self.key
        assert key is not None
        column, cfg = self.column.column, self.config
        if cfg.subject not in chunk.frame.columns:
            raise TransformError(
                f"column {column}: date_shift subject column {cfg.subject!r} is not in the "
                f"source chunk"
            )
        parsed = parse_temporal(values)
        raise_bad_rows(parsed.bad, chunk, column, "PostgreSQL date or timestamp text")
        subjects = chunk.frame[cfg.subject]
        offsets = subject_offsets(subjects, key.material, cfg.max_days)
        orphan = parsed.dated & subjects.isna().to_numpy(dtype=bool)
        if orphan.any():
            row_keys = chunk.frame[chunk.key_column].to_numpy()[orphan]
            messages = [_ROW_KEY_PREFIX + str(k).encode() for k in row_keys]
            offsets[orphan] = day_offsets(hmac_sha256(key.material, messages), cfg.max_days)
            chunk.count(column, "date_shift_subject_null", int(orphan.sum()))
        shifted = parsed.days + offsets
        out_of_range = parsed.dated & ((shifted < _FIRST_DAY) | (shifted > _LAST_DAY))
        raise_bad_rows(out_of_range, chunk, column, "shiftable within years 1-9999")
        text = pc.binary_join_element_wise(
            format_days(np.where(parsed.dated, shifted, 0)),
            parsed.rest,
            pa.scalar("", pa.large_string()),
        )
        out = pc.if_else(pa.array(parsed.dated), text, as_large_string(values))
        return pd.Series(pd.array(out, dtype=STRING), index=values.index)
