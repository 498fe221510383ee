"""Models: named presets or a user factory, each an incremental River estimator.

>>> model = build_model(preset="logistic_regression")
>>> is_classifier(model)
True
>>> is_classifier(build_model(preset="linear_regression"))
False
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from river import base, compose, forest, linear_model, naive_bayes, tree

from stream.errors import ModelError
from stream.features import Prepare


# Linear models and Gaussian NB take numbers only: `Prepare` scales numbers and one-hot encodes
# strings (the scaler is a standard scaler, as DESIGN.md asks). Trees split on strings natively,
# except River's regression trees, which get the encoding without scaling.


def _logistic_regression(seed: int):
    return compose.Pipeline(Prepare(scale=True), linear_model.LogisticRegression())


def _linear_regression(seed: int):
    return compose.Pipeline(Prepare(scale=True), linear_model.LinearRegression())


def _hoeffding_tree(seed: int):
    return tree.HoeffdingTreeClassifier()


def _hoeffding_tree_regressor(seed: int):
    return compose.Pipeline(Prepare(scale=False), tree.HoeffdingTreeRegressor())


def _adaptive_random_forest(seed: int):
    return forest.ARFClassifier(n_models=10, seed=seed)


def _adaptive_random_forest_regressor(seed: int):
    return compose.Pipeline(Prepare(scale=False), forest.ARFRegressor(n_models=10, seed=seed))


def _gaussian_nb(seed: int):
    return compose.Pipeline(Prepare(scale=False), naive_bayes.GaussianNB())


PRESETS: dict[str, Callable[[int], Any]] = {
    "logistic_regression": _logistic_regression,
    "linear_regression": _linear_regression,
    "hoeffding_tree": _hoeffding_tree,
    "hoeffding_tree_regressor": _hoeffding_tree_regressor,
    "adaptive_random_forest": _adaptive_random_forest,
    "adaptive_random_forest_regressor": _adaptive_random_forest_regressor,
    "gaussian_nb": _gaussian_nb,
}


def build_model(*, preset: str | None = None, factory: str | None = None, seed: int = 42):
    """Build a fresh model from a preset name or a `"package.module:callable"` factory."""
    if factory is not None:
        model = _call_factory(factory)
    else:
        name = preset or "logistic_regression"
        if name not in PRESETS:
            raise ModelError(f"unknown model preset {name!r}; known: {', '.join(sorted(PRESETS))}")
        model = PRESETS[name](seed)
    if not (hasattr(model, "learn_one") and hasattr(model, "predict_one")):
        raise ModelError(f"{factory or preset!r} did not return a River model (no learn_one/predict_one)")
    return model


def build_from_config(model_config):
    return build_model(preset=model_config.preset, factory=model_config.factory, seed=model_config.seed)


def _call_factory(factory: str):
    module_name, sep, attr = factory.partition(":")
    if not sep or not module_name or not attr:
        raise ModelError(f"factory must look like 'package.module:callable', got {factory!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelError(f"factory {factory!r}: cannot import {module_name!r}: {exc}") from None
    except Exception as exc:  # a module that does not compile or fails at import
        raise ModelError(f"factory {factory!r}: importing {module_name!r} failed: {exc!r}") from None
    build = getattr(module, attr, None)
    if not callable(build):
        raise ModelError(f"factory {factory!r}: {module_name} has no callable {attr!r}")
    try:
        return build()
    except Exception as exc:
        raise ModelError(f"factory {factory!r} raised {exc!r}") from None


def is_classifier(model) -> bool:
    # A Pipeline is a Classifier exactly when its last step is one.
    return isinstance(model, base.Classifier)


def scales_inputs(model) -> bool:
    """Does `model` standard-scale its numbers (`Prepare(scale=True)` in its pipeline)? Its scaler
    divides by each feature's spread, and a feature constant so far has none."""
    steps = model.steps.values() if isinstance(model, compose.Pipeline) else [model]
    return any(isinstance(step, Prepare) and step.scale for step in steps)
