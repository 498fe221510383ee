"""The reference of the inputs: how each feature is binned, and its mass per bin.

Bins shared by every feature: MISSING, WRONG-TYPE, OTHER (categories), BELOW-min and ABOVE-max
(numbers); then the feature's own bins: reference deciles (continuous), the values seen (discrete)
or the most frequent categories. Features that only ever grow in the reference (a date, a counter)
are "clocks": known, but never compared.
"""

from __future__ import annotations

import math
from collections import Counter
from copy import copy
from dataclasses import dataclass, replace
from itertools import chain
from operator import methodcaller
from typing import Any, Sequence

import numpy as np

from drift.stats import Z_CHANCE, change_point

MISSING, WRONG_TYPE, OTHER, BELOW, ABOVE, FIRST = range(6)
_DECILES = np.linspace(0.1, 0.9, 9)
_UNUSED = {"continuous": (OTHER,), "discrete": (), "categorical": (BELOW, ABOVE)}
_PLAIN = {int, float, type(None)}
_TEXT = (str, bool, np.bool_)


@dataclass(frozen=True)
class FeatureReference:
    """How one feature is binned, and its smoothed reference probability per bin code."""

    name: str
    kind: str  # "continuous", "discrete" or "categorical"
    lo: float  # numbers: reference minimum and maximum
    hi: float
    edges: tuple[float, ...]  # continuous: inner cut points (deciles); discrete: the values seen
    categories: tuple[Any, ...]  # categorical: the `max_categories` most frequent values
    mass: tuple[float, ...]  # per bin code; 0.0 marks a bin this kind does not use
    # How many times longer its runs of equal bins are in the reference than independent events
    # would make them (at least 1): a window of n events holds the evidence of n / persistence.
    persistence: float = 1.0


@dataclass(frozen=True)
class Reference:
    """An immutable, picklable reference: park one per regime, restore it with `use_reference`."""

    features: tuple[FeatureReference, ...]
    start: int
    end: int
    size: int  # valid events it was built from
    invalid_rate: float
    # Features that only ever grow (or shrink) in the reference: a date, a counter, an id. They
    # drift by construction, so they are known (not "new") but not compared.
    clocks: tuple[str, ...] = ()


ABSURD_WIDTHS = 1000  # a number this many widths beyond a reference's range is absurd (see `absurd_bounds`)


def absurd_bounds(reference: Reference, *, early: bool = False) -> dict[Any, tuple[float, float]]:
    """Per number feature of `reference` (not clocks): the interval outside which a value is absurd,
    its range widened on each side by `ABSURD_WIDTHS` times its width. A glitch of 1e30 is absurd; a
    unit change of x1000 is not (the data alarm deals with it). A feature constant in the reference
    has no bound, unless the reference is the `early` one of a regime whose reference is still
    collected: there it allows no other value. A sensor stuck for a whole short regime that comes
    back varying is absurd to the model of that regime, whose scaler divides by a variance of almost
    nothing (holdout seed 137, friedman x0 stuck [7k,8k) / linear: the fresh model promoted in the
    incident learned the sensor's return and diverged, MAE 10,286 over the next 1,000 events).

    Wider, or stricter for constant features, held out many events of the real streams: a clock
    feature a reference did not recognise as one (Elec2's date, against an old parked regime's
    range), Elec2's Victoria columns (constant for 17,000 rows). With these bounds none of their
    events is held out.

    >>> ref = build_reference([{"t": 20.0 + i % 10, "flag": 0.0} for i in range(100)], 0, 99)
    >>> absurd_bounds(ref)
    {'t': (-8980.0, 9029.0)}
    >>> absurd_bounds(ref, early=True)["flag"]
    (0.0, 0.0)
    """
    bounds = {}
    for f in reference.features:
        if f.kind != "categorical" and f.name not in reference.clocks and (f.hi > f.lo or early):
            width = f.hi - f.lo
            bounds[f.name] = (f.lo - ABSURD_WIDTHS * width, f.hi + ABSURD_WIDTHS * width)
    return bounds


def psi(recent: Sequence[float], reference: Sequence[float]) -> float:
    """Population stability index of two histograms of counts over the same bins.

    Both sides are smoothed by 0.5 per bin, so an empty bin costs little instead of infinity.

    >>> psi([50, 30, 20], [50, 30, 20])
    0.0
    >>> psi([90, 5, 5], [34, 33, 33]) > 0.25
    True
    """
    used = np.ones(np.shape(recent), bool)
    p = _smooth(np.asarray(recent, float), used)
    q = _smooth(np.asarray(reference, float), used)
    return float(((p - q) * np.log(p / q)).sum())


def build_reference(xs: Sequence[dict], start: int, end: int, invalid_rate: float = 0.0, *,
                    discrete_max_unique: int = 12, max_categories: int = 20) -> Reference:
    """The reference of the valid events `xs` (event indices `start` to `end`).

    >>> ref = build_reference([{"n": i % 3, "c": "ab"[i % 2]} for i in range(100)], 0, 99)
    >>> [(f.name, f.kind, f.edges, f.categories) for f in ref.features]
    [('n', 'discrete', (0.0, 1.0, 2.0), ()), ('c', 'categorical', (), ('a', 'b'))]
    """
    xs = list(xs)
    columns = {name: [x.get(name) for x in xs] for name in dict.fromkeys(k for x in xs for k in x)}
    clocks = tuple(name for name, column in columns.items() if _is_clock(column, discrete_max_unique))
    features = [_bin_feature(name, column, discrete_max_unique, max_categories)
                for name, column in columns.items() if name not in clocks]
    binning = _Binning(features, clocks)
    codes = binning.encode(xs)
    mass = np.where(binning.used, _smooth(binning.count(codes), binning.used), 0.0)
    features = [replace(f, mass=tuple(m[:n].tolist()), persistence=float(r))
                for f, m, n, r in zip(features, mass, binning.bins, _persistence(codes, mass))]
    return Reference(tuple(features), start, end, len(xs), invalid_rate, clocks)


def _persistence(codes: np.ndarray, mass: np.ndarray) -> np.ndarray:
    """Per feature: its mean run of consecutive events in the same bin, over the mean run that
    independent events with these bin probabilities give (1 / (1 - sum q^2)); at least 1.

    A slow feature (the day of the week in half-hourly data) stays in one bin for dozens of
    events, so a window holds a few of its values, not hundreds: PSI limits scale by this. A
    feature that never changes bin is 1.

    >>> codes = np.array([[6 + i // 48 % 7, 6 + i % 3] for i in range(1000)])
    >>> mass = np.zeros((2, 13)); mass[0, 6:13] = 1 / 7; mass[1, 6:9] = 1 / 3
    >>> [round(float(r)) for r in _persistence(codes, mass)]
    [41, 1]
    >>> mass[1] = 0.0; mass[1, 6:9] = [0.998, 0.001, 0.001]  # one value, smoothed
    >>> [round(float(r)) for r in _persistence(np.array([[6 + i // 48 % 7, 6] for i in range(1000)]), mass)]
    [41, 1]
    """
    if len(codes) < 2:
        return np.ones(codes.shape[1])
    changes = np.count_nonzero(codes[1:] != codes[:-1], axis=0)
    observed = len(codes) / (changes + 1)
    expected = 1 / np.maximum(1 - (mass ** 2).sum(axis=1), 1e-9)
    # One value throughout (a stuck sensor) shows no runs: independent events of one value make no
    # changes either; only the smoothing's pseudo-counts expect a few (about bins - 1).
    return np.where(changes == 0, 1.0, np.maximum(1.0, observed / expected))


def _is_clock(column: list, discrete_max_unique: int) -> bool:
    """A numeric feature that never turns back in the reference window and takes many values.

    >>> _is_clock([0.1, 0.1, 0.2, 0.3] * 1 + [0.4 + i / 100 for i in range(20)], 12)
    True
    >>> _is_clock([0.3, 0.1, 0.2] * 10, 12)
    False
    """
    if not column or not all(_is_number(v) for v in column):
        return False
    values = np.asarray(column, float)
    if np.unique(values).size <= discrete_max_unique:
        return False
    steps = np.diff(values)
    return bool(np.all(steps >= 0) or np.all(steps <= 0))


def _bin_feature(name: Any, column: list, discrete_max_unique: int,
                 max_categories: int) -> FeatureReference:
    """The bins of one feature from its reference values (its mass is filled in afterwards)."""
    numbers = np.array([v for v in column if _is_number(v)], float)
    numbers = numbers[~np.isnan(numbers)]
    texts = [v for v in column if isinstance(v, _TEXT)]
    if not numbers.size or numbers.size < len(texts):
        top = tuple(value for value, _ in Counter(texts).most_common(max_categories))
        return FeatureReference(name, "categorical", 0.0, 0.0, (), top, ())
    values = np.unique(numbers)
    lo, hi = float(values[0]), float(values[-1])
    if values.size <= discrete_max_unique:
        return FeatureReference(name, "discrete", lo, hi, tuple(values.tolist()), (), ())
    cuts = np.unique(np.quantile(numbers, _DECILES))
    return FeatureReference(name, "continuous", lo, hi, tuple(cuts[cuts > lo].tolist()), (), ())


class _Binning:
    """Bins events into codes (events x features), as the features say, and holds their reference
    mass as a (features x bins) matrix for the PSI. Numeric features are binned together."""

    def __init__(self, features: Sequence[FeatureReference], known: Sequence[str] = ()) -> None:
        self.names = [f.name for f in features]
        self.keys = frozenset(self.names) | frozenset(known)
        self.bins = [FIRST + len(f.edges) + (f.kind == "continuous") + len(f.categories)
                     for f in features]
        shape = (len(features), max(self.bins, default=FIRST))
        self.used, self.q = np.zeros(shape, bool), np.ones(shape)
        for j, (f, n) in enumerate(zip(features, self.bins)):
            self.used[j, :n] = True
            self.used[j, list(_UNUSED[f.kind])] = False
            if f.mass:
                self.q[j, :n] = np.where(self.used[j, :n], f.mass, 1.0)
        self._offsets = np.arange(len(features)) * shape[1]
        numeric = [j for j, f in enumerate(features) if f.kind != "categorical"]
        self._numeric, self._numeric_names = numeric, [self.names[j] for j in numeric]
        width = max([len(features[j].edges) for j in numeric] + [1])
        # Continuous: cut points padded with +inf; discrete: values padded with NaN.
        self._cuts = np.full((len(numeric), width), np.inf)
        self._values = np.full((len(numeric), width), np.nan)
        for i, j in enumerate(numeric):
            f = features[j]
            (self._values if f.kind == "discrete" else self._cuts)[i, :len(f.edges)] = f.edges
        self._discrete = np.array([features[j].kind == "discrete" for j in numeric], bool)
        self._lo = np.array([features[j].lo for j in numeric])
        self._hi = np.array([features[j].hi for j in numeric])
        self._categorical = [(j, f.name, {c: FIRST + i for i, c in enumerate(f.categories)})
                             for j, f in enumerate(features) if f.kind == "categorical"]
        self.persistence = np.array([f.persistence for f in features])

    def encode(self, xs: list[dict]) -> np.ndarray:
        codes = np.empty((len(xs), len(self.names)), np.int16)
        if self._numeric:
            codes[:, self._numeric] = self._encode_numbers(xs)
        for j, name, index in self._categorical:
            values = map(methodcaller("get", name), xs)
            codes[:, j] = [index.get(v, OTHER) if isinstance(v, _TEXT) else
                           MISSING if v is None else WRONG_TYPE for v in values]
        return codes

    def _encode_numbers(self, xs: list[dict]) -> np.ndarray:
        names = self._numeric_names
        values, wrong = _as_numbers([list(map(x.get, names)) for x in xs], len(names))
        cell = values[:, :, None]
        match = self._values == cell
        codes = np.where(self._discrete, np.where(match.any(axis=2), FIRST + match.argmax(axis=2),
                                                  OTHER),
                         FIRST + (self._cuts <= cell).sum(axis=2))
        codes = np.where(values < self._lo, BELOW, np.where(values > self._hi, ABOVE, codes))
        codes = np.where(np.isnan(values), MISSING, codes)
        return codes if wrong is None else np.where(wrong, WRONG_TYPE, codes)

    def count(self, codes: np.ndarray) -> np.ndarray:
        flat = (codes + self._offsets).ravel()
        return np.bincount(flat, minlength=self.q.size).reshape(self.q.shape)

    def contributions(self, counts: np.ndarray) -> np.ndarray:
        p = _smooth(counts.astype(float), self.used)
        return (p - self.q) * np.log(p / self.q)

    def onset(self, j: int, recent: np.ndarray, codes: np.ndarray) -> int:
        """Where in `codes` (feature `j`'s bin per event, oldest first) the events most likely
        began to come from the `recent` histogram rather than the reference mass: a change point of
        each event's log-likelihood ratio (recent against reference) of its bin, high for the bins
        the shift filled and low elsewhere, so that its mean steps at the onset. The plain surprise
        -ln q would miss a sensor stuck inside a bin as common as the others."""
        p = _smooth(recent.astype(float), self.used[j])
        return change_point(np.log(p / self.q[j])[codes])


def _smooth(counts: np.ndarray, used: np.ndarray) -> np.ndarray:
    """Probabilities with 0.5 added to each used bin; unused bins get 1 (they then add 0 to PSI)."""
    padded = np.where(used, counts + 0.5, 0.0)
    return np.where(used, padded / padded.sum(axis=-1, keepdims=True), 1.0)


def _is_number(v: Any) -> bool:
    numeric = isinstance(v, (int, float, np.integer, np.floating))
    return numeric and not isinstance(v, (bool, np.bool_))


def _as_numbers(rows: list[list], width: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Floats (NaN where missing) of a table of raw values, and a mask of the cells that are not
    numbers (None if there are none)."""
    if set(map(type, chain.from_iterable(rows))) <= _PLAIN:
        try:
            return np.array(rows, float).reshape(len(rows), width), None
        except OverflowError:  # an int beyond float range
            pass
    values, wrong = np.full((len(rows), width), np.nan), np.zeros((len(rows), width), bool)
    for i, row in enumerate(rows):
        for j, v in enumerate(row):
            if _is_number(v):
                try:
                    values[i, j] = v
                except OverflowError:  # an int beyond float range
                    values[i, j] = math.inf if v > 0 else -math.inf
            elif v is not None:
                wrong[i, j] = True
    return values, wrong


def with_mass_of(binning: _Binning, codes: np.ndarray) -> _Binning:
    """`binning` with the reference mass and persistence of the events `codes` (its bins kept):
    to compare two parts of a window of events under one binning."""
    mass = np.where(binning.used, _smooth(binning.count(codes), binning.used), 0.0)
    rebinned = copy(binning)
    rebinned.q = np.where(binning.used, mass, 1.0)
    rebinned.persistence = _persistence(codes, mass)
    return rebinned


def chance_psi(binning: _Binning, window: int, reference_size: int, z: float = Z_CHANCE) -> np.ndarray:
    """Per feature, the PSI that a window drawn from the reference exceeds once in a billion
    windows (by default; `z` standard normal units) - the Wilson-Hilferty quantile of chi-square
    with bins - 1 degrees of freedom, scaled - times the feature's persistence (a window of a slow
    feature holds fewer independent events)."""
    k = np.maximum(binning.used.sum(axis=1) - 1, 1)
    quantile = k * (1 - 2 / (9 * k) + z * np.sqrt(2 / (9 * k))) ** 3
    return binning.persistence * quantile * (1 / window + 1 / reference_size)
