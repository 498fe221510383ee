"""The base streams scenarios are built on: River's synthetic generators, one concept or two.

A base names its features (Agrawal's own names; ``x0``, ``x1``, ... for the others), says which
are category codes, and for a real change gives the pair of concepts it switches between, drawing
identical features for the same seed under both. `stream/scenarios.py` adds the incidents.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Callable

from river.datasets import synth

# Agrawal classification functions: 6 is nearly linear (a logistic regression reaches ~0.93);
# 5 shares only ~55% of 6's labels yet is learnable again (~0.78), which makes a clear real change.
CONCEPTS = (6, 5)
_AGRAWAL_FEATURES = ("salary", "commission", "age", "elevel", "car", "zipcode", "hvalue", "hyears", "loan")
# Nominal integer codes: as strings they say "category", not "amount".
NOMINAL_PREFIX = {"car": "car-", "zipcode": "zip-"}
_FRIEDMAN_FEATURES = tuple(f"x{i}" for i in range(10))


def _names(keys) -> tuple[str, ...]:
    return tuple(f"x{k}" for k in keys)


@dataclass(frozen=True)
class Base:
    """A River generator as a base stream: `make(seed, concept)` builds it for one concept.

    `concepts` is the (old, new) pair a real change switches between (None: the base has one
    concept only); both draw identical features for the same seed, so only the labels differ.
    `nominal` features are category codes (no arithmetic incidents); `offset` is the default
    ``offset_shift``, about the features' range.
    """

    description: str
    task: str
    features: tuple[str, ...]
    make: Callable[[int, object], object]
    concepts: tuple | None = None
    nominal: frozenset = frozenset()
    offset: float = 1.0

    def default_feature(self, arity: int | None):
        numeric = [f for f in self.features if f not in self.nominal]
        if arity == 1:
            return numeric[0]
        return tuple(numeric[:2]) if arity == 2 or len(numeric) > 2 else tuple(numeric[:1])


STREAMS: dict[str, Base] = {
    "agrawal": Base(
        "Agrawal loan approval, functions 6 -> 5 (classification)", "classification", _AGRAWAL_FEATURES,
        lambda seed, c: synth.Agrawal(classification_function=c, seed=seed), CONCEPTS,
        frozenset(NOMINAL_PREFIX), offset=50000.0,
    ),
    "friedman": Base(
        "Friedman #1; FriedmanDrift's global change (the features swap roles) as the new concept",
        "regression", _FRIEDMAN_FEATURES,
        # FriedmanDrift draws exactly as Friedman does; position (0, max) means "always drifted".
        lambda seed, c: synth.Friedman(seed=seed) if c == 0
        else synth.FriedmanDrift(drift_type="gra", position=(0, sys.maxsize), seed=seed),
        (0, 1),
    ),
    "sea": Base(
        "SEA, thresholds 7 -> 9.5 (variants 2 -> 3; ~20% of labels differ)", "classification", _names(range(3)),
        lambda seed, c: synth.SEA(variant=c, seed=seed), (2, 3), offset=10.0,
    ),
    "hyperplane": Base(
        "rotating Hyperplane without rotation, 10 features, 5% label noise", "classification", _names(range(10)),
        lambda seed, c: synth.Hyperplane(seed=seed, n_features=10, mag_change=0.0),
    ),
    "rbf": Base(
        "RandomRBF, 10 features, 50 centroids", "classification", _names(range(10)),
        lambda seed, c: synth.RandomRBF(seed_model=seed, seed_sample=seed, n_features=10),
    ),
    "sine": Base(
        "Sine, SINE1 -> SINE2 (functions 0 -> 2; ~27% of labels differ)", "classification", _names(range(2)),
        lambda seed, c: synth.Sine(classification_function=c, seed=seed), (0, 2),
    ),
    "mixed": Base(
        "Mixed (two boolean, two numeric features), function 0 -> its reversal 1", "classification",
        _names(range(4)), lambda seed, c: synth.Mixed(classification_function=c, seed=seed), (0, 1),
        frozenset({"x0", "x1"}),
    ),
    "planes2d": Base(
        "Planes2D (10 features in {-1, 0, 1}; regression)", "regression", _names(range(1, 11)),
        lambda seed, c: synth.Planes2D(seed=seed),
    ),
    "mv": Base(
        "Mv (numeric and categorical features; regression)", "regression", _names(range(1, 11)),
        lambda seed, c: synth.Mv(seed=seed), nominal=frozenset({"x3", "x7", "x8"}), offset=10.0,
    ),
}
BASES: dict[str, str] = {name: b.description for name, b in STREAMS.items()}
