"""Noise for the cells of a differentially private release (pure: arrays in, arrays out).

The mechanisms are diffprivlib's (ADR 0019): integer counts get its geometric mechanism (the
discrete Laplace: no floating-point attack on the low bits of the noise), sums get its
Laplace mechanism (sampled as Holohan & Braghin, 2021), and with δ > 0 both get its analytic
Gaussian mechanism. Randomness comes from ``secrets`` unless a seed is given (tests only).

Sensitivity, under add/remove-one-record neighbouring tables: a record falls in exactly one
cell of a release, so a count changes by 1 in one cell (L1 = L2 = 1) and a clipped sum by at
most max(|lower|, |upper|). A mean spends half its ε (and δ) on the sum and half on the count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from diffprivlib.mechanisms import GaussianAnalytic, Geometric, Laplace

from veilflow.policy.releases import ReleaseSpec


@dataclass(frozen=True)
class Noise:
    """What a mechanism adds, for the manifest, lineage and the statistical test."""

    mechanism: str
    sensitivity: float
    #: Laplace b (sensitivity / ε) or Gaussian σ of one cell's noise, per measured part.
    scale: float


def _mechanism(
    epsilon: float, delta: float, sensitivity: float, *, integer: bool, seed: int | None
) -> Geometric | Laplace | GaussianAnalytic:
    if delta > 0:
        return GaussianAnalytic(
            epsilon=epsilon, delta=delta, sensitivity=sensitivity, random_state=seed
        )
    if integer:
        return Geometric(epsilon=epsilon, sensitivity=int(sensitivity), random_state=seed)
    return Laplace(epsilon=epsilon, sensitivity=sensitivity, random_state=seed)


def _randomise(values: np.ndarray, mech: Geometric | Laplace | GaussianAnalytic) -> np.ndarray:
    return np.array([mech.randomise(v) for v in values.tolist()], dtype=np.float64)


def noisy_counts(
    counts: np.ndarray, epsilon: float, delta: float = 0.0, *, seed: int | None = None
) -> np.ndarray:
    """Counts with noise of sensitivity 1, rounded and floored at 0 (post-processing)."""
    mech = _mechanism(epsilon, delta, 1, integer=True, seed=seed)
    out = _randomise(counts.astype(np.int64), mech)
    return np.asarray(np.maximum(np.rint(out), 0).astype(np.int64))


def noisy_sums(
    sums: np.ndarray,
    bounds: tuple[float, float],
    epsilon: float,
    delta: float = 0.0,
    *,
    seed: int | None = None,
) -> np.ndarray:
    """Sums of values clipped to ``bounds`` with noise of sensitivity max(|bound|)."""
    mech = _mechanism(epsilon, delta, sum_sensitivity(bounds), integer=False, seed=seed)
    return _randomise(sums.astype(np.float64), mech)


def sum_sensitivity(bounds: tuple[float, float]) -> float:
    return max(abs(bounds[0]), abs(bounds[1]))


def noise_of(spec: ReleaseSpec) -> Noise:
    """The noise one cell of ``spec`` gets (for a mean: the sum's part)."""
    eps, delta = spec.epsilon, spec.delta
    if spec.statistic == "mean":
        eps, delta = eps / 2, delta / 2
    sens = (
        1.0 if spec.statistic in ("count", "histogram") else sum_sensitivity(spec.bounds or (0, 0))
    )
    if delta > 0:
        mech = GaussianAnalytic(epsilon=eps, delta=delta, sensitivity=sens)
        return Noise("gaussian_analytic", sens, float(mech._scale))
    kind = "geometric" if spec.statistic in ("count", "histogram") else "laplace"
    return Noise(kind, sens, sens / eps)


def privatize(
    spec: ReleaseSpec,
    counts: np.ndarray,
    sums: np.ndarray | None = None,
    *,
    seed: int | None = None,
) -> np.ndarray:
    """The released value of every cell: a count, a sum or a mean."""
    if spec.statistic in ("count", "histogram"):
        return noisy_counts(counts, spec.epsilon, spec.delta, seed=seed)
    assert sums is not None and spec.bounds is not None
    if spec.statistic == "sum":
        return noisy_sums(sums, spec.bounds, spec.epsilon, spec.delta, seed=seed)
    half_e, half_d = spec.epsilon / 2, spec.delta / 2
    total = noisy_sums(sums, spec.bounds, half_e, half_d, seed=seed)
    n = noisy_counts(counts, half_e, half_d, seed=None if seed is None else seed + 1)
    lo, hi = spec.bounds
    return np.asarray(np.clip(total / np.maximum(n, 1), lo, hi))
