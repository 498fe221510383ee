"""Synthetic scenarios: deterministic, well-formed events, and incidents exactly where described."""

from __future__ import annotations

import math

import orjson
import pytest

from stream.scenarios import (
    BASE_TS,
    BASES,
    CHANGE_KINDS,
    INCIDENT_KINDS,
    SCENARIOS,
    TS_STEP,
    Incident,
    describe,
    generate,
    task,
)

N = 500


def events(name: str, n: int = N, seed: int = 42, **params) -> list[dict]:
    return list(generate(name, n, seed, **params))


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_scenario_yields_valid_unique_events(name):
    stream = events(name)
    assert len(stream) == N
    assert len({e["id"] for e in stream}) == N
    for i, event in enumerate(stream):
        assert event["id"] == f"e-{i:07d}"
        assert event["ts"] == pytest.approx(BASE_TS + i * TS_STEP)
        assert all(isinstance(k, str) for k in event["x"])
        assert all(isinstance(v, (float, str, bool)) for v in event["x"].values())
        assert all(math.isfinite(v) for v in event["x"].values() if isinstance(v, float))
        expected_y = float if task(name) == "regression" else int
        assert type(event["y"]) is expected_y
    # Events must survive the wire format unchanged.
    assert orjson.loads(orjson.dumps(stream[0])) == stream[0]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_same_seed_same_stream_other_seed_other_stream(name):
    assert events(name, 200, seed=3) == events(name, 200, seed=3)
    assert events(name, 200, seed=3) != events(name, 200, seed=4)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_incident_kinds_are_catalogued(name):
    for incident in describe(name, N):
        assert incident.kind in INCIDENT_KINDS
        assert 0 <= incident.start <= incident.end <= N


def test_unit_change_multiplies_only_inside_the_window():
    plain, changed = events("stationary"), events("unit_change")
    (incident,) = describe("unit_change", N)
    assert (incident.start, incident.end, incident.feature, incident.factor) == (200, 300, "salary", 1000.0)
    for i, (a, b) in enumerate(zip(plain, changed)):
        if incident.covers(i):
            assert b["x"]["salary"] == pytest.approx(a["x"]["salary"] * 1000)
            assert {k: v for k, v in b["x"].items() if k != "salary"} == {
                k: v for k, v in a["x"].items() if k != "salary"
            }
            assert b["y"] == a["y"]
        else:
            assert a == b


def test_unit_change_is_parametrisable():
    (incident,) = describe("unit_change", N, start=10, end=20, feature="loan", factor=100)
    assert incident == Incident("unit_change", 10, 20, "loan", 100.0)
    plain, changed = events("stationary"), events("unit_change", start=10, end=20, feature="loan", factor=100)
    assert changed[10]["x"]["loan"] == pytest.approx(plain[10]["x"]["loan"] * 100)
    assert changed[20] == plain[20] and changed[9] == plain[9]


def test_flipped_labels_flip_every_label_in_the_window_only():
    plain, flipped = events("stationary"), events("flipped_labels", start=100, end=150)
    for i, (a, b) in enumerate(zip(plain, flipped)):
        assert a["x"] == b["x"]
        assert b["y"] == (1 - a["y"] if 100 <= i < 150 else a["y"])


def test_label_noise_flips_about_its_share():
    plain, noisy = events("stationary", 2000), events("label_noise", 2000, start=0, end=2000)
    share = sum(a["y"] != b["y"] for a, b in zip(plain, noisy)) / 2000
    assert 0.25 < share < 0.35


def test_concept_change_keeps_features_and_changes_labels_after_the_middle():
    plain, changed = events("stationary", 2000), events("concept_change", 2000)
    assert describe("concept_change", 2000) == (Incident("abrupt_change", 1000, 2000),)
    assert all(a["x"] == b["x"] for a, b in zip(plain, changed))
    assert all(a["y"] == b["y"] for a, b in zip(plain[:1000], changed[:1000]))
    disagreement = sum(a["y"] != b["y"] for a, b in zip(plain[1000:], changed[1000:])) / 1000
    # A real change, not label noise: the new concept disagrees on a large share of events.
    assert disagreement > 0.3


def test_gradual_change_ramps_up():
    plain, changed = events("stationary", 3000), events("gradual_change", 3000, start=1000, end=2000)

    def disagreement(lo, hi):
        return sum(plain[i]["y"] != changed[i]["y"] for i in range(lo, hi)) / (hi - lo)

    assert disagreement(0, 1000) == 0
    assert disagreement(1000, 1250) < disagreement(1750, 2000) < disagreement(2000, 3000) + 0.1


def test_recurring_change_comes_back():
    first, second = describe("recurring_change", 1000)
    assert (first.start, first.end, second.start, second.end) == (200, 400, 600, 800)
    plain, changed = events("stationary", 1000), events("recurring_change", 1000)
    same = [a["y"] == b["y"] for a, b in zip(plain, changed)]
    assert all(same[:200]) and all(same[400:600]) and all(same[800:])
    assert not all(same[200:400]) and not all(same[600:800])


def test_feature_incidents():
    plain = events("stationary")
    stuck = events("stuck_sensor", feature="loan")
    assert {e["x"]["loan"] for e in stuck[200:300]} == {plain[200]["x"]["loan"]}
    zeroed = events("zeroed_sensor", feature="commission")
    assert all(e["x"]["commission"] == 0.0 for e in zeroed[200:300])
    shifted = events("offset_shift", factor=5.0)
    assert shifted[250]["x"]["salary"] == pytest.approx(plain[250]["x"]["salary"] + 5.0)
    missing = events("missing_features", feature="loan,hvalue")
    assert "loan" not in missing[250]["x"] and "hvalue" not in missing[250]["x"]
    assert "loan" in missing[300]["x"]
    swapped = events("swapped_columns")
    assert swapped[250]["x"]["salary"] == plain[250]["x"]["loan"]
    assert swapped[250]["x"]["loan"] == plain[250]["x"]["salary"]


def test_regression_unit_change():
    (incident,) = describe("regression_unit_change", N)
    assert (incident.feature, incident.factor, incident.start, incident.end) == ("x0", 1000.0, 200, 300)
    plain, changed = events("regression"), events("regression_unit_change")
    assert changed[200]["x"]["x0"] == pytest.approx(plain[200]["x"]["x0"] * 1000)
    assert changed[200]["y"] == plain[200]["y"]


def test_demo_has_a_unit_change_incident():
    (incident,) = describe("demo", 10_000)
    assert incident.kind == "unit_change" and incident.start < incident.end
    assert task("demo") == "classification"


def test_string_categoricals():
    event = events("stationary", 1, categoricals="string")[0]
    assert event["x"]["car"].startswith("car-") and event["x"]["zipcode"].startswith("zip-")
    assert isinstance(event["x"]["salary"], float)


@pytest.mark.parametrize(
    "name, params, error, words",
    [
        ("nope", {}, ValueError, "unknown scenario 'nope'"),
        ("unit_change", {"colour": 1}, TypeError, "colour"),
        ("unit_change", {"start": 300, "end": 200}, ValueError, "start=300, end=200"),
        ("unit_change", {"end": N + 1}, ValueError, "<= n=500"),
        ("unit_change", {"feature": "height"}, ValueError, "unknown feature 'height'"),
        ("unit_change", {"feature": "car"}, ValueError, "category"),
        ("unit_change", {"factor": "big"}, TypeError, "factor must be a number"),
        ("swapped_columns", {"feature": "salary"}, ValueError, "two different features"),
        ("flipped_labels", {"feature": "salary"}, TypeError, "no feature"),
        ("label_noise", {"factor": 2.0}, ValueError, "0..1"),
        ("concept_change", {"factor": 2.0}, TypeError, "no feature or factor"),
        ("regression", {"categoricals": "string"}, TypeError, "categoricals"),
        ("stationary", {"categoricals": "words"}, ValueError, "'number' or 'string'"),
        ("unit_change", {"base": "nope"}, ValueError, "unknown base 'nope'"),
        ("concept_change", {"base": "hyperplane"}, ValueError, "one concept only"),
        ("flipped_labels", {"base": "planes2d"}, ValueError, "regression"),
        ("unit_change", {"base": "sea", "feature": "salary"}, ValueError, "unknown feature 'salary'"),
        ("unit_change", {"base": "mixed", "feature": "x0"}, ValueError, "category"),
        ("offset_shift", {"base": "mv", "feature": "x3"}, ValueError, "category"),
        ("unit_change", {"base": "sea", "categoricals": "string"}, TypeError, "categoricals"),
    ],
)
def test_bad_parameters_are_named(name, params, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(").replace("*", r"\*")):
        list(generate(name, N, **params))


def test_change_kinds_are_incident_kinds():
    assert CHANGE_KINDS <= set(INCIDENT_KINDS)


# -- other base streams (hold-out benchmarks) -----------------------------------------------------


def plain_name(base: str) -> str:
    return "stationary" if task("stationary", base) == "classification" else "regression"


@pytest.mark.parametrize("base", sorted(BASES))
def test_every_base_yields_valid_deterministic_events(base):
    stream = events(plain_name(base), 300, seed=5, base=base)
    expected_y = int if task("stationary", base) == "classification" else float
    for event in stream:
        assert event["x"] and all(isinstance(k, str) for k in event["x"])
        assert all(isinstance(v, (float, str)) for v in event["x"].values())
        assert all(math.isfinite(v) for v in event["x"].values() if isinstance(v, float))
        assert type(event["y"]) is expected_y
    assert orjson.loads(orjson.dumps(stream[0])) == stream[0]
    assert stream == events(plain_name(base), 300, seed=5, base=base)
    assert stream != events(plain_name(base), 300, seed=6, base=base)
    if expected_y is int:
        assert {e["y"] for e in stream} == {0, 1}


def test_the_usual_base_is_the_default():
    assert events("unit_change", base="agrawal") == events("unit_change")
    assert events("regression_unit_change", base="friedman") == events("regression_unit_change")
    assert events("regression") == events("stationary", base="friedman")


@pytest.mark.parametrize("base", ["sea", "sine", "mixed", "friedman"])
def test_concept_change_on_other_bases_changes_labels_only(base):
    plain = events(plain_name(base), 2000, seed=9, base=base)
    changed = events("concept_change", 2000, seed=9, base=base, start=1000)
    assert all(a["x"] == b["x"] for a, b in zip(plain, changed))
    assert all(a["y"] == b["y"] for a, b in zip(plain[:1000], changed[:1000]))
    disagreement = sum(a["y"] != b["y"] for a, b in zip(plain[1000:], changed[1000:])) / 1000
    assert disagreement > 0.15


def test_regression_concept_changes():
    plain = events("regression", 2000)
    (abrupt,) = describe("regression_concept_change", 2000)
    assert (abrupt.kind, abrupt.start, abrupt.end) == ("abrupt_change", 1000, 2000)
    changed = events("regression_concept_change", 2000)
    assert all(a["x"] == b["x"] for a, b in zip(plain, changed))
    assert all(a["y"] == b["y"] for a, b in zip(plain[:1000], changed[:1000]))
    assert all(a["y"] != b["y"] for a, b in zip(plain[1000:], changed[1000:]))
    gradual = events("regression_gradual_change", 2000)
    moved = [a["y"] != b["y"] for a, b in zip(plain, gradual)]
    assert not any(moved[:800]) and sum(moved[800:900]) < sum(moved[1100:1200]) and all(moved[1200:])


def test_other_bases_default_to_their_own_columns_and_scales():
    (inc,) = describe("offset_shift", N, base="sea")
    assert (inc.feature, inc.factor) == ("x0", 10.0)
    assert describe("missing_features", N, base="hyperplane")[0].feature == ("x0", "x1")
    assert describe("missing_features", N, base="sine")[0].feature == ("x0",)
    assert describe("unit_change", N, base="mixed")[0].feature == "x2"  # x0, x1 are booleans
    assert describe("stuck_sensor", N, base="mv")[0].feature == "x1"
    plain, changed = events("stationary", base="rbf"), events("unit_change", base="rbf", feature="x3", factor=100)
    assert changed[250]["x"]["x3"] == pytest.approx(plain[250]["x"]["x3"] * 100)
    assert changed[300] == plain[300]
    assert task("unit_change", base="planes2d") == "regression"
    assert task("regression_unit_change", base="sea") == "classification"
