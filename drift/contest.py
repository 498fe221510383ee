"""The quarantine contest: paired evidence between the restored model and its challengers.

Every labeled event in quarantine is scored by every model on the same event. A challenger (the
candidate that keeps learning, or a parked model of an earlier regime) wins when it is better than
the restored model on significantly more events than the reverse (exact McNemar / sign test on the
last `window` events) *and* by a material margin of mean loss.

>>> c = Contest(["candidate"], window=200)
>>> for i in range(200):
...     c.add(restored=1.0 if i % 2 else 0.0, challengers={"candidate": 0.0})
>>> name, evidence = c.winner(alpha=0.01, margin=0.1)
>>> name, evidence["better"], evidence["worse"]
('candidate', 100, 0)
"""

from __future__ import annotations

from collections import deque

from drift.stats import mcnemar_p, rate_above_p


class Contest:
    """Sliding-window paired comparison of the restored model against named challengers."""

    def __init__(self, challengers: list[str], window: int = 500, recent: int = 200) -> None:
        self.window = window
        self.recent = recent
        self.labeled = 0
        self._restored: deque[float] = deque(maxlen=window)
        self._pairs: dict[str, deque[float]] = {name: deque(maxlen=window) for name in challengers}
        self._better = {name: 0 for name in challengers}  # challenger's loss below the restored one's
        self._worse = {name: 0 for name in challengers}

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
        self.labeled += 1

    def _count(self, name: str, restored: float, challenger: float, step: int) -> None:
        if challenger < restored:
            self._better[name] += step
        elif challenger > restored:
            self._worse[name] += step

    def mean_loss(self, name: str | None = None) -> float | None:
        losses = self._restored if name is None else self._pairs[name]
        return sum(losses) / len(losses) if losses else None

    def winner(self, alpha: float, margin: float) -> tuple[str | None, dict]:
        """The best challenger that beats the restored model significantly and materially, if any."""
        restored_mean = self.mean_loss()
        best, best_evidence = None, {}
        for name in self._pairs:
            better, worse = self._better[name], self._worse[name]
            p = mcnemar_p(better, worse)
            mean = self.mean_loss(name)
            improvement = 0.0 if not restored_mean else (restored_mean - mean) / restored_mean
            evidence = {
                "challenger": name,
                "test": "mcnemar",
                "better": better,
                "worse": worse,
                "p_value": p,
                "alpha": alpha,
                "restored_loss": restored_mean,
                "challenger_loss": mean,
                "improvement": improvement,
                "margin": margin,
                "events": len(self._restored),
            }
            wins = better > worse and p < alpha and improvement >= margin
            if wins and (best is None or mean < best_evidence["challenger_loss"]):
                best, best_evidence = name, evidence
        return best, best_evidence

    def restored_recovered(self, baseline: float | None, classifier: bool, ratio: float = 1.25) -> tuple[bool, dict]:
        """Is the restored model's recent loss back at its pre-alarm level?

        Classifiers: the recent error rate is not significantly above the baseline (one-sided,
        p >= 0.05). Regressors: the recent mean absolute error is within `ratio` of the baseline.
        """
        recent = list(self._restored)[-self.recent:]
        n = len(recent)
        evidence = {"baseline": baseline, "recent_events": n}
        if baseline is None or n < self.recent:
            return False, evidence
        mean = sum(recent) / n
        evidence["recent_loss"] = mean
        if classifier:
            p = rate_above_p(int(round(sum(recent))), n, baseline)
            evidence.update(test="rate_above_baseline", p_value=p)
            return p >= 0.05, evidence
        evidence.update(test="ratio_to_baseline", ratio=ratio)
        return mean <= baseline * ratio, evidence
