"""The guard's statistics against exact arithmetic."""

from __future__ import annotations

import math
from fractions import Fraction

from hypothesis import given, settings, strategies as st

from drift.stats import mcnemar_p, rate_above_p


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 600), st.integers(0, 600))
def test_mcnemar_p_is_the_exact_two_sided_binomial_tail(b, c):
    # A regressor's contests call it at every labeled event with hundreds of discordant events,
    # so it sums from the largest term down and stops early: still the exact tail, to 1e-11.
    n, k = b + c, min(b, c)
    exact = min(Fraction(1), 2 * Fraction(sum(math.comb(n, i) for i in range(k + 1)), 2 ** n)) if n else Fraction(1)
    assert math.isclose(mcnemar_p(b, c), float(exact), rel_tol=1e-11, abs_tol=1e-300)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 400), st.data(), st.integers(1, 999))
def test_rate_above_p_is_the_exact_binomial_upper_tail(n, data, permille):
    # Whether a model errs above its pre-onset rate: with few errors expected (9 in 150 at 0.062)
    # the normal approximation understated this tail threefold and more, and a stationary stream
    # rolled back on a rise "shown" at 0.0016 whose exact tail is 0.0056.
    errors = data.draw(st.integers(0, n))
    p0 = Fraction(permille, 1000)
    exact = sum(math.comb(n, i) * p0 ** i * (1 - p0) ** (n - i) for i in range(errors, n + 1))
    assert math.isclose(rate_above_p(errors, n, permille / 1000), float(exact), rel_tol=1e-9, abs_tol=1e-12)
