"""The noise of a DP release has the scale its ε calls for, checked statistically: the
test rejects noise drawn for twice the ε, so it can fail."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from veilflow.errors import PolicyError
from veilflow.policy import parse_policy
from veilflow.policy.releases import ReleaseSpec
from veilflow.privacy.dp import noise_of, noisy_counts, noisy_sums, privatize

DRAWS = 4000


def test_count_noise_is_the_discrete_laplace_of_its_epsilon() -> None:
    eps = 0.5
    noise = noisy_counts(np.full(DRAWS, 10_000), eps, seed=11) - 10_000
    # Two-sided geometric with p = e^-ε: variance 2p / (1 - p)^2.
    p = math.exp(-eps)
    var = 2 * p / (1 - p) ** 2
    assert noise.var() == pytest.approx(var, rel=0.1)
    assert abs(noise.mean()) < 4 * math.sqrt(var / DRAWS)
    twice = noisy_counts(np.full(DRAWS, 10_000), 2 * eps, seed=12) - 10_000
    assert twice.var() < 0.5 * var  # the check tells ε from 2ε


def test_sum_noise_is_laplace_with_scale_sensitivity_over_epsilon() -> None:
    bounds, eps = (0.0, 1000.0), 0.8
    b = 1000.0 / eps
    noise = noisy_sums(np.full(DRAWS, 50_000.0), bounds, eps, seed=5) - 50_000.0
    assert stats.kstest(noise / b, stats.laplace.cdf).pvalue > 0.001
    wrong = noisy_sums(np.full(DRAWS, 50_000.0), bounds, 2 * eps, seed=6) - 50_000.0
    assert stats.kstest(wrong / b, stats.laplace.cdf).pvalue < 0.001
    assert noise_of(
        ReleaseSpec(name="s", statistic="sum", column="a", bounds=bounds, epsilon=eps)
    ).scale == pytest.approx(b)


def test_gaussian_noise_has_the_analytic_sigma_of_epsilon_and_delta() -> None:
    spec = ReleaseSpec(
        name="g",
        statistic="sum",
        column="a",
        bounds=(-5.0, 5.0),
        epsilon=1.0,
        delta=1e-6,
        mechanism="gaussian",
    )
    sigma = noise_of(spec).scale
    assert sigma > 5.0  # above sensitivity / ε for this δ
    noise = privatize(spec, np.zeros(DRAWS, np.int64), np.zeros(DRAWS), seed=3)
    assert stats.kstest(noise / sigma, stats.norm.cdf).pvalue > 0.001


def test_a_mean_stays_within_its_bounds() -> None:
    spec = ReleaseSpec(name="m", statistic="mean", column="a", bounds=(0.0, 100.0), epsilon=0.1)
    out = privatize(spec, np.array([1, 0, 5000]), np.array([90.0, 0.0, 250_000.0]), seed=1)
    assert ((out >= 0) & (out <= 100)).all()
    assert out[2] == pytest.approx(50.0, abs=5.0)  # many rows: little noise on the mean


POLICY = """
dataset: d
source: {table: restricted.d, key: id}
target: {table: anonymized.d}
columns: {id: drop, amount: keep, sex: keep}
releases:
  - %s
"""


@pytest.mark.parametrize(
    ("release", "message"),
    [
        ("{name: a, statistic: sum, column: amount, epsilon: 1}", "needs bounds"),
        (
            "{name: a, statistic: histogram, column: amount, bins: [5, 1], epsilon: 1}",
            "bins must increase",
        ),
        ("{name: a, statistic: count, epsilon: 0}", "greater than 0"),
        ("{name: a, statistic: count, epsilon: 1, mechanism: gaussian}", "needs delta"),
        ("{name: a, statistic: count, epsilon: 1, delta: 0.0001}", "delta is for the gaussian"),
        (
            "{name: a, statistic: count, epsilon: 1, group_by: {nosuch: [1]}}",
            "'nosuch' is not declared",
        ),
        ("{name: a, statistic: count, epsilon: 1, group_by: {sex: []}}", "declare its values"),
        ("{name: a, statistic: count, epsilon: 1, table: restricted.x}", "anonymized"),
    ],
)
def test_a_malformed_release_is_a_policy_error_naming_the_field(release: str, message: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(POLICY % release, file="p.yaml")
    assert message in str(info.value) and "release" in str(info.value)
