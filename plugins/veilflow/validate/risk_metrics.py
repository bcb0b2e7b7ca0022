"""k-anonymity, distinct l-diversity and t-closeness from a histogram: the numeric core the
two front doors (``validate.privacy.table_risk`` for PostgreSQL, ``validate.file_risk`` for
CSV and Parquet files) share.

An *equivalence class* is the set of rows sharing one combination of quasi-identifier
values. For a table:

- **k** is the size of its smallest class (k-anonymity: every row hides among k),
- **l** is the smallest number of distinct sensitive values in a class (distinct l-diversity),
- **t** is the largest Earth Mover's Distance between a class's distribution of the
  sensitive value and the whole table's (t-closeness, Li, Li & Venkatasubramanian 2007):
  *equal distance* for categorical values, ``EMD = 1/2 · Σ |p_i − q_i|``, and *ordered
  distance* for numeric and temporal values, ``EMD = 1/(m−1) · Σ_i |Σ_{j≤i} (p_j − q_j)|``
  over the m distinct values of the table in order.

The core works on a histogram of ``(class id, value rank, count)`` triples, vectorized with
numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from veilflow.errors import SourceError

Distance = Literal["equal", "ordered"]
DistanceChoice = Literal["auto", "equal", "ordered"]


@dataclass(frozen=True)
class RiskMetrics:
    """k, l and t of one table on one set of quasi-identifiers; no values, only counts."""

    quasi_identifiers: tuple[str, ...]
    sensitive: str | None
    rows: int
    classes: int
    k: int
    l: int | None  # noqa: E741 - the name used in the literature
    t: float | None
    distance: Distance | None
    #: Equivalence-class size -> number of classes of that size.
    class_sizes: dict[int, int] = field(default_factory=dict)

    def rows_in_classes_below(self, k: int) -> int:
        """How many rows sit in classes smaller than ``k`` (what suppression would remove)."""
        return sum(size * count for size, count in self.class_sizes.items() if size < k)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form for the run manifest, the CLI and lineage assertions."""
        return {
            "quasi_identifiers": list(self.quasi_identifiers),
            "sensitive": self.sensitive,
            "rows": self.rows,
            "classes": self.classes,
            "k": self.k,
            "l": self.l,
            "t": None if self.t is None else round(self.t, 6),
            "distance": self.distance,
            "class_sizes": {str(s): c for s, c in sorted(self.class_sizes.items())},
        }


def _ordered_emd(
    cls: np.ndarray, val: np.ndarray, cnt: np.ndarray, sizes: np.ndarray, q: np.ndarray
) -> np.ndarray:
    """Ordered-distance EMD of every class against the global distribution ``q``.

    ``cls``/``val``/``cnt`` are sorted by (class, value). Per class, the cumulative share
    F(i) is a step function that changes only at the class's own values, while the global
    cumulative share G(i) is known for every rank; the sum of |F − G| over each run of ranks
    where F is constant comes from prefix sums of G and one binary search, so the cost is
    O(entries · log m), never classes × m.
    """
    m = q.size
    n_classes = sizes.size
    if m <= 1:
        return np.zeros(n_classes)
    g = np.cumsum(q)
    g[-1] = 1.0
    sg = np.concatenate(([0.0], np.cumsum(g)))  # sg[i] = Σ_{r<i} G(r)

    starts = np.flatnonzero(np.r_[True, cls[1:] != cls[:-1]])
    first_of_class = np.zeros(cls.size, dtype=bool)
    first_of_class[starts] = True
    # Integer running count within each class, so shares are exact ratios.
    run = np.cumsum(cnt)
    before = np.repeat(run[starts] - cnt[starts], np.diff(np.r_[starts, cls.size]))
    f = (run - before) / sizes[cls]

    # Run of ranks [a, b] on which F equals f: from this entry's value to the next one's.
    a = val
    last_of_class = np.r_[cls[1:] != cls[:-1], True]
    nxt = np.r_[val[1:], m]
    b = np.where(last_of_class, m - 1, nxt - 1)

    split = np.clip(np.searchsorted(g, f, side="left"), a, b + 1)  # first r with G(r) >= f
    below = f * (split - a) - (sg[split] - sg[a])
    above = (sg[b + 1] - sg[split]) - f * (b + 1 - split)
    per_entry = below + above

    # Ranks before a class's first value, where F = 0: Σ G(r) for r < first value.
    lead = sg[val[starts]]
    total = np.bincount(cls, weights=per_entry, minlength=n_classes)
    total[cls[starts]] += lead
    return np.asarray(total / (m - 1))


def _equal_emd(
    cls: np.ndarray, val: np.ndarray, cnt: np.ndarray, sizes: np.ndarray, q: np.ndarray
) -> np.ndarray:
    """Equal-distance EMD, ½·Σ|p − q|, of every class; values absent from a class add q."""
    p = cnt / sizes[cls]
    qv = q[val]
    partial = np.bincount(cls, weights=np.abs(p - qv) - qv, minlength=sizes.size)
    return np.asarray(np.clip(0.5 * (1.0 + partial), 0.0, 1.0))


def metrics_from_histogram(
    cls: np.ndarray,
    val: np.ndarray | None,
    cnt: np.ndarray,
    *,
    quasi_identifiers: tuple[str, ...],
    sensitive: str | None,
    distance: Distance | None,
) -> RiskMetrics:
    """k, l, t from ``(class id, value rank, count)`` triples, one per distinct pair.

    Class ids and value ranks are dense from 0; value ranks follow the values' order (it
    matters for the ordered distance only). Without a sensitive column ``val`` is None and
    each class appears once.
    """
    cls = np.asarray(cls, dtype=np.int64)
    cnt = np.asarray(cnt, dtype=np.int64)
    rows = int(cnt.sum())
    if rows == 0:
        return RiskMetrics(
            quasi_identifiers,
            sensitive,
            0,
            0,
            0,
            0 if sensitive else None,
            0.0 if sensitive else None,
            distance if sensitive else None,
            {},
        )
    n_classes = int(cls.max()) + 1
    sizes = np.bincount(cls, weights=cnt, minlength=n_classes).astype(np.int64)
    size_values, size_counts = np.unique(sizes, return_counts=True)
    class_sizes = {int(s): int(c) for s, c in zip(size_values, size_counts, strict=True)}
    k = int(sizes.min())
    if sensitive is None or val is None:
        return RiskMetrics(
            quasi_identifiers, None, rows, n_classes, k, None, None, None, class_sizes
        )

    val = np.asarray(val, dtype=np.int64)
    distinct = np.bincount(cls, minlength=n_classes)
    l_div = int(distinct.min())
    order = np.lexsort((val, cls))
    cls, val, cnt = cls[order], val[order], cnt[order]
    q = np.bincount(val, weights=cnt).astype(np.float64) / rows
    dist: Distance = distance or "equal"
    emd = (_ordered_emd if dist == "ordered" else _equal_emd)(cls, val, cnt, sizes, q)
    t = float(max(0.0, emd.max()))
    return RiskMetrics(
        quasi_identifiers, sensitive, rows, n_classes, k, l_div, t, dist, class_sizes
    )


def require_columns(
    present: list[str], qi: tuple[str, ...], sensitive: str | None, where: str
) -> None:
    wanted = [*qi, *([sensitive] if sensitive else [])]
    missing = [c for c in wanted if c not in present]
    if missing:
        raise SourceError(f"{where} has no column(s) {', '.join(missing)}")
