"""Synthetic event streams with known incidents and drifts, for ``produce``, the demo and benchmarks.

A scenario is a base stream from `river.datasets.synth` plus a list of `Incident`s at known
positions. Events are riverguard event dicts, deterministic given the seed:

>>> events = list(generate("unit_change", 10, seed=1))
>>> events[0]["id"], events[0]["ts"]
('e-0000000', 1763712000.0)
>>> sorted(events[0]["x"])[:3]
['age', 'car', 'commission']
>>> describe("unit_change", 10)
(Incident(kind='unit_change', start=4, end=6, feature='salary', factor=1000.0),)
>>> plain = list(generate("stationary", 10, seed=1))
>>> round(events[4]["x"]["salary"] / plain[4]["x"]["salary"]), events[6] == plain[6]
(1000, True)

Incidents are passing faults of the feed (the guard should restore the old model afterwards);
changes (``*_change``) are real changes of the world (the guard should adopt a new model).
To add an incident: write an effect function, register it in `_EFFECTS` and `INCIDENT_KINDS`, and
add a scenario that uses it to `_CATALOGUE`.

Every scenario also runs on another base stream (``base=``, one of `BASES`): streams the guard was
never tuned on, for hold-out benchmarks. Features are then named ``x0``, ``x1``, ...; an incident
that names no feature picks the base's first numeric ones.

>>> [inc.feature for inc in describe("swapped_columns", 10, base="sea")]
[('x0', 'x1')]
>>> sorted(next(generate("unit_change", 1, base="sine"))["x"])
['x0', 'x1']
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from typing import Callable, Iterator

from stream.bases import BASES, NOMINAL_PREFIX, STREAMS, Base  # noqa: F401 - BASES: part of this API

BASE_TS = 1_763_712_000.0  # 2025-11-21T08:00:00Z: fixed, so streams are reproducible
TS_STEP = 0.01

INCIDENT_KINDS = {
    "unit_change": "feature multiplied by `factor` (e.g. cents instead of dollars)",
    "offset_shift": "`factor` added to the feature (a recalibrated sensor)",
    "stuck_sensor": "feature repeats the value it had when the incident began",
    "zeroed_sensor": "feature reads 0.0",
    "missing_features": "feature(s) absent from `x` (a burst of missing columns)",
    "swapped_columns": "the two features in `feature` trade values",
    "flipped_labels": "binary label flipped with probability `factor` (1.0: all flipped)",
    "abrupt_change": "labels follow a new concept from `start` on",
    "gradual_change": "the new concept's share of labels grows linearly from `start` to `end`",
    "recurring_change": "the new concept holds within [start, end), then the old one returns",
}
CHANGE_KINDS = frozenset({"abrupt_change", "gradual_change", "recurring_change"})


@dataclass(frozen=True)
class Incident:
    """Something that happens to the events with index in ``[start, end)``.

    `feature` names the column affected (a pair for ``swapped_columns``, one or more names for
    ``missing_features``); `factor` is the incident's magnitude: multiplier for ``unit_change``,
    added amount for ``offset_shift``, share of labels flipped for ``flipped_labels``.

    >>> Incident("unit_change", 400, 600, "salary", 1000.0).covers(599)
    True
    """

    kind: str
    start: int
    end: int
    feature: str | tuple[str, ...] | None = None
    factor: float | None = None

    def covers(self, index: int) -> bool:
        return self.start <= index < self.end


@dataclass(frozen=True)
class _Scenario:
    description: str
    base: str  # "agrawal" (binary classification) or "friedman" (regression)
    kind: str | None = None
    defaults: dict = field(default_factory=dict)


_CATALOGUE: dict[str, _Scenario] = {
    "stationary": _Scenario("Agrawal loan approval (function 6), no change: must cause no rollback", "agrawal"),
    "unit_change": _Scenario(
        "Agrawal; `salary` ×1000 during the middle fifth", "agrawal", "unit_change",
        {"feature": "salary", "factor": 1000.0},
    ),
    "offset_shift": _Scenario(
        "Agrawal; 50000 added to `salary` during the middle fifth", "agrawal", "offset_shift",
        {"feature": "salary", "factor": 50000.0},
    ),
    "stuck_sensor": _Scenario(
        "Agrawal; `loan` stuck at one value during the middle fifth", "agrawal", "stuck_sensor",
        {"feature": "loan"},
    ),
    "zeroed_sensor": _Scenario(
        "Agrawal; `commission` reads 0 during the middle fifth", "agrawal", "zeroed_sensor",
        {"feature": "commission"},
    ),
    "missing_features": _Scenario(
        "Agrawal; `loan` and `hvalue` missing during the middle fifth", "agrawal", "missing_features",
        {"feature": ("loan", "hvalue")},
    ),
    "swapped_columns": _Scenario(
        "Agrawal; `salary` and `loan` swapped during the middle fifth", "agrawal", "swapped_columns",
        {"feature": ("salary", "loan")},
    ),
    "flipped_labels": _Scenario(
        "Agrawal; every label flipped during the middle fifth", "agrawal", "flipped_labels",
        {"factor": 1.0},
    ),
    "label_noise": _Scenario(
        "Agrawal; 30% of labels flipped during the middle fifth", "agrawal", "flipped_labels",
        {"factor": 0.3},
    ),
    "concept_change": _Scenario(
        "Agrawal; abrupt switch from function 6 to 5 at the middle: a real change",
        "agrawal", "abrupt_change",
    ),
    "gradual_change": _Scenario(
        "Agrawal; function 6 gives way to 5 gradually over the middle fifth: a real change",
        "agrawal", "gradual_change",
    ),
    "recurring_change": _Scenario(
        "Agrawal; function 5 holds in the second and fourth fifths, 6 otherwise",
        "agrawal", "recurring_change",
    ),
    "regression": _Scenario("Friedman #1 regression, no change", "friedman"),
    "regression_unit_change": _Scenario(
        "Friedman #1; `x0` ×1000 during the middle fifth", "friedman", "unit_change",
        {"feature": "x0", "factor": 1000.0},
    ),
    "regression_concept_change": _Scenario(
        "Friedman #1; abrupt switch to FriedmanDrift's global change at the middle: a real change",
        "friedman", "abrupt_change",
    ),
    "regression_gradual_change": _Scenario(
        "Friedman #1 gives way to FriedmanDrift's global change over the middle fifth: a real change",
        "friedman", "gradual_change",
    ),
    "demo": _Scenario(
        "Agrawal; `salary` sent in cents (×100) during the middle fifth, then fixed",
        "agrawal", "unit_change", {"feature": "salary", "factor": 100.0},
    ),
}

SCENARIOS: dict[str, str] = {name: s.description for name, s in _CATALOGUE.items()}
_COMMON_PARAMS = ("start", "end", "feature", "factor", "base")
# How many features each incident kind names (2: a pair, None: one or more).
_FEATURE_ARITY = {
    "unit_change": 1, "offset_shift": 1, "stuck_sensor": 1, "zeroed_sensor": 1,
    "missing_features": None, "swapped_columns": 2, "flipped_labels": 0,
}
_ARITHMETIC = frozenset({"unit_change", "offset_shift"})


def task(name: str, base: str | None = None) -> str:
    """``"classification"`` or ``"regression"`` (of scenario `name`, run on `base` if given).

    >>> task("regression_unit_change"), task("unit_change", base="planes2d")
    ('regression', 'regression')
    """
    return _base(_scenario(name), base).task


def describe(name: str, n: int, seed: int = 42, **params) -> tuple[Incident, ...]:
    """Where the incidents of scenario `name` sit in a stream of `n` events.

    Positions do not depend on `seed`; it is accepted so that calls mirror `generate`.

    >>> [(inc.kind, inc.start, inc.end) for inc in describe("recurring_change", 1000)]
    [('recurring_change', 200, 400), ('recurring_change', 600, 800)]
    """
    scenario = _scenario(name)
    _check_params(name, scenario, params)
    base = _base(scenario, params.get("base"))
    if n < 0:
        raise ValueError(f"n must be a number of events >= 0, got {n!r}")
    if scenario.kind is None:
        return ()
    default_start, default_end = _default_window(scenario.kind, n)
    start, end = params.get("start", default_start), params.get("end", default_end)
    if not (isinstance(start, int) and isinstance(end, int) and 0 <= start <= end <= n):
        raise ValueError(
            f"scenario {name!r}: expected integers 0 <= start <= end <= n={n}, "
            f"got start={start!r}, end={end!r}"
        )
    if scenario.kind in CHANGE_KINDS:
        if base.concepts is None:
            raise ValueError(f"scenario {name!r}: base {params['base']!r} has one concept only; "
                             f"bases with two: {', '.join(b for b, v in STREAMS.items() if v.concepts)}")
        first = Incident(scenario.kind, start, end)
        if scenario.kind != "recurring_change":
            return (first,)
        # The new concept comes back after a stretch of the old one as long as its first visit.
        again = Incident(scenario.kind, min(n, 2 * end - start), min(n, 3 * end - 2 * start))
        return (first, again) if again.start < again.end else (first,)
    if scenario.kind == "flipped_labels" and base.task != "classification":
        raise ValueError(f"scenario {name!r} flips binary labels; base {params['base']!r} is a regression")
    default_feature, default_factor = scenario.defaults.get("feature"), scenario.defaults.get("factor")
    if params.get("base", scenario.base) != scenario.base:
        # The catalogue's defaults name the usual base's columns and scales.
        arity = _FEATURE_ARITY[scenario.kind]
        default_feature = base.default_feature(arity) if arity != 0 else None
        default_factor = base.offset if scenario.kind == "offset_shift" else default_factor
    feature = _check_feature(name, scenario, base, params.get("feature", default_feature))
    factor = _check_factor(name, scenario.kind, params.get("factor", default_factor))
    return (Incident(scenario.kind, start, end, feature, factor),)


def generate(name: str, n: int, seed: int = 42, **params) -> Iterator[dict]:
    """Yield `n` events of scenario `name`: ``{"id", "ts", "x", "y"}``.

    `params` override the incident's ``start``, ``end``, ``feature`` and ``factor``, and the base
    stream (``base``, one of `BASES`); Agrawal-based scenarios also take ``categoricals="number"``
    (default: every feature a float, which plain linear models need) or ``"string"`` (``car`` and
    ``zipcode`` as category names).

    >>> [round(e["y"], 3) for e in generate("regression", 3, seed=7)]
    [5.783, 17.31, 11.948]
    """
    scenario = _scenario(name)
    incidents = describe(name, n, seed, **params)
    categoricals = params.get("categoricals", "number")
    if categoricals not in ("number", "string"):
        raise ValueError(f"categoricals must be 'number' or 'string', got {categoricals!r}")
    effects = [(inc, _EFFECTS[inc.kind]) for inc in incidents if inc.kind not in CHANGE_KINDS]
    changes = [inc for inc in incidents if inc.kind in CHANGE_KINDS]
    noise = random.Random(f"{seed}-noise")
    held: dict[Incident, object] = {}
    rows = _rows(_base(scenario, params.get("base")), seed, changes)
    for i, (x, y) in enumerate(itertools.islice(rows, n)):
        for incident, effect in effects:
            if incident.covers(i):
                x, y = effect(x, y, incident, noise, held)
        if categoricals == "string":
            x = {k: f"{NOMINAL_PREFIX[k]}{int(v)}" if k in NOMINAL_PREFIX else v for k, v in x.items()}
        yield {"id": f"e-{i:07d}", "ts": BASE_TS + i * TS_STEP, "x": x, "y": y}


def _rows(base: Base, seed: int, changes: list[Incident]) -> Iterator[tuple[dict, object]]:
    """The base stream as (x, y), endless; labels switch concept per `changes`.

    Numbers become floats (booleans too), text stays text; integer feature keys become ``x<k>``.
    """
    label = int if base.task == "classification" else float
    old = base.make(seed, base.concepts[0] if base.concepts else None)
    if not changes:
        for x, y in old:
            yield _features(x), label(y)
        return
    # Both generators share the seed, so they draw identical features: only the concept differs.
    new = base.make(seed, base.concepts[1])
    chooser = random.Random(f"{seed}-concept")
    for i, ((x, y_old), (_, y_new)) in enumerate(zip(old, new)):
        yield _features(x), label(y_new if _new_concept(changes, i, chooser) else y_old)


def _features(x: dict) -> dict:
    return {
        (k if isinstance(k, str) else f"x{k}"): (v if isinstance(v, str) else float(v))
        for k, v in x.items()
    }


def _new_concept(changes: list[Incident], index: int, chooser: random.Random) -> bool:
    for change in changes:
        if change.kind == "gradual_change":
            if index >= change.end:
                return True
            if change.covers(index):
                return chooser.random() < (index - change.start + 1) / (change.end - change.start + 1)
        elif change.covers(index):
            return True
    return False


# Effects: (x, y, incident, noise rng, per-incident memory) -> (x, y). `x` is a fresh dict per event.
def _unit_change(x, y, inc, rng, held):
    x[inc.feature] *= inc.factor
    return x, y


def _offset_shift(x, y, inc, rng, held):
    x[inc.feature] += inc.factor
    return x, y


def _stuck_sensor(x, y, inc, rng, held):
    x[inc.feature] = held.setdefault(inc, x[inc.feature])
    return x, y


def _zeroed_sensor(x, y, inc, rng, held):
    x[inc.feature] = 0.0
    return x, y


def _missing_features(x, y, inc, rng, held):
    for name in inc.feature:
        x.pop(name, None)
    return x, y


def _swapped_columns(x, y, inc, rng, held):
    a, b = inc.feature
    x[a], x[b] = x[b], x[a]
    return x, y


def _flipped_labels(x, y, inc, rng, held):
    return x, (1 - y if rng.random() < inc.factor else y)


_EFFECTS: dict[str, Callable] = {
    "unit_change": _unit_change,
    "offset_shift": _offset_shift,
    "stuck_sensor": _stuck_sensor,
    "zeroed_sensor": _zeroed_sensor,
    "missing_features": _missing_features,
    "swapped_columns": _swapped_columns,
    "flipped_labels": _flipped_labels,
}


def _base(scenario: _Scenario, name: str | None) -> Base:
    try:
        return STREAMS[name or scenario.base]
    except KeyError:
        raise ValueError(f"unknown base {name!r}; known: {', '.join(STREAMS)}") from None


def _scenario(name: str) -> _Scenario:
    try:
        return _CATALOGUE[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(_CATALOGUE)}") from None


def _check_params(name: str, scenario: _Scenario, params: dict) -> None:
    base = params.get("base", scenario.base)
    allowed = _COMMON_PARAMS + (("categoricals",) if base == "agrawal" else ())
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise TypeError(f"scenario {name!r} takes parameters {', '.join(allowed)}; got {', '.join(unknown)}")
    if scenario.kind in CHANGE_KINDS and ({"feature", "factor"} & set(params)):
        raise TypeError(f"scenario {name!r} is a change of concept: it takes no feature or factor")


def _default_window(kind: str, n: int) -> tuple[int, int]:
    if kind == "abrupt_change":
        return n // 2, n
    if kind == "recurring_change":
        return n // 5, 2 * n // 5
    return 2 * n // 5, 3 * n // 5


def _check_feature(name: str, scenario: _Scenario, base: Base, feature) -> str | tuple[str, ...] | None:
    arity = _FEATURE_ARITY[scenario.kind]
    known = base.features
    if arity == 0:
        if feature is not None:
            raise TypeError(f"scenario {name!r} changes labels: it takes no feature, got {feature!r}")
        return None
    # "a,b" lets a command line name the columns of swapped_columns / missing_features.
    names = tuple(feature.split(",")) if isinstance(feature, str) else tuple(feature or ())
    wrong = [f for f in names if f not in known]
    if wrong or not names:
        raise ValueError(f"scenario {name!r}: unknown feature {feature!r}; known: {', '.join(known)}")
    if arity == 1:
        if len(names) != 1:
            raise ValueError(f"scenario {name!r}: expected one feature, got {feature!r}")
        if scenario.kind in _ARITHMETIC and names[0] in base.nominal:
            raise ValueError(f"scenario {name!r}: {names[0]!r} is a category code; pick a numeric feature")
        return names[0]
    if arity == 2 and len(set(names)) != 2:
        raise ValueError(f"scenario {name!r}: expected two different features, got {feature!r}")
    return names


def _check_factor(name: str, kind: str, factor) -> float | None:
    if kind not in _ARITHMETIC and kind != "flipped_labels":
        if factor is not None:
            raise TypeError(f"scenario {name!r} takes no factor, got {factor!r}")
        return None
    if isinstance(factor, bool) or not isinstance(factor, (int, float)):
        raise TypeError(f"scenario {name!r}: factor must be a number, got {factor!r}")
    if kind == "flipped_labels" and not 0.0 <= factor <= 1.0:
        raise ValueError(f"scenario {name!r}: factor is the share of labels flipped, 0..1; got {factor!r}")
    return float(factor)
