"""The guard through the real broker: an incident, its decision everywhere an operator looks, resume.

A feature-unit incident (salary in cents: x100) arrives without labels, as incidents often do (the
labels come days later). The guard rolls back and holds learning; a restart in the middle of the
quarantine comes back in quarantine with the same candidate; when the inputs return, it resumes.
"""

from __future__ import annotations

import urllib.request

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from stream.cli import main
from stream.client import AdminClient
from stream.publish import publish
from stream.scenarios import generate
from stream.service import build_service

from .kafka_util import run_in_thread, service_config, wait_for

pytestmark = pytest.mark.broker

NORMAL, INCIDENT, AFTER = 3_000, 600, 2_000


def _events():
    stream = list(generate("unit_change", NORMAL + INCIDENT + AFTER, seed=5, start=NORMAL,
                           end=NORMAL + INCIDENT, factor=100.0))
    before = stream[:NORMAL]
    incident = [{k: v for k, v in e.items() if k != "y"} for e in stream[NORMAL:NORMAL + INCIDENT]]
    after = stream[NORMAL + INCIDENT:]
    return before, incident, after


def _metric(url: str, name: str, **labels) -> float:
    text = urllib.request.urlopen(f"{url}/metrics").read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def test_a_unit_incident_rolls_back_survives_a_restart_and_resumes(broker, topic_name, tmp_path):
    before, incident, after = _events()
    config = service_config(broker, tmp_path, topic_name, snapshots={"every_events": 250})
    publish(broker.bootstrap, topic_name, before + incident, progress=False)

    # 1. The incident: a rollback, then quarantine (no labels to decide).
    service = build_service(config)
    status = service.run(max_events=NORMAL + INCIDENT)
    assert status["mode"] == "quarantine"
    rollback = status["last_decision"]
    assert (rollback["action"], rollback["trigger"]) == ("rollback", "auto")
    alarm = rollback["evidence"]["alarm"]
    assert alarm["detector"] == "data:salary" and alarm["value"] > alarm["threshold"]
    assert NORMAL <= rollback["at"] <= NORMAL + 200, "detected within 200 events"
    assert abs(rollback["evidence"]["onset"] - NORMAL) <= 10
    restored = rollback["restore"]
    assert rollback["evidence"]["snapshots"]["restored"] == restored
    learned_before_incident = status["learned"]
    assert learned_before_incident == NORMAL, "nothing of the incident was learned"
    candidate = service.loop.shadow["candidate"]
    probes = [e["x"] for e in generate("stationary", 50, seed=77)]
    candidate_answers = [candidate.predict_proba_one(x) for x in probes]

    # 2. A restart in the middle of the quarantine comes back in quarantine with the same candidate.
    service = build_service(config)
    assert service.loop.guard.mode.value == "quarantine"
    assert service.loop.guard.quarantine.restored == restored
    assert [service.loop.shadow["candidate"].predict_proba_one(x) for x in probes] == candidate_answers
    assert set(service.loop.shadow) == {"candidate", "fresh"}  # the fresh challenger is in the snapshot too

    # 3. The feed is fixed and labels flow again: the guard resumes learning by itself.
    publish(broker.bootstrap, topic_name, after, progress=False)
    thread, stop, result = run_in_thread(service)
    try:
        wait_for(lambda: service.loop.status.get("events") == NORMAL + INCIDENT + AFTER, what="all events")
        url = service.admin.url
        client = AdminClient(url, "test-token")
        status = client.get("/api/status")
        assert status["mode"] == "learning"
        assert status["learned"] > learned_before_incident
        journal = client.get("/api/decisions")["decisions"]
        assert [d["action"] for d in journal][::-1][:2] == ["rollback", "resume"]
        resume = journal[0]
        assert resume["trigger"] == "auto" and resume["target"] == "learning"
        # labels flow again and the inputs are back: the evidence says the incident is over
        assert resume["reason"].startswith("incident over: the restored model's error is back to its pre-alarm level")

        shown = CliRunner().invoke(main, ["decisions", "--url", url, "--token", "test-token"])
        assert shown.exit_code == 0, shown.output
        assert "rollback auto" in shown.output and "data:salary alarm" in shown.output
        assert f"restored={restored}" in shown.output

        assert _metric(url, "riverguard_guard_state", riverguard_guard_state="learning") == 1
        # Counters of this process: the resume happened here; the rollback before the restart.
        assert _metric(url, "riverguard_guard_decisions_total", action="resume") == 1
    finally:
        stop.set()
        thread.join(30)


def test_alarm_and_rollback_metrics_count_the_incident(broker, topic_name, tmp_path):
    before, incident, _ = _events()
    publish(broker.bootstrap, topic_name, before + incident, progress=False)
    service = build_service(service_config(broker, tmp_path, topic_name, snapshots={"every_events": 250}))
    thread, stop, _ = run_in_thread(service)
    try:
        wait_for(lambda: service.loop.status.get("events") == NORMAL + INCIDENT, what="all events")
        url = service.admin.url
        assert _metric(url, "riverguard_rollbacks_total", trigger="auto") == 1
        assert _metric(url, "riverguard_guard_decisions_total", action="rollback") == 1
        assert _metric(url, "riverguard_drift_alarms_total", detector="data:salary", kind="data") >= 1
        assert _metric(url, "riverguard_guard_state", riverguard_guard_state="quarantine") == 1
        assert _metric(url, "riverguard_snapshots_total", reason="rollback") == 1
        assert _metric(url, "riverguard_snapshots_total", reason="pre-rollback") == 1
    finally:
        stop.set()
        thread.join(30)
