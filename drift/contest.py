"""The quarantine contest: paired evidence between the restored model and its challengers.

Every labeled event in quarantine is scored by every model on the same event. A challenger (the
candidate that keeps learning, or a parked model of an earlier regime) wins when its losses are
significantly below the restored model's *and* by a material margin of mean loss on the last
`window` events, and the margin holds on the latest `recent` events too: a win that rests on inputs
that are gone (the incident ended while the window still remembers it) is no win.

"Significantly" is asked at every labeled event, so by default it is the sequential test of
`drift/sequential.py`, whose `alpha` holds however often it is read. A contest held once on a fixed
set of events (`sequential=False`) uses exact McNemar (the sign test) on the window.

>>> c = Contest(["candidate"], window=200)
>>> for i in range(200):
...     c.add(restored=1.0 if i % 2 else 0.0, challengers={"candidate": 0.0})
>>> name, evidence = c.winner(alpha=0.01, margin=0.1)
>>> name, evidence["better"], evidence["worse"]
('candidate', 100, 0)
"""

from __future__ import annotations

from collections import deque
from itertools import islice

from drift.sequential import SequentialTest
from drift.stats import mcnemar_p, rate_above_p

BASELINE_RATIO = 1.25  # regressors: a mean absolute error within this ratio of the baseline is at it
BASELINE_P = 0.05  # classifiers: an error rate above the baseline at this one-sided p-value is not at it


class Contest:
    """Sliding-window paired comparison of the restored model against named challengers."""

    def __init__(self, challengers: list[str], window: int = 500, recent: int = 200, *,
                 sequential: bool = True) -> None:
        self.window = window
        self.recent = recent
        self.labeled = 0
        self._restored: deque[float] = deque(maxlen=window)
        self._pairs: dict[str, deque[float]] = {name: deque(maxlen=window) for name in challengers}
        self._better = {name: 0 for name in challengers}  # challenger's loss below the restored one's
        self._worse = {name: 0 for name in challengers}
        self._tests = {name: SequentialTest() for name in challengers} if sequential else None

    def __setstate__(self, state: dict) -> None:
        if "_tests" not in state:  # a snapshot from before the sequential test: it starts now
            state["_tests"] = {name: SequentialTest() for name in state["_pairs"]}
        self.__dict__.update(state)

    @property
    def challengers(self) -> list[str]:
        return list(self._pairs)

    def add(self, restored: float, challengers: dict[str, float]) -> None:
        if len(self._restored) == self.window:
            old = self._restored[0]
            for name, losses in self._pairs.items():
                self._count(name, old, losses[0], -1)
        self._restored.append(restored)
        for name, losses in self._pairs.items():
            loss = challengers.get(name, restored)
            losses.append(loss)
            self._count(name, restored, loss, +1)
            if self._tests is not None:
                self._tests[name].add(restored, loss)
        self.labeled += 1

    def restart(self) -> None:
        """Drop the paired evidence so far (e.g. it came from inputs that are gone); keep `labeled`."""
        self._restored.clear()
        for name, losses in self._pairs.items():
            losses.clear()
            self._better[name] = self._worse[name] = 0
            if self._tests is not None:
                self._tests[name].restart()

    def _count(self, name: str, restored: float, challenger: float, step: int) -> None:
        if challenger < restored:
            self._better[name] += step
        elif challenger > restored:
            self._worse[name] += step

    def mean_loss(self, name: str | None = None) -> float | None:
        losses = self._restored if name is None else self._pairs[name]
        return sum(losses) / len(losses) if losses else None

    def winner(self, alpha: float, margin: float) -> tuple[str | None, dict]:
        """The best challenger that beats the restored model significantly and materially, if any:
        the lowest mean loss (on a tie, the first in `challengers`), except that a parked model
        that wins gives way only to one that beats it too, head to head (exact McNemar on the
        window, asked only while both win, and the margin). It is
        the model of a known regime, trained on all of it; a newcomer (the candidate, the fresh
        model) has a few hundred events at most, and its lower loss on a short window may be
        chance (holdout seed 61, sine swapped columns / tree: a fresh tree with 4 errors in 48
        events against the parked tree's 6 was preferred, then served 10,000 events 2% under the
        oracle)."""
        winners = self._winners(alpha, margin)
        best = _lowest(winners)
        parked = _lowest([w for w in winners if w["challenger"].startswith("parked:")])
        if best is None or parked is None or best is parked:
            return (best["challenger"], best) if best else (None, {})
        better, worse = self._head_to_head(best["challenger"], parked["challenger"])
        p = mcnemar_p(better, worse)
        improvement = ((parked["challenger_loss"] - best["challenger_loss"]) / parked["challenger_loss"]
                       if parked["challenger_loss"] else 0.0)
        head_to_head = {"better": better, "worse": worse, "p_value": p, "improvement": improvement}
        if better > worse and p < alpha and improvement >= margin:
            return best["challenger"], {**best, "head_to_head": {**head_to_head, "against": parked["challenger"]}}
        return parked["challenger"], {**parked, "head_to_head": {**head_to_head, "newcomer": best["challenger"]}}

    def _winners(self, alpha: float, margin: float) -> list[dict]:
        """The evidence of each challenger that beats the restored model significantly and
        materially (also on the latest `recent` events), in the order of `challengers`."""
        restored_mean = self.mean_loss()
        winners = []
        for name in self._pairs:
            better, worse = self._better[name], self._worse[name]
            # McNemar is two-sided, so it also asks which way; the sequential test is one-sided.
            if self._tests is None:
                p, ahead = mcnemar_p(better, worse), better > worse
            else:
                p, ahead = self._tests[name].p_value(), True
            mean = self.mean_loss(name)
            improvement = 0.0 if not restored_mean else (restored_mean - mean) / restored_mean
            recent = self._recent_improvement(name)
            if ahead and p < alpha and improvement >= margin and recent >= margin:
                winners.append({
                    "challenger": name,
                    "test": "mcnemar" if self._tests is None else "sequential",
                    "better": better,
                    "worse": worse,
                    "p_value": p,
                    "alpha": alpha,
                    "restored_loss": restored_mean,
                    "challenger_loss": mean,
                    "improvement": improvement,
                    "margin": margin,
                    "events": len(self._restored),
                    "recent_improvement": recent,
                })
        return winners

    def _head_to_head(self, name: str, other: str) -> tuple[int, int]:
        """On how many events of the window `name`'s loss is below `other`'s, and above it."""
        pairs = list(zip(self._pairs[name], self._pairs[other]))
        return sum(a < b for a, b in pairs), sum(a > b for a, b in pairs)

    def loses(self, name: str, alpha: float) -> tuple[bool, float]:
        """Is `name` worse than the restored model on significantly more events than the reverse?
        (The same paired test as `winner`, the other way round.) Also returns its p-value."""
        better, worse = self._better[name], self._worse[name]
        p = mcnemar_p(worse, better)
        return worse > better and p < alpha, p

    def _recent_improvement(self, name: str) -> float:
        """Relative improvement of `name`'s mean loss over the restored model's on the latest events."""
        restored = sum(islice(reversed(self._restored), self.recent))
        challenger = sum(islice(reversed(self._pairs[name]), self.recent))
        return (restored - challenger) / restored if restored else 0.0

    def restored_recovered(self, baseline: float | None, classifier: bool, ratio: float = BASELINE_RATIO,
                           recent: int | None = None) -> tuple[bool, dict]:
        """Is the restored model's loss over the `recent` latest events back at its pre-alarm level
        (`at_baseline`)? `recent` defaults to the contest's `recent`; the whole window asks more: it
        sees smaller rises."""
        size = recent or self.recent
        recent = list(self._restored)[-size:]
        if len(recent) < size:
            return False, {"baseline": baseline, "recent_events": len(recent)}
        return at_baseline(recent, baseline, classifier, ratio)


def at_baseline(losses: list[float], baseline: float | None, classifier: bool,
                ratio: float = BASELINE_RATIO, p_limit: float = BASELINE_P) -> tuple[bool, dict]:
    """Are these losses at the `baseline` level (the mean loss of a normal period)?

    Classifiers: the error rate is not significantly above the baseline (one-sided, p >= `p_limit`).
    Regressors: the mean absolute error is within `ratio` of the baseline.
    """
    n = len(losses)
    evidence = {"baseline": baseline, "recent_events": n}
    if baseline is None or n == 0:
        return False, evidence
    mean = sum(losses) / n
    evidence["recent_loss"] = mean
    if classifier:
        p = rate_above_p(int(round(sum(losses))), n, baseline)
        evidence.update(test="rate_above_baseline", p_value=p)
        return p >= p_limit, evidence
    evidence.update(test="ratio_to_baseline", ratio=ratio)
    return mean <= baseline * ratio, evidence


def _lowest(winners: list[dict]) -> dict | None:
    """The evidence of the lowest mean loss among `winners`; on a tie the first."""
    return min(winners, key=lambda w: w["challenger_loss"]) if winners else None
