"""Models: every preset learns its task, factories load user models, and every model survives a
snapshot round trip with *identical* predictions afterwards (stronger than River's own check)."""

from __future__ import annotations

import pickle
import random
import sys
import textwrap

import pytest

from stream.config import ModelConfig
from stream.errors import ModelError
from stream.models import PRESETS, build_from_config, build_model, is_classifier, scales_inputs
from stream.snapshots import SnapshotStore

REGRESSION_PRESETS = {"linear_regression", "hoeffding_tree_regressor", "adaptive_random_forest_regressor"}
DESIGN_PRESETS = {
    "logistic_regression", "linear_regression", "hoeffding_tree",
    "hoeffding_tree_regressor", "adaptive_random_forest", "gaussian_nb",
}


def synthetic(n: int, classifier: bool, seed: int = 7) -> list[tuple[dict, object]]:
    """A learnable stream: y depends on x1, x2, x3 (x3 on a different scale, as real data would)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        x = {"x1": rng.gauss(0, 1), "x2": rng.uniform(-2, 2), "x3": rng.random() * 100}
        if classifier:
            y = x["x1"] + 0.5 * x["x2"] + 0.01 * x["x3"] > 0.5
        else:
            y = 3 * x["x1"] - x["x2"] + 0.05 * x["x3"] + rng.gauss(0, 0.1)
        rows.append((x, y))
    return rows


def expected_classifier(preset: str) -> bool:
    return preset not in REGRESSION_PRESETS


def test_presets_include_those_the_design_promises():
    assert DESIGN_PRESETS <= set(PRESETS)


# -- every preset learns its task --------------------------------------------------------------


@pytest.mark.parametrize("preset", sorted(p for p in PRESETS if expected_classifier(p)))
def test_classification_presets_classify(preset):
    model = build_model(preset=preset)
    assert is_classifier(model)
    rows = synthetic(600, classifier=True)
    for x, y in rows[:300]:
        model.predict_one(x)
        model.learn_one(x, y)

    correct = 0
    for x, y in rows[300:]:
        y_pred = model.predict_one(x)
        proba = model.predict_proba_one(x)
        assert y_pred in (True, False)
        assert sum(proba.values()) == pytest.approx(1.0)
        correct += y_pred == y
        model.learn_one(x, y)

    positives = sum(y for _, y in rows[300:])
    majority = max(positives, 300 - positives) / 300
    assert correct / 300 > majority + 0.1


@pytest.mark.parametrize("preset", sorted(REGRESSION_PRESETS))
def test_regression_presets_regress(preset):
    model = build_model(preset=preset)
    assert not is_classifier(model)
    rows = synthetic(600, classifier=False)
    for x, y in rows[:300]:
        model.predict_one(x)
        model.learn_one(x, y)

    mean = sum(y for _, y in rows[:300]) / 300
    error = baseline = 0.0
    for x, y in rows[300:]:
        y_pred = model.predict_one(x)
        assert isinstance(y_pred, float)
        error += abs(y_pred - y)
        baseline += abs(mean - y)
        model.learn_one(x, y)

    assert error < 0.9 * baseline  # beats predicting the mean


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_an_untrained_model_predicts_without_raising(preset):
    model = build_model(preset=preset)

    model.predict_one({"x1": 0.0})
    if is_classifier(model):
        model.predict_proba_one({"x1": 0.0})


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_learns_the_design_example_with_a_string_feature(preset):
    model = build_model(preset=preset)
    rng = random.Random(3)
    for _ in range(50):
        x = {"amount": rng.random() * 20, "country": rng.choice(["NL", "DE"])}
        y = x["amount"] > 10 if is_classifier(model) else 2 * x["amount"]
        model.predict_one(x)
        model.learn_one(x, y)


def test_build_from_config_uses_preset_and_seed():
    model = build_from_config(ModelConfig(preset="gaussian_nb"))

    assert type(list(model.steps.values())[-1]).__name__ == "GaussianNB"
    assert is_classifier(build_from_config(ModelConfig()))  # default: logistic_regression


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ModelError) as err:
        build_model(preset="logistic_regresion")
    message = str(err.value)
    assert "logistic_regresion" in message
    for name in PRESETS:
        assert name in message


# -- user factories ----------------------------------------------------------------------------

FACTORY_MODULE = "rg_test_factory"


@pytest.fixture
def factory_module(tmp_path, monkeypatch):
    (tmp_path / f"{FACTORY_MODULE}.py").write_text(textwrap.dedent("""
        from river import linear_model, preprocessing, tree

        NOT_CALLABLE = 3

        def build():
            return preprocessing.StandardScaler() | linear_model.PARegressor()

        def build_tree():
            return tree.HoeffdingTreeClassifier(grace_period=50)

        def not_a_model():
            return object()

        def broken():
            raise RuntimeError("the factory's own bug")
    """))
    (tmp_path / "rg_test_syntax_error.py").write_text("def build(:\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in (FACTORY_MODULE, "rg_test_syntax_error"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    return FACTORY_MODULE


def test_factory_builds_the_users_model(factory_module):
    regressor = build_model(factory=f"{factory_module}:build")
    classifier = build_from_config(ModelConfig(factory=f"{factory_module}:build_tree"))

    assert not is_classifier(regressor)
    assert is_classifier(classifier)
    regressor.learn_one({"a": 1.0}, 2.0)
    assert isinstance(regressor.predict_one({"a": 1.0}), float)


def test_factory_wins_over_the_default_preset(factory_module):
    model = build_model(factory=f"{factory_module}:build_tree")

    assert type(model).__name__ == "HoeffdingTreeClassifier"


@pytest.mark.parametrize(
    ("factory", "expected"),
    [
        ("no_colon_here", "package.module:callable"),
        (":build", "package.module:callable"),
        (f"{FACTORY_MODULE}:", "package.module:callable"),
        ("rg_no_such_module_xyz:build", "cannot import 'rg_no_such_module_xyz'"),
        (f"{FACTORY_MODULE}:missing", "no callable 'missing'"),
        (f"{FACTORY_MODULE}:NOT_CALLABLE", "no callable 'NOT_CALLABLE'"),
        (f"{FACTORY_MODULE}:not_a_model", "did not return a River model"),
    ],
)
def test_bad_factories_are_model_errors_with_a_clear_message(factory_module, factory, expected):
    with pytest.raises(ModelError) as err:
        build_model(factory=factory)
    assert expected in str(err.value)
    assert factory in str(err.value)
    assert err.value.exit_code == 2


def test_a_factory_that_raises_is_a_model_error(factory_module):
    with pytest.raises(ModelError, match=f"{factory_module}:broken"):
        build_model(factory=f"{factory_module}:broken")


def test_a_factory_module_that_does_not_compile_is_a_model_error(factory_module):
    with pytest.raises(ModelError, match="rg_test_syntax_error"):
        build_model(factory="rg_test_syntax_error:build")


# -- snapshot round-trip check suite -----------------------------------------------------------


def _step(model, x, y, classifier: bool):
    """Predict, then learn: what the loop does. Returns what was predicted."""
    out = (model.predict_one(x), model.predict_proba_one(x) if classifier else None)
    model.learn_one(x, y)
    return out


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_snapshot_round_trip_gives_identical_predictions_afterwards(preset, tmp_path):
    model = build_model(preset=preset, seed=11)
    classifier = is_classifier(model)
    rows = synthetic(600, classifier=classifier, seed=5)
    for x, y in rows[:300]:
        _step(model, x, y, classifier)

    pickled = pickle.loads(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    store = SnapshotStore(tmp_path, key=b"check-suite")
    meta = store.write({"model": model}, reason="manual", events=300, model_spec=preset)
    from_store = store.load(meta.id).state["model"]
    assert pickled is not model and from_store is not model

    for step, (x, y) in enumerate(rows[300:], start=300):
        original = _step(model, x, y, classifier)
        assert _step(pickled, x, y, classifier) == original, f"{preset}: pickle diverged at event {step}"
        assert _step(from_store, x, y, classifier) == original, f"{preset}: snapshot diverged at event {step}"


def test_only_the_presets_that_standard_scale_their_inputs_say_so():
    # The guard holds out a constant feature's first moving values only from such a model: its
    # scaler would take a spread of almost nothing from them (a tree has no scaler).
    scaled = {name: scales_inputs(build_model(preset=name)) for name in PRESETS}
    assert scaled == {name: name in ("logistic_regression", "linear_regression") for name in PRESETS}
