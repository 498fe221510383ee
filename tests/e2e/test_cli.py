"""The `riverguard` command as a user drives it: real processes, real broker, real files."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time

import orjson
import pytest
from click.testing import CliRunner

from stream.cli import main
from stream.publish import publish
from stream.scenarios import generate

from ..integration.kafka_util import consume_all, prediction_ids

RIVERGUARD = [sys.executable, "-m", "stream.cli"]


def _config(tmp_path, broker, topic, **extra) -> str:
    path = tmp_path / "riverguard.toml"
    admin_port = extra.get("admin_port", 0)
    path.write_text(
        f"""
[model]
preset = "hoeffding_tree"
[snapshots]
dir = "{tmp_path / 'snapshots'}"
every_events = 500
key = "cli-key"
[kafka]
bootstrap_servers = "{broker.bootstrap if broker else '127.0.0.1:9'}"
topic = "{topic}"
predictions_topic = "{topic}.predictions"
dead_letter_topic = "{topic}.dlq"
[admin]
port = {admin_port}
token = "cli-token"
"""
    )
    return str(path)


@pytest.mark.broker
def test_run_with_max_events_stops_cleanly_with_a_final_snapshot(broker, topic_name, tmp_path):
    publish(broker.bootstrap, topic_name, generate("stationary", 1_200, seed=1), progress=False)
    config = _config(tmp_path, broker, topic_name)
    done = subprocess.run([*RIVERGUARD, "run", "--config", config, "--max-events", "1000"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["events"] == status["learned"] == 1000
    assert status["last_snapshot"]["reason"] == "shutdown"

    listing = CliRunner().invoke(main, ["snapshots", "list", "--dir", str(tmp_path / "snapshots"), "--key", "cli-key"])
    assert listing.exit_code == 0, listing.output
    assert "shutdown" in listing.output and "periodic" in listing.output and "REFUSED" not in listing.output
    snap_id = status["last_snapshot"]["id"]
    shown = CliRunner().invoke(main, ["snapshots", "show", snap_id, "--dir", str(tmp_path / "snapshots"),
                                      "--config", config])
    assert shown.exit_code == 0, shown.output
    meta = json.loads(shown.output)
    assert meta["events"] == 1000 and meta["offsets"] == {f"{topic_name}:0": 1000}
    assert meta["model_spec"] == "hoeffding_tree" and meta["versions"]["river"]


def test_snapshots_verify_names_a_tampered_file_and_exits_3(tmp_path):
    from stream.snapshots import SnapshotStore

    store = SnapshotStore(tmp_path, b"k")
    store.write({"model": 1}, reason="manual", events=1)
    bad = store.write({"model": 2}, reason="manual", events=2)
    path = store.path_of(bad.id)
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))   # always a different last byte
    result = CliRunner().invoke(main, ["snapshots", "verify", "--dir", str(tmp_path), "--key", "k"])
    assert result.exit_code == 3
    assert f"REFUSED {path}" in result.output and result.output.count("ok ") == 1


def test_unknown_config_key_fails_at_start_naming_key_and_file(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[kafka]\ntopik = "events"\n')
    result = CliRunner().invoke(main, ["run", "--config", str(config)])
    assert result.exit_code == 2
    assert "unknown key [kafka] topik" in result.output and str(config) in result.output


@pytest.mark.broker
def test_status_command_reads_a_running_service(broker, topic_name, tmp_path):
    from ..integration.kafka_util import run_in_thread, service_config
    from stream.service import build_service

    publish(broker.bootstrap, topic_name, generate("stationary", 300, seed=2), progress=False)
    service = build_service(service_config(broker, tmp_path, topic_name))
    thread, stop, _ = run_in_thread(service)
    try:
        url = service.admin.url
        time.sleep(0.5)
        result = CliRunner().invoke(main, ["status", "--url", url, "--token", "test-token"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["mode"] == "learning"
        denied = CliRunner().invoke(main, ["status", "--url", url, "--token", "wrong"])
        assert denied.exit_code == 4 and "401" in denied.output
    finally:
        stop.set()
        thread.join(30)


@pytest.mark.broker
def test_produce_and_replay_put_events_on_a_topic(broker, topic_name, tmp_path):
    produced = CliRunner().invoke(main, ["produce", "--bootstrap", broker.bootstrap, "--topic", topic_name,
                                         "--scenario", "unit_change", "--events", "500", "--seed", "3"])
    assert produced.exit_code == 0, produced.output
    csv = tmp_path / "rows.csv"
    csv.write_text("a,b,label\n" + "".join(f"{i},{i * 2},{i % 2}\n" for i in range(200)))
    replayed = CliRunner().invoke(main, ["replay", str(csv), "--bootstrap", broker.bootstrap,
                                         "--topic", topic_name, "--target", "label"])
    assert replayed.exit_code == 0, replayed.output
    records = consume_all(broker.bootstrap, topic_name, 700)
    assert len(records) == 700
    assert prediction_ids(records[:500]) == [e["id"] for e in generate("unit_change", 500, seed=3)]
    row = orjson.loads(records[501].value)
    assert row["x"] == {"a": 1.0, "b": 2.0} and row["y"] == 1


@pytest.mark.broker
def test_broker_command_prints_bootstrap_and_stops_on_sigterm():
    proc = subprocess.Popen([*RIVERGUARD, "broker"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        match = re.search(r"bootstrap: (127\.0\.0\.1:\d+)", line)
        assert match, line
        publish(match.group(1), "smoke", [{"id": "a", "x": {"f": 1.0}}], progress=False)
    finally:
        proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0


@pytest.mark.broker
def test_demo_finishes_by_itself_with_a_summary(broker):
    done = subprocess.run([*RIVERGUARD, "demo", "--events", "3000", "--port", "0", "--rate", "5000"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "summary" in done.stdout
    assert re.search(r"events\s+3000", done.stdout)
    assert re.search(r"learned\s+\d+", done.stdout)


def test_a_guard_detector_that_does_not_fit_the_model_fails_the_backtest_naming_key_and_file(tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(orjson.dumps(e) for e in generate("regression", 50, seed=1)))
    config = tmp_path / "regression.toml"
    config.write_text('[model]\npreset = "linear_regression"\n[guard]\ndetector = "ddm"\n')
    report = tmp_path / "report.json"

    result = CliRunner().invoke(main, ["backtest", str(events), "--config", str(config), "--report", str(report)])

    assert result.exit_code == 2
    assert f"{config}: [guard] detector: 'ddm'" in result.output
    assert "Traceback" not in result.output and not report.exists()


def test_run_refuses_a_guard_detector_that_does_not_fit_the_model_before_connecting(tmp_path):
    # No broker at this address: the error must be the configuration's, not a connection failure.
    config = tmp_path / "regression.toml"
    config.write_text('[model]\npreset = "hoeffding_tree_regressor"\n[guard]\ndetector = "eddm"\n'
                      f'[snapshots]\ndir = "{tmp_path / "snapshots"}"\nkey = "k"\n'
                      '[kafka]\nbootstrap_servers = "127.0.0.1:9"\n')

    result = CliRunner().invoke(main, ["run", "--config", str(config)])

    assert result.exit_code == 2
    assert f"{config}: [guard] detector: 'eddm'" in result.output
