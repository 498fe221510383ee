"""Prequential scoring: the loss of each prediction, the running metric and a rolling window of it.

Accuracy for classifiers (0/1 loss), MAE for regressors (absolute error). Kept as plain numbers and
a deque so that it pickles into a snapshot and resumes exactly.

>>> s = Score("accuracy", window=2)
>>> [s.update(1, 1), s.update(1, 0), s.update(0, 0)]
[0.0, 1.0, 0.0]
>>> round(s.value, 3), s.rolling
(0.667, 0.5)
>>> m = Score("mae", window=10)
>>> m.update(3.0, 2.5), m.value
(0.5, 0.5)
"""

from __future__ import annotations

from collections import deque

import numpy as np

METRICS = ("accuracy", "mae")
LABEL_WIDTHS = 100  # a label this many widths beyond the latest labels' range is absurd (`LabelRange`)


class Score:
    """Running and rolling metric over labeled events; `update` returns the event's loss."""

    def __init__(self, name: str, window: int = 1000) -> None:
        if name not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {name!r}")
        self.name = name
        self.window = window
        self.count = 0
        self.loss_sum = 0.0
        self._recent: deque[float] = deque()
        self._recent_sum = 0.0

    @classmethod
    def for_model(cls, classifier: bool, window: int = 1000) -> "Score":
        return cls("accuracy" if classifier else "mae", window)

    def loss(self, y_true, y_pred) -> float:
        if self.name == "accuracy":
            return 0.0 if y_pred == y_true else 1.0
        if y_pred is None:
            return abs(float(y_true))
        return abs(float(y_true) - float(y_pred))

    def update(self, y_true, y_pred) -> float:
        return self.add(self.loss(y_true, y_pred))

    def add(self, loss: float) -> float:
        """Count one labeled event's loss (from `loss`)."""
        self.count += 1
        self.loss_sum += loss
        self._recent.append(loss)
        self._recent_sum += loss
        if len(self._recent) > self.window:
            self._recent_sum -= self._recent.popleft()
        return loss

    def _metric(self, loss_sum: float, n: int) -> float | None:
        if n == 0:
            return None
        mean_loss = loss_sum / n
        return 1.0 - mean_loss if self.name == "accuracy" else mean_loss

    @property
    def value(self) -> float | None:
        """The metric over every labeled event so far (None before the first label)."""
        return self._metric(self.loss_sum, self.count)

    @property
    def rolling(self) -> float | None:
        """The metric over the last `window` labeled events."""
        # Recomputed from the window: a running sum of floats drifts over millions of updates.
        return self._metric(sum(self._recent), len(self._recent))


class LabelRange:
    """A regressor's labels: is this one absurdly far from the latest ones?

    Absurd is beyond the 1st to 99th percentile range of the latest `size` labels (refused ones
    too) by `LABEL_WIDTHS` times its width. In the `regression` scenario (labels in [0, 30]) one
    label of -1e4 left a tree regressor's MAE 1.8 times higher 3,000 events later; one of -1,000
    (46 widths) is admitted and still cost it 7% there. Inputs get 1,000 widths (`absurd_bounds`),
    but a tree regressor's leaves average their labels, so a label does harm closer in. A new
    scale that goes on (the target's unit changed), as glitches in more than 1% of the latest
    labels would, moves the percentiles and is learned from the next recomputation on; the
    guard's concept detector deals with it like any change. No bound before `min_labels` labels,
    nor while the latest ones hold a single value. The bounds are recomputed every `every` labels.

    >>> labels = LabelRange()
    >>> all(labels.admits(float(i % 30)) for i in range(300))
    True
    >>> labels.admits(1e6), labels.admits(2900.0), labels.bounds
    (False, True, (-2900.0, 2929.0))
    """

    def __init__(self, size: int = 1000, every: int = 100, min_labels: int = 100) -> None:
        self.recent: deque[float] = deque(maxlen=size)
        self.every = every
        self.min_labels = min_labels
        self.bounds: tuple[float, float] | None = None
        self._since = 0

    def admits(self, y: float) -> bool:
        """Record `y`; False if it lies outside the bounds computed before it."""
        bounds = self.bounds
        admitted = bounds is None or bounds[0] <= y <= bounds[1]
        self.recent.append(y)
        self._since += 1
        if self._since >= self.every:
            self._since = 0
            self.bounds = self._bounds()
        return admitted

    def _bounds(self) -> tuple[float, float] | None:
        if len(self.recent) < self.min_labels:
            return None
        values = np.fromiter(self.recent, float, len(self.recent))
        lo, hi = np.quantile(values, [0.01, 0.99])
        width = hi - lo
        if width <= 0:  # mostly one value (a target that is usually 0): the whole range, if any
            lo, hi = values.min(), values.max()
            width = hi - lo
            if width <= 0:
                return None
        return float(lo - LABEL_WIDTHS * width), float(hi + LABEL_WIDTHS * width)
