"""Evidence that one model's losses are below another's, valid however often it is read.

The guard's contests ask at every labeled event whether a challenger beats the live model. A
fixed-sample test (McNemar on a sliding window) asked that way finds a winner between two equally
good models far more often than its `alpha` (`benchmarks/contest_false_wins.py`). This test bets:

- each event gives r in [-1, 1]: the difference a - b (`a` the live model's loss, `b` the
  challenger's) in units of the two models' mean loss over the `SCALE_EVENTS` events before it,
  clipped to [-1, 1] (its sign when they made no loss). For 0/1 losses that is the sign of a
  discordant pair, the evidence of McNemar's test; for absolute errors it weighs how much lower a
  loss is, as MAE does, without letting a few huge errors decide. If the two losses of an event
  are exchangeable given the past ("neither model is better"), a - b is symmetric about 0 and the
  scale is known before it, so r has mean 0 whatever the law of the losses;
- a bettor stakes a fraction `lam` of its wealth on r > 0 at each event: wealth *= 1 + lam * r.
  With mean-0 r its wealth is a nonnegative martingale that starts at 1;
- the challenger may become better later (a fresh model learning, an incident ending), so a new
  bettor starts every `every` events, the j-th with prior weight w_j proportional to (j + 1)^-1.5
  (the weights sum to 1: early starts, when a decision matters most, get most of it), and each
  spreads its stake over a grid of fractions.

The weighted sum of the wealths, `e`, is then a nonnegative martingale that starts at 1, and by
Ville's inequality P(e ever reaches 1 / alpha) <= alpha: `p = 1 / e` may be read at every event.
Dropping a bettor only lowers `e`, so bettors that have lost nearly all their stake, and the oldest
beyond `MAX_BETTORS`, are dropped. A restart drops them all and carries on with the next weights:
the bound covers the whole life of the test.

>>> t = SequentialTest()
>>> for i in range(60):
...     t.add(1.0 if i % 3 else 0.0, 0.0)   # the challenger right where the other erred, 40 times
>>> t.p_value() < 0.01
True
>>> t = SequentialTest()
>>> for i in range(60):
...     t.add(float(i % 2), float(i % 2 == 0))  # each wrong half the time: no evidence
>>> t.p_value()
1.0
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

FRACTIONS = np.array([0.05, 0.1, 0.2, 0.35, 0.5, 0.7])  # stakes each bettor spreads its wealth over
ZETA_1_5 = 2.6123753486854883  # sum of (j + 1)^-1.5 over j >= 0
MAX_BETTORS = 100
LOST = 1e-3  # a bettor whose best stake is worth less than this is dropped
SCALE_EVENTS = 200  # events whose mean loss is the unit of a difference


class SequentialTest:
    """Anytime-valid paired test that `b` (a challenger's losses) is below `a` (see the module doc)."""

    def __init__(self, every: int = 50) -> None:
        self.every = every
        self.events = 0
        self.started = 0  # bettors started so far: the next one's weight
        self._weights = np.empty(0)
        self._wealth = np.empty((0, FRACTIONS.size))
        self._losses: deque[float] = deque(maxlen=SCALE_EVENTS)  # the two models' mean loss, per event
        self._loss_sum = 0.0

    def add(self, a: float, b: float) -> None:
        if self.events % self.every == 0:
            self._weights = np.append(self._weights, (self.started + 1) ** -1.5 / ZETA_1_5)
            self._wealth = np.vstack([self._wealth, np.ones(FRACTIONS.size)])
            self.started += 1
        self.events += 1
        difference = a - b
        if difference != 0 and not math.isnan(difference):  # a tie, or a loss that is no number: no evidence
            scale = self._loss_sum / len(self._losses) if self._losses else 0.0
            r = max(-1.0, min(1.0, difference / scale)) if scale > 0 else math.copysign(1.0, difference)
            if not math.isnan(r):  # an infinite difference on an infinite scale
                self._wealth *= 1.0 + FRACTIONS * r
        mean = (a + b) / 2
        if math.isfinite(mean):  # a loss that is no number would be the scale of the next events too
            if len(self._losses) == SCALE_EVENTS:
                self._loss_sum -= self._losses[0]
            self._losses.append(mean)
            self._loss_sum += mean
        if self.events % self.every == 0:
            self._loss_sum = sum(self._losses)  # no rounding drift from the running sum
            self._drop_lost()

    def restart(self) -> None:
        """Drop the evidence so far; new bettors carry on with the next weights."""
        self.events = 0
        self._weights = np.empty(0)
        self._wealth = np.empty((0, FRACTIONS.size))

    def e_value(self) -> float:
        if not self._weights.size:
            return 0.0
        return float(self._weights @ self._wealth.mean(axis=1))

    def p_value(self) -> float:
        e = self.e_value()
        return 1.0 if e <= 1.0 else 1.0 / e

    def _drop_lost(self) -> None:
        keep = self._wealth.max(axis=1) >= LOST
        keep[:-MAX_BETTORS] = False
        if not keep.all():
            self._weights, self._wealth = self._weights[keep], self._wealth[keep]
