"""Every preset, and a factory model, end to end through Kafka for classification and regression."""

from __future__ import annotations

import orjson
import pytest

from stream.models import PRESETS
from stream.publish import publish
from stream.scenarios import generate
from stream.service import build_service

from .kafka_util import consume_all, service_config

pytestmark = pytest.mark.broker

REGRESSORS = {"linear_regression", "hoeffding_tree_regressor", "adaptive_random_forest_regressor"}
CASES = [(f"preset:{name}", {"preset": name}, name in REGRESSORS) for name in sorted(PRESETS)] + [
    ("factory:classifier", {"factory": "tests.integration.factories:gaussian_classifier"}, False),
    ("factory:regressor", {"factory": "tests.integration.factories:pa_regressor"}, True),
]


@pytest.mark.parametrize("model, regression", [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_model_learns_end_to_end(broker, topic_name, tmp_path, model, regression):
    n = 1_500
    events = list(generate("regression" if regression else "stationary", n, seed=21))
    publish(broker.bootstrap, topic_name, events, progress=False)
    config = service_config(broker, tmp_path, topic_name, model=model, snapshots={"every_events": 500})

    status = build_service(config).run(max_events=n)

    assert status["learned"] == n
    prediction = orjson.loads(consume_all(broker.bootstrap, config.kafka.predictions_topic, n)[-1].value)
    if regression:
        assert status["metric"]["name"] == "mae"
        assert isinstance(prediction["y_pred"], float) and "proba" not in prediction
        targets = [e["y"] for e in events]
        mean = sum(targets) / n
        baseline = sum(abs(y - mean) for y in targets) / n
        assert status["metric"]["rolling"] < baseline, "the model beats predicting the mean"
    else:
        assert status["metric"]["name"] == "accuracy"
        assert set(prediction["proba"]) >= {str(prediction["y_pred"]).lower()}
        majority = max(sum(e["y"] == c for e in events) for c in {e["y"] for e in events}) / n
        assert status["metric"]["rolling"] > majority, "the model beats the majority class"
