"""Generalization: replace a value with a coarser one (prefix, numeric bucket, date part)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from veilflow.errors import TransformError
from veilflow.policy.operators import GeneralizeConfig
from veilflow.transform.base import STRING, ChunkContext, Operator
from veilflow.transform.operators.date_shift import parse_temporal, raise_bad_rows
from veilflow.transform.operators.tokenize import as_large_string

_NUMBER = r"^\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*$"
_INTEGER = r"^\s*[+-]?\d{1,18}\s*$"
_TRUNCATE_WIDTH = {"year": 4, "month": 7, "day": 10}


def bucket_labels(numbers: np.ndarray, width: int, bottom: int | None, top: int | None) -> pa.Array:
    """Labels of numbers: ``lo-hi`` (lo ≤ v < hi + 1, buckets aligned at 0 and clipped to
    bottom / top), ``<bottom`` below bottom, ``top+`` at or above top."""
    lo = (np.floor_divide(numbers, width) * width).astype(np.int64)
    hi = lo + width - 1
    if bottom is not None:
        lo = np.maximum(lo, bottom)
    if top is not None:
        hi = np.minimum(hi, top - 1)
    text = pc.binary_join_element_wise(
        pa.array(lo).cast(pa.large_string()),
        pa.array(hi).cast(pa.large_string()),
        pa.scalar("-", pa.large_string()),
    )
    if bottom is not None:
        text = pc.if_else(
            pa.array(numbers < bottom), pa.scalar(f"<{bottom}", pa.large_string()), text
        )
    if top is not None:
        text = pc.if_else(pa.array(numbers >= top), pa.scalar(f"{top}+", pa.large_string()), text)
    return text


class Generalize(Operator[GeneralizeConfig]):
    """Coarsen quasi-identifiers. One mode per column:

    - prefix: ``{action: generalize, keep_prefix: 3}`` → ZIP ``94107`` → ``941**``
      (``fill: ""`` cuts instead: ``941``).
    - numeric buckets: ``{action: generalize, bucket: 10, bottom: 18, top: 90}`` → ``34`` →
      ``30-39``, ``17`` → ``<18``, ``18`` → ``18-19`` (clipped), ``93`` → ``90+``. Labels are
      inclusive integer ranges aligned at 0 (``34.5`` → ``30-39``). Values that are not
      numbers stop the chunk with a ``TransformError`` naming the rows.
    - date truncation: ``{action: generalize, truncate: year}`` → ``1987-04-12`` or
      ``1987-04-12 08:15:00+02`` → ``1987`` (``month`` → ``1987-04``, ``day`` →
      ``1987-04-12``); ``infinity`` stays; unparseable dates stop the chunk.

    The output is text. NULL stays NULL."""

    name: ClassVar[str] = "generalize"
    Config = GeneralizeConfig
    gdpr = "anonymous"
    gdpr_reason = "value coarsened; risk on quasi-identifiers measured by the gate"
    lineage_subtype = "AGGREGATION"
    hides_raw = False  # a short value may already be at the generalized level

    def apply(self, values: pd.Series, chunk: ChunkContext) -> pd.Series:
        mode = self.config.mode
        if mode == "keep_prefix":
            out = self._prefix(values)
        elif mode == "bucket":
            out = self._bucket(values, chunk)
        else:
            out = self._truncate(values, chunk)
        return pd.Series(pd.array(out, dtype=STRING), index=values.index)

    def _prefix(self, values: pd.Series) -> pa.Array:
        n = self.config.keep_prefix
        assert n is not None
        head = values.str.slice(0, n)
        if not self.config.fill:
            return pa.array(head.array)
        rest = values.str.slice(n).str.replace(r".", self.config.fill, regex=True)
        return pa.array((head + rest).array)

    def _bucket(self, values: pd.Series, chunk: ChunkContext) -> pa.Array:
        cfg = self.config
        assert cfg.bucket is not None
        arr = as_large_string(values)
        present = np.asarray(arr.is_valid(), dtype=bool)
        numeric = np.asarray(pc.match_substring_regex(arr, _NUMBER).fill_null(False), dtype=bool)
        raise_bad_rows(present & ~numeric, chunk, self.column.column, "numbers")
        trimmed = pc.replace_substring_regex(
            pc.utf8_trim_whitespace(arr.filter(pa.array(present))), r"^\+", ""
        )
        # Integers bucket exactly in int64; anything with a fraction or exponent as float64.
        try:
            if pc.all(pc.match_substring_regex(trimmed, _INTEGER)).as_py() is not False:
                numbers = np.asarray(pc.cast(trimmed, pa.int64()), dtype=np.int64)
            else:
                numbers = np.asarray(pc.cast(trimmed, pa.float64()), dtype=np.float64)
        except pa.ArrowInvalid:  # Arrow's message quotes the value: never pass it on
            raise TransformError(
                f"column {self.column.column}: a value passed the number check but could "
                "not be read as a number"
            ) from None
        labels = bucket_labels(numbers, cfg.bucket, cfg.bottom, cfg.top)
        positions = pa.array(np.cumsum(present) - 1, mask=~present)
        return pc.take(labels, positions)

    def _truncate(self, values: pd.Series, chunk: ChunkContext) -> pa.Array:
        assert self.config.truncate is not None
        parsed = parse_temporal(values)
        raise_bad_rows(parsed.bad, chunk, self.column.column, "PostgreSQL date or timestamp text")
        arr = as_large_string(values)
        width = _TRUNCATE_WIDTH[self.config.truncate]
        return pc.if_else(pa.array(parsed.dated), pc.utf8_slice_codeunits(arr, 0, width), arr)
