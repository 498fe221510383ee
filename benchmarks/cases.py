"""The streams the guard-quality benchmark runs: which incidents, on which bases, where.

- `default_cases`: every incident and change of DESIGN.md on the usual bases (Agrawal, Friedman),
  at [12k, 18k) of 30,000 events. The guard was built reading these.
- `holdout_cases`: other bases, features, positions and durations, fixed in this file; only the
  seed changes from run to run. A seed is unseen on its first run only, and after thirty of them
  the specs themselves have been read many times.
- `drawn_cases`: specs drawn at random from the seed: for each incident kind of DESIGN.md, a base
  that fits it, a feature, a size, a start and a duration; so every seed is scenarios no one has
  read. Run a new seed to ask how the guard does on scenarios it has never seen.

>>> [c.key for c in drawn_cases(7)][:3]
['mv:unit_change_0', 'planes2d:unit_change_1', 'friedman:offset_shift_2']
>>> drawn_cases(7)[0].params == drawn_cases(7)[0].params  # the same seed draws the same specs
True
"""

from __future__ import annotations

import random

from benchmarks._quality import AFTER, Case, make_case
from stream.bases import STREAMS, Base

N, START, END = 30_000, 12_000, 18_000


def default_cases(seed: int, quick: bool) -> list[Case]:
    """Every incident and change of DESIGN.md on the usual bases, at [12k, 18k) of 30k events."""
    w = {"start": START, "end": END}
    return [
        make_case("unit_change_x1000", "unit_change", N, seed, factor=1000.0, **w),
        make_case("unit_change_x100", "unit_change", N, seed, factor=100.0, **w),
        make_case("stuck_sensor", "stuck_sensor", N, seed, **w),
        make_case("zeroed_sensor", "zeroed_sensor", N, seed, **w),
        make_case("offset_shift", "offset_shift", N, seed, **w),
        make_case("flipped_labels", "flipped_labels", N, seed, **w),
        make_case("label_noise", "label_noise", N, seed, **w),
        make_case("swapped_columns", "swapped_columns", N, seed, **w),
        make_case("missing_features", "missing_features", N, seed, **w),
        make_case("concept_change", "concept_change", N, seed, start=START),
        make_case("gradual_change", "gradual_change", N, seed, **w),
        # Visits of 3,000 events: the 10,000 measured cover new, old, new and old again.
        make_case("recurring_change", "recurring_change", N, seed, start=START, end=15_000),
        make_case("stationary", "stationary", N if quick else 200_000, seed),
        make_case("regression_unit_change", "regression_unit_change", N, seed, **w),
        make_case("regression_concept_change", "regression_concept_change", N, seed, start=START),
        make_case("regression_gradual_change", "regression_gradual_change", N, seed, **w),
    ]


def holdout_cases(seed: int) -> list[Case]:
    """Bases, seeds, features, positions and durations the guard was never tuned on."""
    specs = [
        # key, scenario, n, params
        ("sea:unit_change_x1000", "unit_change", N, dict(base="sea", feature="x0", factor=1000.0, start=START, end=END)),
        ("hyperplane:unit_change_x100", "unit_change", N, dict(base="hyperplane", feature="x3", factor=100.0, start=START, end=END)),
        ("rbf:zeroed_sensor", "zeroed_sensor", N, dict(base="rbf", feature="x2", start=START, end=END)),
        ("rbf:stuck_sensor", "stuck_sensor", N, dict(base="rbf", feature="x5", start=START, end=END)),
        ("sea:offset_shift", "offset_shift", N, dict(base="sea", feature="x1", factor=10.0, start=START, end=END)),
        ("sine:swapped_columns", "swapped_columns", N, dict(base="sine", start=START, end=END)),
        ("hyperplane:missing_features", "missing_features", N, dict(base="hyperplane", feature="x0,x1,x2", start=START, end=END)),
        ("mixed:flipped_labels", "flipped_labels", N, dict(base="mixed", start=START, end=END)),
        ("hyperplane:label_noise", "label_noise", N, dict(base="hyperplane", start=START, end=END)),
        ("agrawal:unit_change_x100_short", "unit_change", 18_000, dict(feature="commission", factor=100.0, start=7_000, end=8_000)),
        ("agrawal:unit_change_x1000_long", "unit_change", 25_000, dict(feature="loan", factor=1000.0, start=7_000, end=15_000)),
        ("agrawal:flipped_labels_short", "flipped_labels", 18_000, dict(start=7_000, end=8_000)),
        ("agrawal:zeroed_sensor_short", "zeroed_sensor", 23_000, dict(feature="salary", start=12_000, end=13_000)),
        ("agrawal:missing_features_long", "missing_features", 28_000, dict(feature="salary,commission", start=10_000, end=18_000)),
        ("agrawal:swapped_columns_long", "swapped_columns", 25_000, dict(feature="age,hvalue", start=7_000, end=15_000)),
        ("agrawal:stuck_sensor_long", "stuck_sensor", 25_000, dict(feature="salary", start=7_000, end=15_000)),
        ("agrawal:offset_shift_age", "offset_shift", N, dict(feature="age", factor=30.0, start=START, end=END)),
        ("sea:concept_change", "concept_change", N, dict(base="sea", start=START)),
        ("sine:gradual_change", "gradual_change", N, dict(base="sine", start=START, end=END)),
        ("mixed:recurring_change", "recurring_change", N, dict(base="mixed", start=START, end=15_000)),
        ("agrawal:concept_change_early", "concept_change", 20_000, dict(start=7_000)),
        ("agrawal:gradual_change_short", "gradual_change", 25_000, dict(start=12_000, end=13_000)),
        ("friedman:unit_change_x100", "regression_unit_change", N, dict(feature="x3", factor=100.0, start=START, end=END)),
        ("planes2d:unit_change_x1000", "unit_change", N, dict(base="planes2d", feature="x2", factor=1000.0, start=START, end=END)),
        ("mv:offset_shift", "offset_shift", N, dict(base="mv", feature="x9", factor=1000.0, start=START, end=END)),
        ("mv:unit_change_x100", "unit_change", N, dict(base="mv", feature="x1", factor=100.0, start=7_000, end=8_000)),
        ("friedman:stuck_sensor_short", "stuck_sensor", 18_000, dict(base="friedman", feature="x0", start=7_000, end=8_000)),
        ("friedman:recurring_change", "recurring_change", N, dict(base="friedman", start=START, end=15_000)),
        ("friedman:gradual_change", "regression_gradual_change", N, dict(start=START, end=END)),
        ("hyperplane:stationary", "stationary", 200_000, dict(base="hyperplane")),
        ("rbf:stationary", "stationary", 200_000, dict(base="rbf")),
    ]
    return [make_case(key, scenario, n, seed + 1000 + i, **params) for i, (key, scenario, n, params) in enumerate(specs)]


# Incident kinds of DESIGN.md ("Incidents the guard must handle"), drawn twice each, and the real
# changes once per task: scenario name, and how many features it names (0: labels, 2: a pair).
_DRAWN_INCIDENTS = (
    ("unit_change", 1), ("unit_change", 1), ("offset_shift", 1), ("offset_shift", 1),
    ("stuck_sensor", 1), ("stuck_sensor", 1), ("zeroed_sensor", 1), ("zeroed_sensor", 1),
    ("swapped_columns", 2), ("swapped_columns", 2), ("missing_features", None), ("missing_features", None),
    ("flipped_labels", 0), ("label_noise", 0),
)
_DRAWN_CHANGES = ("concept_change", "gradual_change", "recurring_change")


def drawn_cases(seed: int, quick: bool = False) -> list[Case]:
    """Specs drawn from `seed` (see the module doc): 14 incidents, 3 real changes of a classifier,
    3 of a regressor and a 200,000-event stationary stream (30,000 if `quick`); 21 cases, 42 guard
    rows."""
    rng = random.Random(f"drawn-{seed}")
    specs = []
    for scenario, arity in _DRAWN_INCIDENTS:
        labels_only = arity == 0
        base = rng.choice([b for b, s in STREAMS.items() if not labels_only or s.task == "classification"])
        params = {"base": base, **_drawn_incident(rng, scenario, arity, STREAMS[base])}
        start = rng.randrange(5_000, 15_001, 100)
        duration = rng.choice((500, 1_000, 2_000, 4_000, 8_000))
        specs.append((base, scenario, start + duration + AFTER, {**params, "start": start, "end": start + duration}))
    for task in ("classification", "regression"):
        for scenario in _DRAWN_CHANGES:
            base = rng.choice([b for b, s in STREAMS.items() if s.concepts and s.task == task])
            start = rng.randrange(5_000, 15_001, 100)
            if scenario == "concept_change":
                n, params = start + AFTER, {"start": start}
            else:  # a ramp, or the new concept's first visit (it comes back once, as long)
                end = start + rng.choice((1_000, 3_000, 6_000) if scenario == "gradual_change" else (2_000, 3_000))
                n, params = (end if scenario == "gradual_change" else start) + AFTER, {"start": start, "end": end}
            specs.append((base, scenario, n, {"base": base, **params}))
    base = rng.choice(list(STREAMS))
    specs.append((base, "stationary", 30_000 if quick else 200_000, {"base": base}))
    return [make_case(f"{base}:{scenario}_{i}", scenario, n, seed + 5000 + i, **params)
            for i, (base, scenario, n, params) in enumerate(specs)]


def _drawn_incident(rng: random.Random, scenario: str, arity: int | None, base: Base) -> dict:
    """The feature(s) and size of one drawn incident on `base`."""
    numeric = [f for f in base.features if f not in base.nominal]
    if arity == 0:
        return {"factor": 1.0} if scenario == "flipped_labels" else {"factor": rng.choice((0.2, 0.3, 0.4))}
    if arity == 2:
        return {"feature": ",".join(rng.sample(numeric, 2))}
    if arity is None:
        return {"feature": ",".join(rng.sample(numeric, rng.randint(1, min(3, len(numeric) - 1))))}
    params = {"feature": rng.choice(numeric)}
    if scenario == "unit_change":
        params["factor"] = rng.choice((100.0, 1_000.0, 10_000.0))
    elif scenario == "offset_shift":
        params["factor"] = base.offset * rng.choice((0.5, 1.0, 3.0))
    return params
