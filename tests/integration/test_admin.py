"""The admin API of a running service: token rules, snapshot on demand, metrics that match status."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from stream.client import AdminClient
from stream.errors import AdminError
from stream.publish import publish
from stream.scenarios import generate
from stream.service import build_service

from .kafka_util import run_in_thread, service_config, wait_for

pytestmark = pytest.mark.broker


@pytest.fixture
def running(broker, topic_name, tmp_path):
    events = list(generate("stationary", 2_000, seed=8)) + [b"{broken"] * 5
    publish(broker.bootstrap, topic_name, events, progress=False)
    service = build_service(service_config(broker, tmp_path, topic_name))
    thread, stop, _ = run_in_thread(service)
    wait_for(lambda: service.loop.status.get("events") == 2_005, what="all events")
    yield service
    stop.set()
    thread.join(30)


def _samples(text: str) -> dict:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_reads_and_mutations_need_the_token(running):
    url = running.admin.url
    assert running.admin.host == "127.0.0.1"
    for client in (AdminClient(url), AdminClient(url, "wrong")):
        for method, path in (("get", "/api/status"), ("get", "/api/snapshots"), ("post", "/api/snapshot")):
            with pytest.raises(AdminError, match="401"):
                getattr(client, method)(path)
    import urllib.request

    assert urllib.request.urlopen(f"{url}/healthz").read() == b"ok"
    assert urllib.request.urlopen(f"{url}/readyz").read() == b"ready"


def test_snapshot_now_writes_a_manual_snapshot_listed_by_the_api(running):
    client = AdminClient(running.admin.url, "test-token")
    made = client.post("/api/snapshot")
    assert made["reason"] == "manual" and made["events"] == 2_005
    listed = client.get("/api/snapshots")["snapshots"]
    assert listed[0]["id"] == made["id"] and listed[0]["valid"] is True
    assert client.get("/api/status")["last_snapshot"]["id"] == made["id"]


def test_metrics_agree_with_status(running):
    import urllib.request

    status = AdminClient(running.admin.url, "test-token").get("/api/status")
    samples = _samples(urllib.request.urlopen(f"{running.admin.url}/metrics").read().decode())
    assert samples[("riverguard_events_total", (("outcome", "processed"),))] == 2_000
    assert samples[("riverguard_events_total", (("outcome", "invalid"),))] == 5
    assert samples[("riverguard_invalid_events_total", (("reason", "not_json"),))] == 5
    assert samples[("riverguard_predictions_total", ())] == status["predictions"] == 2_000
    assert samples[("riverguard_learn_steps_total", ())] == status["learned"] == 2_000
    assert samples[("riverguard_stand_in_predictions_total", ())] == status["stood_in"] == 0
    assert samples[("riverguard_predict_duration_seconds_count", ())] == 2_000
    assert samples[("riverguard_learn_duration_seconds_count", ())] == 2_000
    assert samples[("riverguard_guard_state", (("riverguard_guard_state", "learning"),))] == 1
    live = samples[("riverguard_model_metric", (("metric", "accuracy"), ("model", "live")))]
    assert live == pytest.approx(status["metric"]["rolling"])
    assert ("riverguard_consumer_lag_messages", (("partition", "0"), ("topic", running.config.kafka.topic))) in samples
    assert samples[("riverguard_snapshot_last_timestamp_seconds", ())] > 0
    assert ("riverguard_end_to_end_lag_seconds_count", ()) in samples
    assert ("riverguard_pending_labels", ()) in samples
