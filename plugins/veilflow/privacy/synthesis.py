"""A synthetic table: a Gaussian copula over the candidate's columns, fitted on records the
gate has already passed (the masked candidate), sampled on CPU with a seeded generator.

Each column gets its marginal (numeric: its empirical quantiles, interpolated; anything else:
its categories and their frequencies, NULL a category of its own) and a normal score per
record; the copula is the correlation of those scores. Sampling draws correlated normal
scores and maps each back through its column's marginal. Pure: frames in, frames out; built
on numpy and SciPy (ADR 0019 on why no synthesizer package: the one small enough, copulas,
pins pandas below 3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

NULL = "<NULL>"


@dataclass
class _Marginal:
    name: str
    numeric: bool
    #: numeric: sorted values (quantile function); categorical: categories and their
    #: cumulative probabilities.
    values: np.ndarray
    cumulative: np.ndarray = field(default_factory=lambda: np.zeros(0))
    decimals: int = 0
    null_share: float = 0.0


def _decimals(values: np.ndarray) -> int:
    for d in range(0, 7):
        if np.allclose(values, np.round(values, d)):
            return d
    return 6


def _fit_marginal(
    name: str, column: pd.Series, numeric: bool | None = None
) -> tuple[_Marginal, np.ndarray]:
    """The column's marginal and each record's normal score (ties spread at random).
    ``numeric`` (default: every value parses as a number) picks the kind of marginal."""
    n = len(column)
    as_number = pd.to_numeric(column, errors="coerce")
    present = column.notna()
    if numeric is None:
        numeric = bool(present.any()) and bool(as_number[present].notna().all())
    rng = np.random.default_rng(0)
    if numeric:
        v = as_number.to_numpy(dtype="float64")
        ranks = stats.rankdata(np.where(np.isnan(v), -np.inf, v), method="average")
        u = (ranks - 0.5) / n
        finite = np.sort(v[~np.isnan(v)])
        m = _Marginal(name, True, finite, decimals=_decimals(finite), null_share=1 - present.mean())
    else:
        text = column.astype("object").where(present, NULL).astype(str)
        counts = text.value_counts(sort=True)
        cats = counts.index.to_numpy(dtype=object)
        cum = np.cumsum(counts.to_numpy()) / n
        lower = dict(zip(cats, np.r_[0.0, cum[:-1]], strict=True))
        upper = dict(zip(cats, cum, strict=True))
        lo = text.map(lower).to_numpy(dtype="float64")
        hi = text.map(upper).to_numpy(dtype="float64")
        u = lo + (hi - lo) * rng.random(n)
        m = _Marginal(name, False, cats, cumulative=cum)
    z = stats.norm.ppf(np.clip(u, 1e-9, 1 - 1e-9))
    return m, z


def _invert(m: _Marginal, u: np.ndarray) -> pd.Series:
    if m.numeric:
        n = len(m.values)
        rest = np.clip((u - m.null_share) / max(1e-12, 1 - m.null_share), 0.0, 1.0)
        out = np.interp(rest * n - 0.5, np.arange(n), m.values)
        out = np.round(out, m.decimals)
        series = pd.Series(out)
        if m.decimals == 0:  # whole numbers print as such ("1956", not "1956.0")
            series = series.astype("Int64")
        if m.null_share > 0:
            series[u < m.null_share] = None
        return series
    idx = np.searchsorted(m.cumulative, u, side="right")
    idx = np.minimum(idx, len(m.values) - 1)
    picked = pd.Series(m.values[idx], dtype="object")
    return picked.where(picked != NULL, None)


@dataclass
class GaussianCopula:
    """Fitted marginals and the correlation of the normal scores."""

    columns: list[str]
    marginals: list[_Marginal]
    correlation: np.ndarray

    @classmethod
    def fit(cls, frame: pd.DataFrame, numeric: set[str] | None = None) -> GaussianCopula:
        """``numeric``: the columns to model as numbers (default: those whose every value
        parses as one)."""
        fitted = [
            _fit_marginal(
                c,
                frame[c].reset_index(drop=True),
                None if numeric is None else c in numeric,
            )
            for c in frame.columns
        ]
        z = np.column_stack([s for _, s in fitted])
        corr = np.corrcoef(z, rowvar=False) if z.shape[1] > 1 else np.ones((1, 1))
        corr = np.nan_to_num(corr, nan=0.0)
        np.fill_diagonal(corr, 1.0)
        # Nearest positive-definite: clip the eigenvalues.
        w, v = np.linalg.eigh(corr)
        corr = (v * np.clip(w, 1e-6, None)) @ v.T
        d = np.sqrt(np.diag(corr))
        corr = corr / np.outer(d, d)
        return cls(list(frame.columns), [m for m, _ in fitted], corr)

    def sample(self, rows: int, seed: int) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        z = rng.multivariate_normal(np.zeros(len(self.columns)), self.correlation, size=rows)
        u = stats.norm.cdf(z)
        return pd.DataFrame({m.name: _invert(m, u[:, i]) for i, m in enumerate(self.marginals)})


# ------------------------------------------------------------------------------ the gate
def row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash of each whole row, values compared as text (NULL apart from '')."""
    text = frame.astype("object").where(frame.notna(), "\x00NULL").astype(str)
    return pd.util.hash_pandas_object(text, index=False).to_numpy()


def exact_copies(synthetic: pd.DataFrame, source: pd.DataFrame) -> np.ndarray:
    """Positions of synthetic rows whose whole row equals a source row."""
    return np.flatnonzero(np.isin(row_hashes(synthetic), row_hashes(source)))


def distance_to_closest(
    synthetic: pd.DataFrame, source: pd.DataFrame, *, block: int = 256
) -> np.ndarray:
    """Gower distance (0..1) of each synthetic row to its closest source row: numeric columns
    by |a - b| / range (NULL against anything: 1), others 0 when equal and 1 when not,
    averaged over the columns. Blocks of ``block`` synthetic rows bound the memory."""
    parts: list[tuple[bool, np.ndarray, np.ndarray]] = []
    for c in source.columns:
        a = pd.to_numeric(source[c], errors="coerce")
        if source[c].notna().any() and a[source[c].notna()].notna().all():
            b = pd.to_numeric(synthetic[c], errors="coerce")
            span = float(np.nanmax(a) - np.nanmin(a)) or 1.0
            parts.append((True, a.to_numpy("float64") / span, b.to_numpy("float64") / span))
        else:
            both = pd.concat([source[c], synthetic[c]]).astype("object").fillna(NULL).astype(str)
            codes, _ = pd.factorize(both)
            parts.append((False, codes[: len(source)], codes[len(source) :]))
    out = np.empty(len(synthetic))
    for start in range(0, len(synthetic), block):
        stop = min(start + block, len(synthetic))
        d = np.zeros((stop - start, len(source)))
        for numeric, src, syn in parts:
            if numeric:
                d += np.nan_to_num(np.abs(syn[start:stop, None] - src[None, :]), nan=1.0)
            else:
                d += syn[start:stop, None] != src[None, :]
        out[start:stop] = d.min(axis=1) / max(1, len(parts))
    return out


def _shares(column: pd.Series) -> dict[str, float]:
    counts = column.astype("object").fillna(NULL).astype(str).value_counts()
    total = float(counts.sum()) or 1.0
    return {str(k): float(v) / total for k, v in counts.items()}


def fidelity(synthetic: pd.DataFrame, source: pd.DataFrame) -> dict[str, Any]:
    """Per-column marginal distance (numeric: Kolmogorov–Smirnov statistic; others: total
    variation distance), the largest difference between the pairwise correlations of the
    normal scores, and a quality score, 1 − the mean of the per-column distances."""
    columns: dict[str, dict[str, Any]] = {}
    for c in source.columns:
        a = pd.to_numeric(source[c], errors="coerce")
        if source[c].notna().any() and a[source[c].notna()].notna().all():
            b = pd.to_numeric(synthetic[c], errors="coerce")
            ks = stats.ks_2samp(a.dropna(), b.dropna()).statistic if b.notna().any() else 1.0
            columns[c] = {"kind": "numeric", "ks": round(float(ks), 4)}
        else:
            src = _shares(source[c])
            syn = _shares(synthetic[c])
            tvd = 0.5 * sum(abs(src.get(k, 0.0) - syn.get(k, 0.0)) for k in set(src) | set(syn))
            columns[c] = {"kind": "categorical", "tvd": round(tvd, 4)}
    distances = [v.get("ks", v.get("tvd", 0.0)) for v in columns.values()]
    corr_s = GaussianCopula.fit(source).correlation
    corr_y = GaussianCopula.fit(synthetic).correlation
    diff = float(np.max(np.abs(corr_s - corr_y))) if corr_s.size > 1 else 0.0
    return {
        "columns": columns,
        "max_correlation_difference": round(diff, 4),
        "quality": round(1.0 - float(np.mean(distances)), 4),
    }
