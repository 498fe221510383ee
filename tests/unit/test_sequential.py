"""The contests' sequential test: its alpha holds however often it is read, and it still decides."""

from __future__ import annotations

import random

from hypothesis import given, settings, strategies as st

from drift.contest import Contest
from drift.sequential import SequentialTest


def _ever_below(test: SequentialTest, pairs, alpha: float) -> bool:
    for a, b in pairs:
        test.add(a, b)
        if test.p_value() < alpha:
            return True
    return False


def test_between_equally_good_models_read_at_every_event_it_names_a_winner_at_most_alpha_of_the_time():
    # 200 streams of 1,500 events, read at every event: 0/1 losses at 0.3, and absolute errors of
    # one law. Ville's inequality bounds the false wins at alpha = 5%, 10 of 200.
    rng = random.Random(7)
    for draw in (lambda: float(rng.random() < 0.3), lambda: abs(rng.gauss(0, 1))):
        wins = sum(_ever_below(SequentialTest(), ((draw(), draw()) for _ in range(1500)), 0.05) for _ in range(200))
        assert wins <= 10


def test_a_better_challenger_wins_and_a_worse_one_does_not():
    rng = random.Random(3)
    better = SequentialTest()
    assert _ever_below(better, ((float(rng.random() < 0.3), float(rng.random() < 0.15)) for _ in range(1000)), 0.01)
    worse = SequentialTest()
    assert not _ever_below(worse, ((float(rng.random() < 0.15), float(rng.random() < 0.3)) for _ in range(1000)), 0.5)


def test_a_challenger_that_becomes_better_late_is_still_found():
    # A fresh model worse for 1,000 events, then better: the bettors started after its bad start
    # do not carry it.
    rng = random.Random(5)
    pairs = [(float(rng.random() < 0.2), float(rng.random() < (0.5 if i < 1000 else 0.05))) for i in range(2000)]
    test = SequentialTest()
    assert not _ever_below(test, pairs[:1000], 0.01)
    assert _ever_below(test, pairs[1000:], 0.01)


# No loss so small that a change of unit rounds it to 0 (5e-324 / 2): the ratio is then lost.
LOSSES = st.one_of(st.just(0.0), st.floats(1e-6, 100))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(LOSSES, LOSSES), min_size=1, max_size=300), st.floats(0.01, 1000))
def test_only_the_ratio_of_the_two_losses_counts(pairs, scale):
    # A few huge errors of a regressor do not decide more than their share: the evidence of an
    # event is the losses' relative difference, the same in any unit.
    one, other = SequentialTest(), SequentialTest()
    for a, b in pairs:
        one.add(a, b)
        other.add(a * scale, b * scale)
    assert abs(one.e_value() - other.e_value()) <= 1e-9 * max(1.0, one.e_value())


def test_a_loss_that_is_no_number_is_no_evidence():
    test = SequentialTest()
    for _ in range(100):
        test.add(float("nan"), 0.0)
        test.add(float("inf"), float("inf"))
    assert test.p_value() == 1.0


def test_a_loss_that_is_no_number_leaves_the_scale_of_the_next_events_alone():
    rng = random.Random(3)
    pairs = [(rng.expovariate(1.0), rng.expovariate(1.3)) for _ in range(400)]
    plain, spoiled = SequentialTest(), SequentialTest()
    for i, (a, b) in enumerate(pairs):
        plain.add(a, b)
        spoiled.add(a, b)
        if i == 99:
            spoiled.add(float("nan"), 0.0)
            spoiled.add(float("inf"), 1.0)
    # The two extra events shift when bettors start, so the figures differ a little (1,390 against
    # 1,072); a scale that took them in weighed the next 200 events by their sign alone (64).
    assert plain.e_value() > 100 and spoiled.e_value() > plain.e_value() / 2


def test_a_restart_forgets_the_evidence_and_spends_no_alpha_twice():
    test = SequentialTest(every=10)
    for _ in range(100):
        test.add(1.0, 0.0)
    assert test.p_value() < 1e-6
    started = test.started
    test.restart()
    assert test.p_value() == 1.0
    test.add(1.0, 0.0)
    assert test.started == started + 1  # the next bettor has the next, smaller, weight


def test_a_contest_restored_from_a_snapshot_taken_before_the_sequential_test_starts_one():
    contest = Contest(["candidate"], window=50)
    state = contest.__dict__.copy()
    del state["_tests"]
    old = Contest.__new__(Contest)
    old.__setstate__(state)
    for _ in range(50):
        old.add(1.0, {"candidate": 0.0})
    assert old.winner(alpha=0.01, margin=0.1)[0] == "candidate"
