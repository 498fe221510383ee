"""Small statistical tools the guard decides with: change points, paired comparisons, and the
limits chance reaches once in a billion windows (`CHANCE`).

Pure NumPy and math; no SciPy, so that `drift/` stays light.

>>> change_point([0.0] * 50 + [1.0] * 30)
50
>>> round(mcnemar_p(b=30, c=5), 6)   # one model right where the other was wrong: 30 vs 5 times
2.2e-05
>>> mcnemar_p(b=3, c=4)
1.0
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

CHANCE, Z_CHANCE = 1e-9, 6.0  # a limit that chance reaches in one window in a billion (as a z score)
Z_UPPER_95 = 1.645  # a one-sided 95% bound, as a z score (`mean_below`)


def change_point(values: Sequence[float], min_size: int = 5) -> int:
    """Index where the mean of `values` most likely changed (the first index of the second segment).

    Maximises the between-segment mean difference weighted by segment sizes (a CUSUM estimate of
    one change point). With fewer than `2 * min_size` values it returns 0.
    """
    v = np.asarray(values, dtype=float)
    n = v.size
    if n < 2 * min_size:
        return 0
    csum = np.cumsum(v)
    total = csum[-1]
    k = np.arange(min_size, n - min_size + 1)
    left_mean = csum[k - 1] / k
    right_mean = (total - csum[k - 1]) / (n - k)
    score = np.abs(left_mean - right_mean) * np.sqrt(k * (n - k) / n)
    return int(k[int(np.argmax(score))])


def mcnemar_p(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: `b` and `c` count the events where only one model erred.

    Under "equally good", each discordant event is a fair coin; this is the binomial test of b
    against (b + c) / 2: twice the tail of the larger count at a fair coin.
    """
    n = b + c
    if n == 0:
        return 1.0
    return min(1.0, 2.0 * _upper_tail(max(b, c), n, 0.5))


def rate_above_p(errors: int, n: int, baseline: float) -> float:
    """One-sided p-value that an error rate of `errors / n` is above `baseline`: the exact binomial
    tail P(X >= errors), X ~ Binomial(n, baseline).

    Small p: the errors are significantly above the baseline. Used to ask whether a model errs at
    its pre-alarm level. The normal approximation once used here understates this tail when few
    errors are expected: 18 errors in 150 events against 0.062 (9.3 expected) have p = 0.0056, the
    approximation said 0.0016 (hyperplane / tree, stationary seed 6097: a rise "shown" where
    nothing changed).

    >>> round(rate_above_p(18, 150, 0.062), 4)
    0.0056
    >>> rate_above_p(0, 150, 0.062)
    1.0
    """
    if n == 0 or errors <= 0:
        return 1.0
    if errors > n:
        return 0.0
    p0 = min(max(baseline, 1e-12), 1 - 1e-12)
    if errors >= n * p0:
        return min(1.0, _upper_tail(errors, n, p0))
    # Below the mean: one minus the lower tail P(X <= errors - 1), which is the upper tail of the
    # correct answers, n - X ~ Binomial(n, 1 - p0); the result is then at least about a half.
    return max(0.0, 1.0 - _upper_tail(n - errors + 1, n, 1 - p0))


def _upper_tail(k: int, n: int, p: float) -> float:
    """P(X >= k), X ~ Binomial(n, p), for k at or above the mean n * p.

    The terms from k up, each the one before times (n - i) / (i + 1) * p / (1 - p): one lgamma, not
    one a term (a regressor's contest asks `mcnemar_p` with hundreds of discordant events at every
    labeled event), and past the mode they fall at least geometrically, so the sum stops when they
    no longer count (a term near the mode never does).
    """
    odds = p / (1 - p)
    term = math.exp(_log_comb(n, k) + k * math.log(p) + (n - k) * math.log1p(-p))
    tail = 0.0
    for i in range(k, n + 1):
        tail += term
        term *= (n - i) / (i + 1) * odds
        if term <= tail * 1e-17:
            break
    return tail


def mean_below(values: Sequence[float], level: float) -> bool:
    """Is the mean of `values` below `level` with 95% confidence? (The one-sided upper bound of a
    normal approximation; for 0/1 values the sample variance is the rate's p(1 - p).)

    For 0/1 losses with few errors this bound is too low (5 in 50: 0.171; exactly, 0.199). The exact
    bound was measured and reverted (dddf247): it let a look show a rise against a pre-onset level
    taken as known, where nothing changed (stationary seed 8022); asking against the level's own
    events comes first (benchmarks/RESULTS.md).

    >>> mean_below([1.0] * 7 + [0.0] * 43, level=0.176)  # 0.14 on 50 events: the bound is 0.22
    False
    >>> mean_below([1.0] * 5 + [0.0] * 45, level=0.176)  # 0.10: the bound is 0.17
    True
    """
    n = len(values)
    mean = sum(values) / n
    variance = sum((x - mean) ** 2 for x in values) / (n - 1) if n > 1 else 0.0
    return mean + Z_UPPER_95 * math.sqrt(variance / n) < level


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def chance_rate(rate: float, n: int) -> float:
    """The rate of events, out of `n` each at probability `rate`, exceeded once in a billion."""
    if rate <= 0 or rate >= 1:
        return rate
    tail = 0.0
    for k in range(n, -1, -1):  # exact binomial upper tail, from the top down
        tail += math.exp(_log_comb(n, k) + k * math.log(rate) + (n - k) * math.log1p(-rate))
        if tail >= CHANCE:
            return k / n
    return 0.0


def rate_at_psi(q: float, rate: float, threshold: float) -> float:
    """The rate of one bin, on the side `rate` moved to, at which that bin alone adds `threshold`
    to the PSI: the threshold a missing or wrong-type rate is reported against."""
    def excess(p: float) -> float:
        return (p - q) * math.log(p / q) - threshold

    rising = rate >= q
    lo, hi = (q, 1.0) if rising else (1e-12, q)
    if excess(hi if rising else lo) < 0:
        return hi if rising else 0.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if (excess(mid) > 0) == rising:
            hi = mid
        else:
            lo = mid
    return (lo + hi) / 2
