"""The guard's statistics against exact arithmetic."""

from __future__ import annotations

import math
from fractions import Fraction

from hypothesis import given, settings, strategies as st

from drift.stats import mcnemar_p


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 600), st.integers(0, 600))
def test_mcnemar_p_is_the_exact_two_sided_binomial_tail(b, c):
    # A regressor's contests call it at every labeled event with hundreds of discordant events,
    # so it sums from the largest term down and stops early: still the exact tail, to 1e-11.
    n, k = b + c, min(b, c)
    exact = min(Fraction(1), 2 * Fraction(sum(math.comb(n, i) for i in range(k + 1)), 2 ** n)) if n else Fraction(1)
    assert math.isclose(mcnemar_p(b, c), float(exact), rel_tol=1e-11, abs_tol=1e-300)
