"""Collecting the input reference of a regime: its first `size` valid events, restarted where they change.

A reference must describe one regime. One collected across an incident's end (the guard starts a
new one at a promotion, and the incident it promoted through may end before it is complete) holds
both regimes, and a return to either then looks like no change: a stuck sensor's long run of one
value raises that feature's limits tenfold and more (holdout seed 67: 92-fold). So, while
collecting, the latest `window` events are compared with the ones collected before them, as an
alarm compares a window with the reference; on a change the collection restarts where the change
began.

>>> import random
>>> rng = random.Random(2)
>>> collection = Collection(size=1000, window=200)
>>> stuck_until = 700
>>> for i in range(0, 3000, 25):
...     reference = collection.add(list(range(i, i + 25)),
...                                [{"t": 0.4 if j < stuck_until else rng.random()} for j in range(i, i + 25)])
...     if reference is not None:
...         break
>>> collection.restarted_at - stuck_until < 10, reference.start == collection.restarted_at
(True, True)
"""

from __future__ import annotations

import numpy as np

from drift.reference import Reference, _Binning, build_reference, chance_psi, with_mass_of


class Collection:
    """The valid events collected so far for a reference (and a count of the invalid ones)."""

    def __init__(self, size: int, window: int, *, psi_threshold: float = 0.25, discrete_max_unique: int = 12,
                 max_categories: int = 20) -> None:
        self.size, self.window, self.psi_threshold = size, window, psi_threshold
        self.discrete_max_unique, self.max_categories = discrete_max_unique, max_categories
        self.events: list[tuple[int, dict]] = []
        self.invalid = 0
        self.first: int | None = None  # the index of the first event seen
        self.restarted_at: int | None = None  # it restarted at a change of its inputs here
        self._probe: _Binning | None = None  # the bins the test uses, and the events' codes in them
        self._codes: np.ndarray | None = None
        self._early: Reference | None = None  # see `early`

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update({"_early": None, **state})

    def early(self) -> Reference | None:
        """A reference of the events collected before the latest `window` (at least `window` of
        them; rebuilt when `window` more have come), or, until a restarted collection has that
        many, the one of the events before the restart: a run of the latest events far outside
        its range tells a change before the collection is complete (a stuck sensor's regime ends).
        None: too few events yet."""
        count = len(self.events) - self.window
        if count >= self.window and (self._early is None or self._early.end < self.events[0][0]  # before a restart
                                     or self._early.size + self.window <= count):
            self._early = build_reference([x for _, x in self.events[:count]], self.events[0][0],
                                          self.events[count - 1][0], discrete_max_unique=self.discrete_max_unique,
                                          max_categories=self.max_categories)
        return self._early

    def add(self, indices: list[int], xs: list[dict | None]) -> Reference | None:
        """Add a batch (None: an invalid event); restart where the inputs changed (`_change`). The
        reference once `size` valid events are collected (later ones of the batch are left out)."""
        batch = [(index, x) for index, x in zip(indices, xs) if x is not None]
        self.invalid += len(xs) - len(batch)
        if self.first is None and batch:
            self.first = batch[0][0]
        while batch:
            room = self.size - len(self.events)
            self.events += batch[:room]
            batch = batch[room:]
            onset = self._change()
            if onset is not None:
                kept = [(index, x) for index, x in self.events if index >= onset]
                self.invalid = round(self.invalid * len(kept) / len(self.events))  # their indices are not kept
                self.events, self.restarted_at = kept, onset
                self._probe = self._codes = None
            elif len(self.events) == self.size:
                return build_reference([x for _, x in self.events], self.events[0][0], self.events[-1][0],
                                       self.invalid / (self.size + self.invalid),
                                       discrete_max_unique=self.discrete_max_unique,
                                       max_categories=self.max_categories)
        return None

    def _change(self) -> int | None:
        """Where the collected inputs changed regime, if they did; None: no change, or too early.

        The latest `window` events against the ones before them (at least `window`): PSI over the
        limit chance reaches once in a billion (`chance_psi`, with the persistence of the ones
        before), under the bins of the first `2 * window` events collected (`_probe`). The change
        point is estimated as an alarm's onset is. After `2 * size` events of collecting, a
        reference of drifting inputs is taken as it comes rather than none at all.
        """
        n = len(self.events)
        if n < 2 * self.window or self.events[-1][0] - self.first >= 2 * self.size:
            return None
        if self._probe is None:
            probe = build_reference([x for _, x in self.events], 0, 0, discrete_max_unique=self.discrete_max_unique,
                                    max_categories=self.max_categories)
            self._probe, self._codes = _Binning(probe.features, probe.clocks), np.empty((0, len(probe.features)))
        new = self._probe.encode([x for _, x in self.events[len(self._codes):]])
        codes = self._codes = np.vstack([self._codes, new]).astype(np.int16)
        before = with_mass_of(self._probe, codes[:-self.window])
        counts = before.count(codes[-self.window:])
        excess = (before.contributions(counts).sum(axis=1)
                  - np.maximum(chance_psi(before, self.window, n - self.window), self.psi_threshold))
        if not excess.size or excess.max() <= 0:
            return None
        j = int(np.argmax(excess))
        return self.events[before.onset(j, counts[j], codes[:, j])][0]
