"""k, l and t of a pandas frame, the path for CSV and Parquet files (``veilflow validate
privacy --file``).

A row's class id comes from factorizing each quasi-identifier and joining the codes in mixed
radix (no group-by); the ``(class id, value rank, count)`` histogram then goes to the numeric
core (``validate.risk_metrics``). NULL is a value of its own and sorts last. With
``with_t=False`` only k and l are computed: the class-size distribution and each class's
number of distinct sensitive values, no histogram.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from veilflow.errors import SourceError
from veilflow.validate.risk_metrics import (
    Distance,
    DistanceChoice,
    RiskMetrics,
    metrics_from_histogram,
    require_columns,
)


def _frame_distance(series: pd.Series, choice: DistanceChoice) -> Distance:
    if choice != "auto":
        return choice
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "equal"
    if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_datetime64_any_dtype(dtype):
        return "ordered"
    return "equal"


_INT64_MAX = np.iinfo(np.int64).max


def _dense_fits(space: int, rows: int, slot_bytes: int = 8) -> bool:
    """Whether codes in ``[0, space)`` over ``rows`` rows are cheaper counted in a dense
    array of ``slot_bytes`` per code (bincount, a presence table: O(rows + space)) than
    hashed; the array is kept to about 32 bytes per row."""
    return space * slot_bytes <= 32 * rows + 32768


def _value_codes(values: pd.Series, *, sort: bool = False) -> tuple[np.ndarray, int]:
    """Integer code per row of one column and the number of codes.

    NULL (any missing marker) is a value of its own with the last code, as GROUP BY treats
    it; with ``sort`` the codes follow the values' order.
    """
    codes, uniques = pd.factorize(values, sort=sort, use_na_sentinel=True)
    out = np.asarray(codes, dtype=np.int64)
    card = len(uniques)
    missing = out < 0
    if missing.any():
        out[missing] = card
        card += 1
    return out, card


def _dense_ids(codes: np.ndarray, space: int) -> tuple[np.ndarray, np.ndarray]:
    """Codes in ``[0, space)`` renumbered densely from 0, and the row count of each id."""
    if _dense_fits(space, codes.size):
        counts = np.bincount(codes, minlength=space)
        present = counts > 0
        if present.all():
            return codes, counts
        remap = np.cumsum(present, dtype=np.int64) - 1
        return remap[codes], counts[present]
    ids, uniques = pd.factorize(codes)
    ids = np.asarray(ids, dtype=np.int64)
    return ids, np.bincount(ids, minlength=len(uniques))


def _class_codes(
    frame: pd.DataFrame, quasi_identifiers: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Equivalence class id of every row (dense from 0) and the size of each class.

    Each quasi-identifier is factorized on its own and the codes are joined in mixed radix
    into one int64; when the next radix would overflow, the combination so far is
    renumbered densely first (at most one id per row, so the product stays in range).
    Exact: distinct combinations always get distinct ids.
    """
    n = len(frame)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if not quasi_identifiers:
        return np.zeros(n, dtype=np.int64), np.array([n], dtype=np.int64)
    combined, space = _value_codes(frame[quasi_identifiers[0]])
    for column in quasi_identifiers[1:]:
        codes, card = _value_codes(frame[column])
        if space > _INT64_MAX // card:
            combined, sizes = _dense_ids(combined, space)
            space = sizes.size
        combined = combined * card + codes
        space *= card
    return _dense_ids(combined, space)


def _distinct_per_class(cls: np.ndarray, n_classes: int, val: np.ndarray, m: int) -> np.ndarray:
    """Number of distinct values (codes in ``[0, m)``) in each class."""
    pair = cls * m + val
    space = n_classes * m
    if _dense_fits(space, cls.size, slot_bytes=1):
        seen = np.zeros(space, dtype=bool)
        seen[pair] = True
        return np.asarray(seen.reshape(n_classes, m).sum(axis=1), dtype=np.int64)
    return np.bincount(pd.unique(pair) // m, minlength=n_classes)


def frame_risk(
    frame: pd.DataFrame,
    quasi_identifiers: list[str] | tuple[str, ...],
    sensitive: str | None = None,
    *,
    distance: DistanceChoice = "auto",
    with_t: bool = True,
) -> RiskMetrics:
    """k, l, t of a pandas frame (the path for CSV and Parquet files).

    With ``with_t=False`` only k and distinct l are computed (t is None), in a few
    vectorized passes over the columns.
    """
    qi = tuple(quasi_identifiers)
    require_columns(list(frame.columns), qi, sensitive, "the file")
    if frame.empty:
        return metrics_from_histogram(
            np.zeros(0),
            np.zeros(0) if sensitive else None,
            np.zeros(0),
            quasi_identifiers=qi,
            sensitive=sensitive,
            distance=None,
        )
    cls, sizes = _class_codes(frame, qi)
    n_classes = sizes.size
    if sensitive is None or not with_t:
        size_values, size_counts = np.unique(sizes, return_counts=True)
        l_div = None
        if sensitive is not None:
            val, m = _value_codes(frame[sensitive])
            l_div = int(_distinct_per_class(cls, n_classes, val, m).min())
        return RiskMetrics(
            qi,
            sensitive,
            len(frame),
            n_classes,
            int(sizes.min()),
            l_div,
            None,
            None,
            {int(s): int(c) for s, c in zip(size_values, size_counts, strict=True)},
        )
    column = frame[sensitive]
    dist = _frame_distance(column, distance)
    val, m = _value_codes(column, sort=True)  # ranks in value order, NULL last
    pair = cls * m + val
    space = n_classes * m
    if _dense_fits(space, pair.size):
        counts = np.bincount(pair, minlength=space)
        pair = np.flatnonzero(counts)
        counts = counts[pair]
    else:
        pair, counts = np.unique(pair, return_counts=True)
    return metrics_from_histogram(
        pair // m, pair % m, counts, quasi_identifiers=qi, sensitive=sensitive, distance=dist
    )


def read_table_file(path: str, columns: list[str]) -> pd.DataFrame:
    """Only ``columns`` of a CSV or Parquet file, typed the way pyarrow infers them."""
    lower = path.lower()
    if lower.endswith((".parquet", ".pq")):
        return pd.read_parquet(path, columns=columns)
    if lower.endswith((".csv", ".csv.gz", ".tsv")):
        sep = "\t" if lower.endswith(".tsv") else ","
        return pd.read_csv(path, usecols=columns, sep=sep, engine="pyarrow")
    raise SourceError(f"{path}: expected a .csv, .tsv or .parquet file")
