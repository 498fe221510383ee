"""A bounded ring of status samples for the live dashboard: hours of history in constant memory.

The loop samples at most once a second (and on every change of mode); when the ring is full the
oldest samples go. Each sample has a sequence number, so a dashboard asks only for what is new.

>>> h = History(maxlen=2)
>>> for t in (0.0, 1.0, 2.0):
...     _ = h.maybe_sample({"events": int(t) * 10, "mode": "learning"}, now=t)
>>> [s["seq"] for s in h.since(-1)], [s["events"] for s in h.since(1)]
([1, 2], [20])
"""

from __future__ import annotations

from collections import deque


class History:
    """Status samples, newest last, bounded by `maxlen`; thread-safe reads of an immutable view."""

    def __init__(self, maxlen: int = 7200, every: float = 1.0) -> None:
        self.every = every
        self._samples: deque[dict] = deque(maxlen=maxlen)
        self._view: tuple[dict, ...] = ()
        self._seq = -1
        self._last_time = float("-inf")
        self._last_mode = None
        self._last_events = None

    def maybe_sample(self, sample: dict, now: float) -> bool:
        """Record `sample` if a second has passed or the mode changed; returns whether it did."""
        mode_changed = sample.get("mode") != self._last_mode
        if now - self._last_time < self.every and not mode_changed:
            return False
        if self._last_events is not None and now > self._last_time:
            sample["events_per_second"] = (sample["events"] - self._last_events) / (now - self._last_time)
        self._seq += 1
        sample.update(seq=self._seq, time=now)
        self._samples.append(sample)
        self._view = tuple(self._samples)  # readers on other threads see a finished tuple
        self._last_time, self._last_mode, self._last_events = now, sample.get("mode"), sample["events"]
        return True

    def since(self, seq: int) -> list[dict]:
        """Samples with a sequence number above `seq` (all of them for -1)."""
        return [s for s in self._view if s["seq"] > seq]
