"""Every control command through the CLI, against a running service and offline on its snapshots."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from stream.cli import main
from stream.publish import publish
from stream.scenarios import generate
from stream.service import build_service
from stream.snapshots import SnapshotStore

from ..integration.kafka_util import run_in_thread, service_config, wait_for

pytestmark = pytest.mark.broker


def cli(*args) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture
def running(broker, topic_name, tmp_path):
    publish(broker.bootstrap, topic_name, generate("stationary", 2_000, seed=9), progress=False)
    service = build_service(service_config(broker, tmp_path, topic_name, snapshots={"every_events": 500}))
    thread, stop, _ = run_in_thread(service)
    wait_for(lambda: service.loop.status.get("events") == 2_000, what="all events")
    yield service
    stop.set()
    thread.join(30)


def online(service, *args) -> tuple[int, dict | str]:
    code, out = cli(*args, "--url", service.admin.url, "--token", "test-token")
    try:
        return code, json.loads(out)
    except ValueError:
        return code, out


def test_pause_resume_rollback_and_decisions_online(running):
    code, out = online(running, "pause")
    assert code == 0 and (out["action"], out["target"]) == ("pause", "paused")
    assert online(running, "status")[1]["mode"] == "paused"
    code, out = online(running, "pause")
    assert code == 4 and "already paused" in out

    code, out = online(running, "resume")
    assert code == 0 and out["target"] == "learning"

    snaps = online(running, "status")[1]
    target = next(m.id for m, _, _ in running.runner.store.list() if m.reason == "periodic")
    code, out = online(running, "rollback", "--to", target)
    assert code == 0 and (out["action"], out["target"], out["restore"]) == ("rollback", "paused", target)
    status = online(running, "status")[1]
    assert status["mode"] == "paused" and status["events"] == snaps["events"], "a rollback never rewinds the stream"
    meta = running.runner.store.load(status["model"]).meta
    assert (meta.reason, meta.restored_from) == ("rollback", target)

    code, out = online(running, "rollback", "--last-good", "--resume")
    assert code == 0 and out["target"] == "learning" and out["trigger"] == "manual"

    code, out = online(running, "promote")
    assert code == 4 and "no candidate" in out

    code, out = online(running, "rollback", "--to", "s999999-nothere")
    assert code == 4 and "s999999-nothere" in out

    code, out = cli("decisions", "--limit", "3", "--url", running.admin.url, "--token", "test-token")
    assert code == 0
    assert "rollback manual paused -> learning" in out, "newest first"
    assert out.index("rollback manual") < out.index("resume   manual")

    code, out = cli("status", "--url", running.admin.url, "--token", "nope")
    assert code == 4 and "401" in out


def test_promote_online_makes_the_candidate_live(broker, topic_name, tmp_path):
    normal = list(generate("unit_change", 2_600, seed=3, start=2_000, end=2_600, factor=100.0))
    events = normal[:2_000] + [{k: v for k, v in e.items() if k != "y"} for e in normal[2_000:]]
    publish(broker.bootstrap, topic_name, events, progress=False)
    service = build_service(service_config(broker, tmp_path, topic_name, snapshots={"every_events": 250}))
    thread, stop, _ = run_in_thread(service)
    try:
        wait_for(lambda: service.loop.status.get("events") == 2_600, what="all events")
        assert service.loop.status["mode"] == "quarantine"
        candidate = service.loop.shadow["candidate"]
        code, out = online(service, "promote")
        assert code == 0 and (out["action"], out["source"], out["target"]) == ("promote", "quarantine", "learning")
        assert service.loop.model is candidate
        meta = service.runner.store.load(service.loop.status["model"]).meta
        assert meta.reason == "promotion"
    finally:
        stop.set()
        thread.join(30)


def test_snapshots_pin_and_offline_rollback_of_a_stopped_service(broker, topic_name, tmp_path):
    publish(broker.bootstrap, topic_name, generate("stationary", 3_000, seed=4), progress=False)
    config = service_config(broker, tmp_path, topic_name, snapshots={"every_events": 500, "keep": 3})
    build_service(config).run(max_events=3_000)
    directory = str(config.snapshots.dir)
    store = SnapshotStore(directory, b"test-key")
    periodic = [m for m, _, _ in store.list() if m.reason == "periodic"]
    target = periodic[0]

    code, out = cli("snapshots", "pin", target.id, "--dir", directory, "--key", "test-key")
    assert code == 0 and target.id in store.pins()
    newest = store.latest_valid().meta

    code, out = cli("rollback", "--to", target.id, "--dir", directory, "--key", "test-key")
    assert code == 0, out
    result = json.loads(out)
    assert result["restored_from"] == target.id and result["mode"] == "paused"
    assert result["offsets"] == newest.offsets, "the stream is not rewound"

    service = build_service(config)
    probes = [e["x"] for e in generate("stationary", 30, seed=8)]
    restored_model = store.load(target.id).state["model"]
    assert [service.loop.model.predict_proba_one(x) for x in probes] == [
        restored_model.predict_proba_one(x) for x in probes]
    assert service.loop.guard.mode.value == "paused" and service.loop.counters.events == 3_000
    assert service.runner.last_snapshot.restored_from == target.id
    service.admin.stop()

    code, out = cli("rollback", "--to", "s000000-none", "--dir", directory, "--key", "test-key")
    assert code != 0 and "s000000-none" in out
