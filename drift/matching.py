"""Which regime the kept inputs come from: the inputs since an event against a reference.

Part of `DataDriftDetector` (`drift/data.py`), as a mixin: these methods read the events it keeps
(the latest `2 * window` valid ones, and those pending a check) and never change its alarm state.
The guard asks them to recognise a parked regime's return (`ParkedModels.recognise`), to tell a
regime has ended from a run of events far outside its range (`far_run`, `near_run`), and to keep
catch-ups off the events of an incident (`far_outside`, `first_alike`) and off the old
regime's (`regime_start`).

- `matches`: every feature's PSI under what chance gives a window of the reference once in a
  thousand times: strict, as a false match brings back the wrong model.
- `departs`: a feature's PSI over what an alarm asks, on a short window and one check.
- far outside: a number beyond the reference's minimum or maximum by more than its range's width.
- absurd: a number beyond them by 1,000 times the range's width, or, while a new reference is
  collected, any other value of a feature constant in its early events (`absurd`, per event: the
  guard does not let the live model learn it).
- runs (`RangeStreak`, per event): how many of the latest events in a row lie far outside the
  current range, or near a parked one; the guard asks about a run at its 10th event, and the live
  model does not learn a short run's events that move a feature constant in the reference.
"""

from __future__ import annotations

import math
from collections import Counter
from itertools import islice
from typing import Any

import numpy as np

from drift.reference import Reference, _as_numbers, _Binning, absurd_bounds, build_reference, chance_psi
from drift.stats import CHANCE, Z_CHANCE

NEW_FEATURE_RATE = 0.2  # a feature absent from the reference, present in more recent events: alarm
_Z_MATCH = 3.0  # a window of the same regime exceeds this limit once in a thousand
MATCH_MIN_EVENTS = 40  # fewest events a regime is recognised on
_FAR_MEMO_REFERENCES = 8  # references whose far-outside flags are remembered (parked ones, the current)
FAR_MATCH_EVENTS = 10  # fewest, on a run that tells a regime has ended (`far_run`, `near_run`)


class InputMatching:
    """The comparisons of kept inputs with a reference (see the module doc); `DataDriftDetector`
    inherits them."""

    _absurd_cache: tuple | None = None  # (reference, [(feature, (low, high))]): `absurd`, per event
    _streak: RangeStreak | None = None  # the latest valid events against the current range (`_note_far`)

    def matches(self, reference: Reference, since: int | None = None,
                min_events: int = MATCH_MIN_EVENTS) -> tuple[bool, dict]:
        """Do the inputs since event `since` (default: the recent window) come from the regime of
        `reference`?

        Every feature's PSI must stay under what chance gives a window of that many events from
        the reference once in a thousand times (`_Z_MATCH`): a parked regime is recognised by its
        inputs alone, and a false match would bring back the wrong model, so the bar is strict.
        The evidence names the feature closest to (or farthest over) its limit, with its PSI. A
        feature the reference never had, in as many events as `in_reference` tolerates, is no match
        (the PSI sees only the reference's features: missing ones come back, say).
        """
        compared = self._compare(reference, since, min_events, z=_Z_MATCH)
        if isinstance(compared, dict):
            return False, compared
        return bool(np.all(compared[0] < compared[1])), compared[2]

    def departs(self, reference: Reference, since: int, min_events: int = MATCH_MIN_EVENTS) -> tuple[bool, dict]:
        """Do the inputs since event `since` depart from `reference` as far as an alarm asks: a
        feature's PSI over the limit that chance reaches once in a billion windows of that many
        events (and over `psi_threshold`), or a feature the reference never had?

        A short window on one check, where an alarm needs a full window on `confirmations` checks:
        the guard asks it only to recognise a parked regime's return early (`ParkedModels.recognise`).
        """
        compared = self._compare(reference, since, min_events, z=Z_CHANCE, floor=self.psi_threshold)
        if isinstance(compared, dict):
            return "new_feature_rate" in compared, compared
        return bool(np.any(compared[0] > compared[1])), compared[2]

    def _compare(self, reference: Reference, since: int | None, min_events: int, z: float,
                 floor: float = 0.0) -> tuple[np.ndarray, np.ndarray, dict] | dict:
        """Per feature, the PSI of the inputs since `since` against `reference` and the limit that
        chance exceeds at `z` (at least `floor`), with evidence naming the feature nearest to or
        farthest over its limit; or only the evidence when there is nothing to compare: too few
        events, no features, or a feature the reference never had in as many events as
        `in_reference` tolerates."""
        xs = self._since(since)
        evidence = {"since": since, "events": len(xs)}
        if len(xs) < min_events or not reference.features:
            return evidence
        binning = _Binning(reference.features, reference.clocks)
        new = Counter(k for x in xs for k in x if k not in binning.keys)
        if new:
            key, count = new.most_common(1)[0]
            if count / len(xs) >= NEW_FEATURE_RATE / 2:
                evidence.update(feature=key, new_feature_rate=count / len(xs),
                                reference=[reference.start, reference.end])
                return evidence
        psi_per_feature = binning.contributions(binning.count(binning.encode(xs))).sum(axis=1)
        limits = np.maximum(chance_psi(binning, len(xs), reference.size, z=z), floor)
        worst = int(np.argmax(psi_per_feature - limits))
        evidence.update(feature=binning.names[worst], psi=float(psi_per_feature[worst]),
                        limit=float(limits[worst]), reference=[reference.start, reference.end])
        return psi_per_feature, limits, evidence

    def latest(self, n: int) -> int | None:
        """The index of the `n`-th latest kept valid event (pending included); None: fewer kept."""
        events = self._latest_events(n)
        return events[0][0] if len(events) == n else None

    def absurd(self, x: dict) -> str | None:
        """The first feature of `x` whose number lies absurdly far outside the current reference's
        range (`absurd_bounds`; while a new one is collected, the early one's), or None (also while
        there is none yet).

        Per event, before the live model learns it: one value of 1e30 made a linear model's scaler
        take a variance that zeroes that feature for good, a 30% rise of its error that no alarm
        undid (the restore point's model, asked, did fine: "the live model changed")."""
        reference = self._reference or self.early_reference()  # per labeled event: kept lean
        if reference is None:
            return None
        cached = self._absurd_cache
        if cached is None or cached[0] is not reference:
            bounds = absurd_bounds(reference, early=reference is not self._reference)
            cached = self._absurd_cache = (reference, list(bounds.items()))
        for name, (low, high) in cached[1]:
            value = x.get(name)
            if (value.__class__ is float or value.__class__ is int) and (value < low or value > high):
                return name
        return None

    @property
    def far_streak(self) -> int:
        """How many of the latest valid events in a row lie far outside the current reference's
        range (while a new one is collected, the early one's: what `far_run` asks at a check)."""
        return self._streak.far if self._streak is not None else 0

    def _note_far(self, x: dict) -> None:
        """Per valid event: extend or end `far_streak`, so that the guard can ask `far_run` as
        soon as a run is long enough rather than at the next check, up to `check_every` events
        later: a model promoted while a sensor was stuck, blind to it, served until its regime's
        model came back (hold-out seed 157, friedman stuck x0 / linear: back 30 events after the
        sensor moved again)."""
        reference = self._reference or self.early_reference()
        if reference is None:
            self._streak = None
            return
        if self._streak is None or self._streak.reference is not reference:
            self._streak = RangeStreak(reference)
        self._streak.add(x)

    def in_short_far_run(self, x: dict) -> bool:
        """Does `x` move a feature constant in the current reference, in a run of events far
        outside its range at most `FAR_MATCH_EVENTS` long? The guard asks about the run at its 10th
        event (a parked regime back?), and the live model does not learn it before: a sensor stuck
        through a regime's whole reference gives its model's scaler no variance, and the first
        moving values learned give it almost none (drawn seed 6, mv x4 stuck [7.4k,15.4k) / linear:
        the fresh model promoted in it learned the 9 events before the recall, MAE 7.5 million over
        the 100 events after the incident; 2.6e11 when the run was asked about at the next data
        check). A longer run is learned: a feature may start to vary for good (Elec2's Victoria
        columns, constant for 17,000 rows). Other features' runs are learned: holding out every
        short run far outside the range (Elec2's price spikes among them) paused Elec2 / tree for
        its last 31,000 events (three rollbacks in 20,000)."""
        streak = self._streak
        return streak is not None and 0 < streak.far <= FAR_MATCH_EVENTS and streak.moves_constant(x)

    def far_outside(self, reference: Reference, since: int) -> list[int]:
        """Indices of the kept events from `since` on with a number far outside `reference`'s range
        (beyond its minimum or maximum by more than the range's width).

        Catch-ups use it: a model learns kept events up to or since an onset, the onset is an
        estimate, and a few events of a x1000 incident on the wrong side of it ruin a linear model.
        """
        events = self._indexed_since(since)
        flags = self._far_flags_of(reference, events)
        return [index for index, _ in events if flags[index]]

    def _far_flags_of(self, reference: Reference, events: list[tuple[int, dict]]) -> dict[int, bool]:
        """Index -> far outside `reference`'s range, for `events` (and others seen before).

        Remembered per reference (they are immutable) for the kept events: every data check asks
        it of the latest window, for the current reference and each parked one, and 25 events are
        new since the last check."""
        memo = self._far_memo.get(id(reference))
        if memo is None or memo[0] is not reference:
            if len(self._far_memo) >= _FAR_MEMO_REFERENCES:
                del self._far_memo[next(iter(self._far_memo))]  # the one remembered first
            memo = self._far_memo[id(reference)] = (reference, {})
        flags = memo[1]
        new = [(index, x) for index, x in events if index not in flags]
        if not new:
            return flags
        flags.update(zip((index for index, _ in new), map(bool, _far(reference, [x for _, x in new]))))
        if len(flags) > 2 * (self._history + self.check_every):  # forget events no longer kept
            kept = self._recent_index[0] if self._recent_index else new[0][0]
            for index in [i for i in flags if i < kept]:
                del flags[index]
        return flags

    def far_run(self, reference: Reference, at_least: int) -> int | None:
        """The index of the first of the latest kept events that all lie far outside `reference`'s
        range (`far_outside`), if at least `at_least` of them do; else None.

        From one regime, an event lands that far outside the range of a reference of 1,000 of its
        events about never (about two in a thousand land outside it at all): a run of them says
        the regime has ended, as surely as a PSI over 40 events (a x100 unit change begins)."""
        if _far_count(self._far_flags(reference, at_least), at_least) < at_least:  # the usual answer, cheap
            return None
        flags = self._far_flags(reference, self.window)
        run = _trailing(flags, True)
        return flags[-run][0] if run >= at_least else None

    def near_run(self, reference: Reference, at_least: int) -> int | None:
        """The index of the first of the latest kept events that all lie near `reference`'s range
        (not far outside it), if at least `at_least` of them do and the events before them in the
        window lay far outside it so often that chance gives such a run once in a billion times.

        The other side of `far_run`: the events of the current regime were far outside an earlier
        regime's range, and the latest ones are back in it (a x100 unit change ends)."""
        if _far_count(self._far_flags(reference, at_least), at_least) != 0:  # the usual answer, cheap
            return None
        flags = self._far_flags(reference, self.window)
        run = _trailing(flags, False)
        before = len(flags) - run
        if run < at_least or before < MATCH_MIN_EVENTS:
            return None
        near_rate = (before - sum(far for _, far in flags[:before]) + 1) / (before + 2)  # never 0
        return flags[-run][0] if run * math.log(near_rate) < math.log(CHANCE) else None

    def _far_flags(self, reference: Reference, n: int) -> list[tuple[int, bool]]:
        """(index, far outside `reference`'s range) of the latest `n` kept valid events."""
        events = self._latest_events(n)
        flags = self._far_flags_of(reference, events)
        return [(index, flags[index]) for index, _ in events]

    def first_alike(self, reference: Reference, since: int) -> int:
        """`since`, or the index after the last kept event from `since` on that is far outside
        `reference`'s range (`far_outside`): where the events of its regime begin for sure."""
        outside = self.far_outside(reference, since)
        return outside[-1] + 1 if outside else since

    def regime_start(self, onset: int) -> int:
        """Where the events of a regime that began about `onset` begin for sure: `onset`, or, if
        the kept events from `onset` on begin with a run far outside the range of their later half
        (`far_outside`), the event after that run.

        An onset estimated a few events early puts the old regime's events into a new model's
        catch-up. Most shifts do not give them away, and there they do little harm; a regime with
        a narrow range does, and there they do harm: three events of a sensor still moving before
        it stuck gave a fresh linear model's scaler a variance near zero, and its predictions blew
        up when the sensor moved again (hold-out seed 153, friedman stuck x0 / linear). Only a run
        from `onset` on counts: a rare value missing from the later half by chance lies far
        outside its range too, but anywhere."""
        events = self._indexed_since(onset)
        if len(events) < 2 * FAR_MATCH_EVENTS:
            return onset
        half = len(events) // 2
        later = build_reference([x for _, x in events[half:]], events[half][0], events[-1][0])
        near = np.flatnonzero(~_far(later, [x for _, x in events[:half]]))
        run = int(near[0]) if near.size else half
        return events[run][0] if run else onset

    def _since(self, since: int | None) -> list[dict]:
        """The latest `window` valid events (pending included), or those from index `since` on."""
        if since is None:
            return [x for _, x in self._latest_events(self.window)]
        return [x for _, x in self._indexed_since(since)]

    def _latest_events(self, n: int) -> list[tuple[int, dict]]:
        """(index, x) of the latest `n` kept valid events (pending included), oldest first."""
        events = [(i, x) for i, x in zip(self._pending_index, self._pending_x) if x is not None][-n:]
        more = n - len(events)
        if more > 0:
            recent = list(islice(zip(reversed(self._recent_index), reversed(self._recent_x)), more))
            events = recent[::-1] + events
        return events

    def _indexed_since(self, since: int | None) -> list[tuple[int, dict]]:
        """(index, x) of the kept valid events (pending included) from index `since` on (None: all)."""
        pending = [(i, x) for i, x in zip(self._pending_index, self._pending_x) if x is not None]
        events = list(zip(self._recent_index, self._recent_x)) + pending
        return events if since is None else [(i, x) for i, x in events if i >= since]


class RangeStreak:
    """Per event, whether it lies far outside `reference`'s range (as `far_outside` asks, one
    event at a time): how many of the latest in a row do (`far`), and how many do not (`near`)."""

    __slots__ = ("reference", "far", "near", "_bounds", "_constant")

    def __init__(self, reference: Reference) -> None:
        self.reference = reference
        self.far = self.near = 0
        self._bounds = _far_bounds(reference)
        self._constant = [(name, low) for name, low, high in self._bounds if low == high]

    def add(self, x: dict) -> None:
        if self.is_far(x):
            self.far, self.near = self.far + 1, 0
        else:
            self.far, self.near = 0, self.near + 1

    def moves_constant(self, x: dict) -> bool:
        """Has `x` another value of a number feature constant in the reference?"""
        for name, value in self._constant:
            other = x.get(name)
            if (other.__class__ is float or other.__class__ is int) and (other < value or other > value):  # not NaN
                return True
        return False

    def is_far(self, x: dict) -> bool:
        for name, low, high in self._bounds:
            value = x.get(name)
            if (value.__class__ is float or value.__class__ is int) and (value < low or value > high):
                return True
        return False


def _far_bounds(reference: Reference) -> list[tuple[Any, float, float]]:
    """Per number feature of `reference`: the bounds beyond which a value is far outside its range
    (beyond its minimum or maximum by more than the range's width)."""
    return [(f.name, 2 * f.lo - f.hi, 2 * f.hi - f.lo) for f in reference.features if f.kind != "categorical"]


def _far(reference: Reference, xs: list[dict]) -> np.ndarray:
    """Per event of `xs`: has it a number far outside `reference`'s range (`_far_bounds`)?"""
    bounds = _far_bounds(reference)
    if not bounds:
        return np.zeros(len(xs), bool)
    values, _ = _as_numbers([[x.get(name) for name, _, _ in bounds] for x in xs], len(bounds))
    low, high = np.array([b[1] for b in bounds]), np.array([b[2] for b in bounds])
    return ((values < low) | (values > high)).any(axis=1)  # NaN (missing) is not far


def _far_count(flags: list[tuple[int, bool]], n: int) -> int:
    """How many of `flags` (of the latest `n` events) are far; -1 if fewer than `n` are kept."""
    return sum(far for _, far in flags) if len(flags) == n else -1


def _trailing(flags: list[tuple[int, bool]], value: bool) -> int:
    """How many of the last flags equal `value`, in a row."""
    run = 0
    while run < len(flags) and flags[-1 - run][1] is value:
        run += 1
    return run
