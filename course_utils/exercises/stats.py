r"""Statistical tests that judge the output of stochastic exercises.

A stochastic exercise's ``judge(case, output)`` calls a few of these on a large sample
and returns the first problem found (each test returns a message, or None).

**False failures.** Every test rejects a correct answer with probability at most
``ALPHA = 1e-7``: exactly for ``bounds_test`` (never), ``rate_test`` (binomial
quantiles) and ``std_test`` on normal samples (chi-square quantiles), and up to the
normal approximation of the sample mean (central limit theorem, samples of 10,000 or
more) for ``mean_test``, ``std_test`` on other distributions and ``correlation_test``;
``ks_test`` uses the Dvoretzky-Kiefer-Wolfowitz-Massart bound, which holds for every
sample size. A judge runs at most ``MAX_TESTS_PER_CASE = 10`` tests
on a case, so by the union bound a correct answer fails a case with probability below
10 * 1e-7 = 1e-6. The acceptance threshold of the z-tests is |z| <= Z = 5.33, the
two-sided normal quantile for ALPHA.

**Power.** A judge must catch a wrong scale (a standard deviation off by 10%, a
missing 1/(1 - p), fan_out instead of fan_in) with probability above 0.999. For the
standard deviation of n iid samples, s / sigma has standard error
sqrt((kurtosis - 1) / (4 n)) (1 / sqrt(2 n) for a normal): with n = 16,384 the test
accepts s / sigma within 1 +- 0.030, so a 10% error is more than 12 standard errors
beyond the edge and passes with probability below 1e-30. ``min_samples_for_scale``
gives the smallest n for which a relative scale error is caught with probability
0.999; the exercise case generators use at least that many samples (the common tests
check both rates over many seeds).
"""

from __future__ import annotations

import math
import statistics

import numpy as np

ALPHA = 1e-7  # false-failure probability of one test
MAX_TESTS_PER_CASE = 10  # so a correct answer fails a case with probability < 1e-6
Z = statistics.NormalDist().inv_cdf(1 - ALPHA / 2)  # 5.33: two-sided z threshold for ALPHA

__all__ = [
    "ALPHA",
    "MAX_TESTS_PER_CASE",
    "Z",
    "bounds_test",
    "correlation_test",
    "ks_test",
    "mean_test",
    "min_samples_for_scale",
    "rate_test",
    "same_distribution",
    "std_test",
]


def _flat(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).ravel()


def min_samples_for_scale(relative_error: float, kurtosis: float = 3.0, power=0.999) -> int:
    """The smallest n for which ``std_test`` catches s / sigma = 1 + relative_error.

        n >= (Z + z_power)^2 (kurtosis - 1) / (4 relative_error^2)

    (normal approximation of s / sigma with standard error sqrt((kurtosis - 1) / (4 n))).
    """
    z_power = statistics.NormalDist().inv_cdf(power)
    return math.ceil((Z + z_power) ** 2 * (kurtosis - 1) / (4 * relative_error**2))


def mean_test(x, mean: float, std: float, what: str = "values") -> str | None:
    """The sample mean of iid values with known standard deviation ``std``.

    z = (mean(x) - mean) / (std / sqrt(n)),   accept |z| <= Z
    """
    x = _flat(x)
    z = (x.mean() - mean) / (std / math.sqrt(x.size))
    if abs(z) <= Z:
        return None
    return (
        f"the mean of the {what} is {z:+.1f} standard errors from the target "
        f"(a correct answer is within ±{Z:.1f})"
    )


def std_test(x, std: float, mean: float | None = None, kurtosis: float = 3.0, what="values"):
    """The sample standard deviation of iid values against ``std``.

    With the mean known, s^2 = mean((x - mean)^2) and n degrees of freedom; else the
    sample variance with n - 1. For normal samples (kurtosis 3), n s^2 / std^2 is
    chi-square distributed and the acceptance region is its ALPHA/2 and 1 - ALPHA/2
    quantiles (exact); otherwise s^2 / std^2 is taken as normal with standard error
    sqrt((kurtosis - 1) / n) (uniform: kurtosis 1.8).
    """
    from scipy import stats as scipy_stats

    x = _flat(x)
    if mean is None:
        dof, variance = x.size - 1, x.var(ddof=1)
    else:
        dof, variance = x.size, float(np.mean((x - mean) ** 2))
    ratio = math.sqrt(variance) / std
    if kurtosis == 3.0:
        low = math.sqrt(scipy_stats.chi2.ppf(ALPHA / 2, dof) / dof)
        high = math.sqrt(scipy_stats.chi2.isf(ALPHA / 2, dof) / dof)
    else:
        half = Z * math.sqrt((kurtosis - 1) / dof)
        low, high = math.sqrt(max(1 - half, 0.0)), math.sqrt(1 + half)
    if low <= ratio <= high:
        return None
    return (
        f"the standard deviation of the {what} is {ratio:.3g} times the target "
        f"(a correct answer is within {low:.3g} to {high:.3g} times)"
    )


def ks_test(x, cdf, what: str = "values") -> str | None:
    """Kolmogorov-Smirnov goodness of fit of iid values to a continuous distribution.

        D = max_x |F_n(x) - F(x)|,   P(D > d) <= 2 exp(-2 n d^2)

    The bound is the Dvoretzky-Kiefer-Wolfowitz inequality with Massart's constant,
    which holds for every n, so rejecting when it is below ALPHA keeps the false-failure
    probability below ALPHA exactly. ``cdf`` is a vectorized CDF, e.g.
    ``scipy.special.ndtr`` for N(0, 1) (scale x first) or ``scipy.stats.norm(0, s).cdf``.
    """
    x = np.sort(_flat(x))
    n = x.size
    F = np.asarray(cdf(x), dtype=np.float64)
    d = max(np.max(np.arange(1, n + 1) / n - F), np.max(F - np.arange(n) / n))
    p_bound = min(1.0, 2 * math.exp(-2 * n * d**2))
    if p_bound >= ALPHA:
        return None
    return (
        f"the {what} do not follow the target distribution (Kolmogorov-Smirnov distance "
        f"{d:.3f}; a correct answer is within {math.sqrt(math.log(2 / ALPHA) / (2 * n)):.3f})"
    )


def bounds_test(x, low: float, high: float, what: str = "values") -> str | None:
    """Every value in [low, high] (exact: a correct answer never fails this).

    The bounds are widened by one rounding error of x's dtype: a float32 sample from
    U[-a, a] may round to the float32 nearest to a, which can lie just beyond a.
    """
    x = np.asarray(x)
    slack = np.finfo(x.dtype).eps * max(abs(low), abs(high)) if x.dtype.kind == "f" else 0.0
    x = _flat(x)
    outside = int(np.sum((x < low - slack) | (x > high + slack) | np.isnan(x)))
    if outside == 0:
        return None
    return f"{outside} of {x.size} {what} lie outside the range they can take"


def rate_test(k: int, n: int, p: float, what: str = "events") -> str | None:
    """k successes in n Bernoulli(p) trials, two-sided exact binomial test.

    Reject when P(K <= k) < ALPHA/2 or P(K >= k) < ALPHA/2 for K ~ Binomial(n, p).
    """
    from scipy import stats as scipy_stats

    if scipy_stats.binom.cdf(k, n, p) >= ALPHA / 2 and scipy_stats.binom.sf(k - 1, n, p) >= (
        ALPHA / 2
    ):
        return None
    return (
        f"{k} of {n} {what} ({k / n:.4f}): the rate is too far from the target for a correct answer"
    )


def correlation_test(a, b, what: str = "values") -> str | None:
    """Independence of paired samples: Pearson's r with sqrt(n) r ~ N(0, 1) under H0."""
    a, b = _flat(a), _flat(b)
    if a.std() == 0 or b.std() == 0:
        return f"the {what} do not vary: they cannot be independent draws"
    r = float(np.corrcoef(a, b)[0, 1])
    if abs(r) * math.sqrt(a.size) <= Z:
        return None
    return f"the {what} are correlated (r = {r:.3f}); they should be independent draws"


def same_distribution(a, b, p_min: float = 1e-3) -> bool:
    """Whether two outputs look like draws from one distribution (for hints only).

    Two-sample Kolmogorov-Smirnov test on the values of each output array; True when
    every p-value is at least ``p_min``.
    """
    from scipy import stats as scipy_stats

    pairs = zip(a, b, strict=True) if isinstance(a, tuple) else [(a, b)]
    for x, y in pairs:
        x, y = _flat(x), _flat(y)
        if x.size == 0 or np.array_equal(x, y):
            continue
        if scipy_stats.ks_2samp(x, y).pvalue < p_min:
            return False
    return True
