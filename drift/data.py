"""Data drift: the inputs `x` against a reference window, without labels.

Per feature, the histogram of the recent window is compared with the reference histogram by PSI.
The bins include MISSING, WRONG-TYPE and, for numbers, BELOW-min and ABOVE-max, so that a unit
change, a stuck or zeroed sensor, a burst of missing values or a type change all show as mass
moving between bins. New features and the rate of invalid events are watched beside the PSI.

The hot path only appends; every `check_every` events the batch is binned and compared with NumPy.

>>> import random
>>> rng = random.Random(1)
>>> detector = DataDriftDetector(reference_size=500, window=200)
>>> alarms = []
>>> for i in range(2000):
...     temp = rng.gauss(20, 5) * (100 if i >= 1500 else 1)     # a unit change at event 1500
...     alarms += detector.update(i, {"temp": temp, "site": rng.choice("ab")})
>>> [(a.detector, a.statistic) for a in alarms]
[('data:temp', 'psi')]
>>> alarms[0].at - 1500 <= 100, abs(alarms[0].onset - 1500) <= 10
(True, True)
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from drift.collection import Collection
from drift.matching import NEW_FEATURE_RATE, InputMatching
from drift.reference import MISSING, WRONG_TYPE, Reference, _Binning, chance_psi
from drift.reference import psi  # noqa: F401  (part of this module's API: tests and callers use it)
from drift.stats import chance_rate, change_point, rate_at_psi


@dataclass(frozen=True)
class DataAlarm:
    """A confirmed shift of the inputs, with its evidence: statistic, threshold and windows."""

    at: int  # event index of the check that fired
    detector: str  # "data:<feature>", "schema:<feature>" or "data:invalid_rate"
    kind: str  # "data" or "schema"
    statistic: str  # "psi", "missing_rate", "type_change_rate", "new_feature_rate", "invalid_rate"
    value: float
    threshold: float
    reference: tuple[int, int]  # first and last event index of the reference (inclusive)
    window: tuple[int, int]  # first and last event index of the recent window (inclusive)
    onset: int  # estimated event index where the shift began

    def to_dict(self) -> dict:
        return {**asdict(self), "reference": list(self.reference), "window": list(self.window)}


class DataDriftDetector(InputMatching):
    """Watches the inputs for shifts of distribution, schema changes and bursts of invalid events.

    The reference is the first `reference_size` valid events (after start or `reset_reference`,
    which may start it with kept ones), its collection restarted where they change
    (`drift/collection.py`).
    A feature alarms when its PSI exceeds its limit on `confirmations` consecutive checks, then
    stays quiet until its PSI falls under half the limit. The limit is `psi_threshold`, or the PSI
    that chance reaches once in a billion windows if that is higher: PSI * (1/window + 1/reference
    size)^-1 is about chi-square with bins - 1 degrees of freedom, so for 14 bins and a window of
    200 chance alone averages 0.08 and a bare 0.25 alarms a few times in 200,000 stationary events;
    the limit there is 0.43. A feature whose values come in long runs (`persistence`) has fewer
    independent events in a window, and its limit is that many times higher. The invalid rate's
    limit is raised to its chance level the same way.

    The comparisons of the kept inputs with any reference (a parked regime's, say), which the
    guard asks between alarms, are in `drift/matching.py`.
    """

    def __init__(self, *, reference_size: int = 1000, window: int = 200, check_every: int = 25,
                 psi_threshold: float = 0.25, confirmations: int = 2, discrete_max_unique: int = 12,
                 max_categories: int = 20, invalid_rate_threshold: float = 0.05) -> None:
        for name, value in [("reference_size", reference_size), ("window", window),
                            ("check_every", check_every), ("confirmations", confirmations),
                            ("discrete_max_unique", discrete_max_unique),
                            ("max_categories", max_categories)]:
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if check_every > window:
            raise ValueError(f"check_every ({check_every}) must not exceed window ({window})")
        if not psi_threshold > 0:
            raise ValueError(f"psi_threshold must be > 0, got {psi_threshold!r}")
        if not 0 < invalid_rate_threshold < 1:
            raise ValueError("invalid_rate_threshold must be in (0, 1), "
                             f"got {invalid_rate_threshold!r}")
        self.reference_size, self.window, self.check_every = reference_size, window, check_every
        self.psi_threshold, self.confirmations = psi_threshold, confirmations
        self.discrete_max_unique, self.max_categories = discrete_max_unique, max_categories
        self.invalid_rate_threshold = invalid_rate_threshold
        # The history is twice the window: the onset estimate needs the events before the shift.
        self._history = 2 * window
        self._pending_index: list[int] = []
        self._pending_x: list[dict | None] = []  # None: an invalid event
        self._recent_x: deque[dict] = deque(maxlen=self._history)
        self._recent_index: deque[int] = deque(maxlen=self._history)
        self._events = _Tail(self._history, 2, np.int64)  # (index, invalid) of every event
        self._valid_seen = 0
        self.checks = 0  # how many checks have run: a caller can tell that the state moved on
        self._far_memo: dict[int, tuple[Reference, dict[int, bool]]] = {}  # see `far_outside`
        self._forget_reference()

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_far_memo": {}}  # a cache: not part of a snapshot

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update({"_far_memo": {}, **state})  # snapshots from before the cache
        if "_collected" in state:  # before `Collection`: the events collected, and a count of invalid ones
            self._collection = self._new_collection()
            self._collection.events, self._collection.invalid = state["_collected"], state["_collected_invalid"]
            del self._collected, self._collected_invalid

    # -- the hot path ----------------------------------------------------------------------------

    def update(self, index: int, x: dict) -> list[DataAlarm]:
        """Record a valid event; on every `check_every`-th event, check and return any alarms."""
        self._pending_index.append(index)
        self._pending_x.append(dict(x))  # a copy: the caller may reuse x before the next check
        self._note_far(x)
        if len(self._pending_x) < self.check_every:
            return []
        return self._check()

    def update_invalid(self, index: int) -> list[DataAlarm]:
        """Record an event that failed validation; it counts toward the invalid rate."""
        self._pending_index.append(index)
        self._pending_x.append(None)
        if len(self._pending_x) < self.check_every:
            return []
        return self._check()

    # -- state for the guard ---------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._reference is not None

    @property
    def restarted_at(self) -> int | None:
        """While a reference is collected: the index where its collection restarted because its
        inputs changed (`drift/collection.py`), if it did."""
        return self._collection.restarted_at if self._reference is None else None

    def early_reference(self) -> Reference | None:
        """While a reference is collected: one of the events collected before the latest window
        (`Collection.early`), for `far_run`; None once it is complete, or too early."""
        return self._collection.early() if self._reference is None else None

    def in_reference(self) -> bool:
        """Whether the recent window looks like the reference again: every statistic under half
        its limit (hysteresis). As of the last check; False while the reference is collected."""
        return self._in_reference

    def reset_reference(self, since: int | None = None) -> None:
        """Forget the reference; collect a new one from the next `reference_size` valid events,
        starting with the kept ones from index `since` on, if given.

        The guard resets it when it adopts a new regime, at least `min_quarantine` labeled events
        after the data alarm that began its quarantine: the events since that alarm are the new
        regime's too (those since the estimated onset may hold a few of the old one's), and a
        collection without them may hold too few of the regime to tell its end (holdout seed 127,
        agrawal salary zeroed [12k,13k): the candidate was promoted 16 events before the end, and
        went on through it). Invalid events among them are not counted (only valid ones are kept)."""
        self._absorb()
        self._forget_reference()
        if since is None:
            return
        events = self._indexed_since(since)
        if events:
            self._collect([i for i, _ in events], [x for _, x in events])

    def snapshot_reference(self) -> Reference | None:
        """The current reference (immutable: safe to park), or None while one is collected."""
        return self._reference

    def use_reference(self, reference: Reference) -> None:
        """Compare with `reference` from now on (a parked regime); alarm states start afresh."""
        self._absorb()
        self._forget_reference()
        self._install(reference)

    def last_psi(self) -> dict[str, float]:
        """The PSI per feature at the last check (empty while the reference is collected)."""
        if not self.ready:
            return {}
        return {name: float(v) for name, v in zip(self._binning.names, self._psi)}

    # -- checks ----------------------------------------------------------------------------------

    def _check(self) -> list[DataAlarm]:
        self.checks += 1
        new_valid = self._absorb()
        if not self.ready:
            return []
        at = int(self._events.last(1)[0, 0])
        alarms = []
        if new_valid and len(self._recent_x) >= self.window:
            self._refresh_psi()
            for j, name in enumerate(self._binning.names):
                trigger = self._trigger(("feature", name), self._psi_limit[j], self._psi_rearm[j])
                if trigger.step(self._psi[j]):
                    alarms.append(self._feature_alarm(j, at))
            rates = self._new_feature_rates()
            for key in list(rates.keys() | {k for kind, k in self._triggers if kind == "new"}):
                rate = rates.get(key, 0.0)
                trigger = self._trigger(("new", key), NEW_FEATURE_RATE, NEW_FEATURE_RATE / 2)
                if trigger.step(rate):
                    alarms.append(self._new_feature_alarm(key, rate, at))
                elif rate == 0.0 and trigger.armed:
                    del self._triggers[("new", key)]
        if len(self._events) >= self.window and self._invalid.step(self._invalid_rate()):
            alarms.append(self._invalid_alarm(at))
        self._in_reference = self._looks_like_reference()
        return alarms

    def _looks_like_reference(self) -> bool:
        if len(self._recent_x) < self.window or np.any(self._psi >= self._psi_rearm):
            return False
        if self._invalid_rate() >= self._invalid.rearm:
            return False
        return all(rate < NEW_FEATURE_RATE / 2 for rate in self._new_feature_rates().values())

    def _trigger(self, key: tuple, threshold: float, rearm: float) -> _Trigger:
        if key not in self._triggers:
            self._triggers[key] = _Trigger(float(threshold), float(rearm), self.confirmations)
        return self._triggers[key]

    def _feature_alarm(self, j: int, at: int) -> DataAlarm:
        name, counts = self._binning.names[j], self._counts[j]
        contributions = self._contributions[j]
        top = int(np.argmax(contributions))
        if top in (MISSING, WRONG_TYPE):
            # Reported as a rate, against the rate at which this window's PSI reaches the limit.
            kind, detector = "schema", f"schema:{name}"
            statistic = "missing_rate" if top == MISSING else "type_change_rate"
            value = counts[top] / counts.sum()
            needed = self._psi_limit[j] - (self._psi[j] - contributions[top])
            threshold = rate_at_psi(float(self._binning.q[j, top]), value, max(needed, 1e-9))
        else:
            kind, detector, statistic = "data", f"data:{name}", "psi"
            value, threshold = self._psi[j], self._psi_limit[j]
        onset = self._recent_index[self._binning.onset(j, counts, self._codes.last(self._history)[:, j])]
        return self._alarm(at, detector, kind, statistic, value, threshold, self._window(), onset)

    def _new_feature_alarm(self, key: Any, rate: float, at: int) -> DataAlarm:
        present = np.fromiter((key in x for x in self._recent_x), float, len(self._recent_x))
        onset = self._recent_index[change_point(present)]
        return self._alarm(at, f"schema:{key}", "schema", "new_feature_rate", rate,
                           NEW_FEATURE_RATE, self._window(), onset)

    def _invalid_alarm(self, at: int) -> DataAlarm:
        events = self._events.last(self._history)
        onset = int(events[change_point(events[:, 1]), 0])
        window = self._events.last(self.window)
        return self._alarm(at, "data:invalid_rate", "data", "invalid_rate", self._invalid_rate(),
                           self._invalid.threshold, (int(window[0, 0]), int(window[-1, 0])), onset)

    def _alarm(self, at, detector, kind, statistic, value, threshold, window, onset) -> DataAlarm:
        ref = self._reference
        return DataAlarm(at=at, detector=detector, kind=kind, statistic=statistic,
                         value=float(value), threshold=float(threshold),
                         reference=(ref.start, ref.end), window=window, onset=int(onset))

    def _window(self) -> tuple[int, int]:
        return (self._recent_index[-min(self.window, len(self._recent_index))],
                self._recent_index[-1])

    def _invalid_rate(self) -> float:
        flags = self._events.last(self.window)[:, 1]
        return np.count_nonzero(flags) / len(flags) if len(flags) else 0.0

    def _new_feature_rates(self) -> dict[Any, float]:
        if not self._new_keys:
            return {}
        first = self._valid_seen - self.window  # serials above this are in the window
        counts = Counter(k for serial, keys in self._new_keys if serial > first for k in keys)
        return {key: count / self.window for key, count in counts.items()}

    def _refresh_psi(self) -> None:
        self._contributions = self._binning.contributions(self._counts)
        self._psi = self._contributions.sum(axis=1)

    # -- bookkeeping -----------------------------------------------------------------------------

    def _absorb(self) -> int:
        """Move the pending events into the history (and the reference, while collecting one)."""
        indices, xs = self._pending_index, self._pending_x
        if not xs:
            return 0
        self._pending_index, self._pending_x = [], []
        self._events.append(np.array([indices, [x is None for x in xs]], np.int64).T)
        valid_x = [x for x in xs if x is not None]
        self._recent_index.extend(i for i, x in zip(indices, xs) if x is not None)
        self._recent_x.extend(valid_x)
        self._valid_seen += len(valid_x)
        if self._reference is None:
            self._collect(indices, xs)
        elif valid_x:
            self._append_codes(valid_x)
        return len(valid_x)

    def _collect(self, indices: list[int], xs: list[dict | None]) -> None:
        """Add events to the reference being collected, and compare with it once it is complete."""
        reference = self._collection.add(indices, xs)
        if reference is not None:
            self._forget_reference()
            self._install(reference)

    def _append_codes(self, xs: list[dict]) -> None:
        codes = self._binning.encode(xs)
        in_window = min(len(self._codes), self.window)
        leaving = max(0, in_window + len(xs) - self.window)
        if leaving:
            self._counts -= self._binning.count(self._codes.last(in_window)[:leaving])
        self._codes.append(codes)
        self._counts += self._binning.count(codes)
        self._note_new_keys(xs, self._valid_seen - len(xs) + 1)

    def _note_new_keys(self, xs: list[dict], first_serial: int) -> None:
        keys = self._binning.keys
        for serial, x in enumerate(xs, first_serial):
            if not x.keys() <= keys:
                self._new_keys.append((serial, tuple(k for k in x if k not in keys)))
        while self._new_keys and self._new_keys[0][0] <= self._valid_seen - self._history:
            self._new_keys.popleft()

    def _install(self, reference: Reference) -> None:
        """Compare with `reference`: bin the whole history under it and count the recent window."""
        self._reference = reference
        self._binning = _Binning(reference.features, reference.clocks)
        self._codes = _Tail(self._history, len(reference.features), np.int16)
        xs = list(self._recent_x)
        if xs:
            self._codes.append(self._binning.encode(xs))
        self._counts = self._binning.count(self._codes.last(self.window))
        self._note_new_keys(xs, self._valid_seen - len(xs) + 1)
        self._refresh_psi()
        chance = chance_psi(self._binning, self.window, reference.size)
        self._psi_limit = np.maximum(self.psi_threshold, chance)
        self._psi_rearm = self._psi_limit / 2
        threshold = max(self.invalid_rate_threshold, 5 * reference.invalid_rate,
                        chance_rate(reference.invalid_rate, self.window))
        self._invalid = _Trigger(threshold, (reference.invalid_rate + threshold) / 2,
                                 self.confirmations)
        self._in_reference = self._looks_like_reference()

    def _new_collection(self) -> Collection:
        return Collection(self.reference_size, self.window, psi_threshold=self.psi_threshold,
                          discrete_max_unique=self.discrete_max_unique, max_categories=self.max_categories)

    def _forget_reference(self) -> None:
        self._reference: Reference | None = None
        self._binning = self._codes = self._counts = self._invalid = None
        self._collection = self._new_collection()
        self._triggers: dict[tuple, _Trigger] = {}
        self._new_keys: deque[tuple[int, tuple]] = deque()
        self._psi = np.zeros(0)
        self._in_reference = False


class _Trigger:
    """Fires after `confirmations` consecutive checks above `threshold`; re-arms below `rearm`."""

    __slots__ = ("threshold", "rearm", "confirmations", "streak", "armed")

    def __init__(self, threshold: float, rearm: float, confirmations: int) -> None:
        self.threshold, self.rearm, self.confirmations = threshold, rearm, confirmations
        self.streak, self.armed = 0, True

    def step(self, value: float) -> bool:
        self.streak = self.streak + 1 if value > self.threshold else 0
        if not self.armed:
            self.armed = value < self.rearm
            return False
        if self.streak >= self.confirmations:
            self.armed = False
            return True
        return False


class _Tail:
    """The last `size` rows of an append-only table, contiguous (compacted when it fills)."""

    def __init__(self, size: int, width: int, dtype) -> None:
        self._size, self._end = size, 0
        self._buffer = np.zeros((2 * size, width), dtype)

    def __len__(self) -> int:
        return min(self._end, self._size)

    def append(self, rows: np.ndarray) -> None:  # at most `size` rows
        if self._end + len(rows) > len(self._buffer):
            self._buffer[:self._size] = self._buffer[self._end - self._size:self._end]
            self._end = self._size
        self._buffer[self._end:self._end + len(rows)] = rows
        self._end += len(rows)

    def last(self, n: int) -> np.ndarray:
        return self._buffer[self._end - min(n, len(self)):self._end]
