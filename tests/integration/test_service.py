"""The service against the real embedded broker: predictions out, delayed labels, dead letters."""

from __future__ import annotations

import orjson
import pytest

from stream.publish import publish
from stream.scenarios import generate
from stream.service import build_service

from .kafka_util import consume_all, prediction_ids, run_in_thread, service_config, wait_for

pytestmark = pytest.mark.broker


def test_every_event_gets_one_prediction_with_its_id(broker, topic_name, tmp_path):
    events = list(generate("stationary", 10_000, seed=3))
    publish(broker.bootstrap, topic_name, events, progress=False)
    config = service_config(broker, tmp_path, topic_name)

    status = build_service(config).run(max_events=10_000)

    predictions = consume_all(broker.bootstrap, config.kafka.predictions_topic, 10_000)
    assert sorted(prediction_ids(predictions)) == sorted(e["id"] for e in events)
    assert status["predictions"] == status["learned"] == status["labeled"] == 10_000
    first = orjson.loads(predictions[0].value)
    assert set(first) == {"id", "y_pred", "proba", "model", "mode", "ts"}
    assert first["mode"] == "learning"


def test_delayed_labels_on_a_labels_topic_are_joined_and_learned(broker, topic_name, tmp_path):
    labels_topic = f"{topic_name}.labels"
    events = list(generate("stationary", 2_000, seed=4))
    unlabeled = [{"id": e["id"], "ts": e["ts"], "x": e["x"]} for e in events]
    publish(broker.bootstrap, topic_name, unlabeled, progress=False)
    config = service_config(broker, tmp_path, topic_name, kafka={"labels_topic": labels_topic})
    service = build_service(config)
    thread, stop, result = run_in_thread(service)
    try:
        wait_for(lambda: service.loop.status.get("predictions", 0) == 2_000, what="2,000 predictions")
        assert service.loop.status["learned"] == 0
        assert service.loop.status["pending_labels"] == 2_000
        # The labels come later, as they do in life (a chargeback, a delivery confirmation).
        publish(broker.bootstrap, labels_topic, [{"id": e["id"], "y": e["y"]} for e in events], progress=False)
        wait_for(lambda: service.loop.status.get("learned", 0) == 2_000, what="2,000 learn steps")
    finally:
        stop.set()
        thread.join(30)
    status = result["status"]
    assert status["labeled"] == status["learned"] == 2_000
    assert status["pending_labels"] == 0
    assert status["invalid"] == {}


INVALID = [
    (b"{not json", "not_json"),
    (b"[1, 2, 3]", "not_object"),
    (b'{"id": "q", "ts": 1.0}', "missing_x"),
    (b'{"id": "q", "x": {"a": NaN}, "y": 1}', "non_finite"),
    (b'{"id": "q", "x": {"a": Infinity}}', "non_finite"),
    (b'{"id": "q", "x": {"a": [1, 2]}}', "bad_type"),
    (b'{"id": "q", "x": "a=1"}', "bad_type"),
    (b'{"id": "never-predicted", "y": 1}', "unknown_id"),
    (b'{"y": 1}', "missing_id"),
    (b'{"id": "q", "x": {"a": 1.0}, "pad": "' + b"z" * 70_000 + b'"}', "oversize"),
]


def test_invalid_messages_all_reach_the_dead_letter_topic_and_valid_ones_all_count(broker, topic_name, tmp_path):
    valid = list(generate("stationary", 2_000, seed=5))
    messages, expected = [], []
    for i, event in enumerate(valid):
        messages.append(orjson.dumps(event))
        if i % 4 == 0:  # 500 invalid messages interleaved with the valid ones
            raw, reason = INVALID[(i // 4) % len(INVALID)]
            messages.append(raw)
            expected.append((raw, reason, len(messages) - 1))
    publish(broker.bootstrap, topic_name, messages, progress=False)
    config = service_config(broker, tmp_path, topic_name)

    status = build_service(config).run(max_events=len(messages))

    assert len(expected) == 500
    assert status["predictions"] == status["learned"] == 2_000
    assert sum(status["invalid"].values()) == 500
    dead = consume_all(broker.bootstrap, config.kafka.dead_letter_topic, 500)
    assert len(dead) == 500
    for record, (raw, reason, offset) in zip(dead, expected):
        headers = {k: v.decode() for k, v in record.headers}
        assert record.value == raw, "the dead letter keeps the original bytes"
        assert headers["riverguard.reason"] == reason
        assert headers["riverguard.topic"] == topic_name
        assert headers["riverguard.partition"] == "0"
        assert headers["riverguard.offset"] == str(offset)
