"""Pending predictions waiting for their delayed label, bounded in size and in age.

Age is measured on the stream's own clock (the newest event `ts` seen), not the wall clock, so a
replay or a restart from a snapshot expires exactly the same entries as the original run.

>>> store = PendingStore(max_size=2, ttl_seconds=10)
>>> store.put("a", {"f": 1.0}, 1, ts=100.0)
>>> store.put("b", {"f": 2.0}, 0, ts=101.0)
>>> store.put("c", {"f": 3.0}, 1, ts=102.0)      # over max_size: "a" is evicted
>>> store.pop("a") is None, store.pop("b")
(True, ({'f': 2.0}, 0))
>>> store.put("d", {"f": 4.0}, 0, ts=200.0)      # "c" is older than 10 s on the stream's clock
>>> len(store), store.evicted, store.expired
(1, 1, 1)
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any


class PendingStore:
    """id -> (features, prediction, ts), oldest first; counts evictions and expiries."""

    def __init__(self, max_size: int = 100_000, ttl_seconds: float = 3600.0) -> None:
        self.max_size = max_size
        self.ttl_seconds = ttl_seconds
        self._entries: OrderedDict[str, tuple[dict, Any, float]] = OrderedDict()
        self._now = float("-inf")
        self._wall_clock = False
        self.evicted = 0
        self.expired = 0

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, event_id: str, x: dict, y_pred: Any, ts: float | None = None) -> None:
        now = self._advance(ts)
        entries = self._entries
        if event_id in entries:
            del entries[event_id]
        entries[event_id] = (x, y_pred, now)
        self._expire(now)
        while len(entries) > self.max_size:
            entries.popitem(last=False)
            self.evicted += 1

    def pop(self, event_id: str) -> tuple[dict, Any] | None:
        entry = self._entries.pop(event_id, None)
        if entry is None:
            return None
        return entry[0], entry[1]

    def _advance(self, ts: float | None) -> float:
        if ts is None:
            # Without a timestamp the stream's clock stands still; the wall clock serves only a
            # stream that never carried one (a replay of old data must not expire everything).
            if not self._wall_clock and self._now != float("-inf"):
                return self._now
            self._wall_clock = True
            ts = time.time()
        elif self._wall_clock:
            self._wall_clock = False  # event time from now on, even if it is older than the wall clock
            self._now = ts
        if ts > self._now:
            self._now = ts
        return self._now

    def _expire(self, now: float) -> None:
        deadline = now - self.ttl_seconds
        entries = self._entries
        while entries:
            oldest = next(iter(entries.values()))
            if oldest[2] >= deadline:
                break
            entries.popitem(last=False)
            self.expired += 1
