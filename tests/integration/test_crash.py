"""kill -9 the service at random points and in the middle of a snapshot write; nothing is lost.

One partition, every event labeled inline. After the kills and a final clean run:
- every event id has a prediction (at-least-once: some appear twice, none is missing);
- learn steps == labeled events == events in the topic (none lost, none learned twice);
- the final model predicts exactly like a model that ran the same events without interruption.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from stream.client import AdminClient
from stream.errors import AdminError
from stream.loop import Loop, MemorySink, Record
from stream.models import build_model
from stream.publish import publish
from stream.scenarios import generate
from stream.snapshots import SnapshotStore

from .kafka_util import consume_all, prediction_ids

pytestmark = pytest.mark.broker

N = 30_000
KEY = "crash-test-key"
TOKEN = "crash-test-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_config(path: Path, broker, topic: str, snapshot_dir: Path, port: int) -> None:
    path.write_text(
        f"""
[model]
preset = "hoeffding_tree"
[snapshots]
dir = "{snapshot_dir}"
every_events = 100
keep = 5
key = "{KEY}"
[kafka]
bootstrap_servers = "{broker.bootstrap}"
topic = "{topic}"
predictions_topic = "{topic}.predictions"
dead_letter_topic = "{topic}.dlq"
group_id = "{topic}.group"
max_poll_records = 500
[admin]
port = {port}
token = "{TOKEN}"
"""
    )


def _start(config: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "stream.cli", "run", "--config", str(config)],
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
    )


def _wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.0005)


def _snapshots(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("s*.rgsnap"))


def _temp_files(directory: Path) -> list[str]:
    return [name for name in os.listdir(directory) if name.endswith(".tmp")]


def test_kill_9_at_random_points_and_mid_snapshot_loses_nothing(broker, topic_name, tmp_path):
    rng = random.Random()
    seed = rng.randrange(1_000_000)
    events = list(generate("stationary", N, seed=7))
    publish(broker.bootstrap, topic_name, events, progress=False)
    snapshot_dir = tmp_path / "snapshots"
    snapshot_dir.mkdir()
    port = _free_port()
    config = tmp_path / "riverguard.toml"
    _write_config(config, broker, topic_name, snapshot_dir, port)
    log = tmp_path / "service.log"

    # 1. kill -9 at a random moment after the first snapshot.
    proc = _start(config, log)
    _wait_until(lambda: _snapshots(snapshot_dir), 60, "the first snapshot")
    time.sleep(random.Random(seed).uniform(0.1, 1.0))
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    # 2. kill -9 while a snapshot file is being written (its temp file exists).
    proc = _start(config, log)
    _wait_until(lambda: _temp_files(snapshot_dir) or proc.poll() is not None, 120, "a snapshot write")
    killed_mid_write = bool(_temp_files(snapshot_dir))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert killed_mid_write, f"the service ended before a snapshot write could be interrupted (seed {seed})"

    # 3. restart, and kill -9 once more at a random moment.
    proc = _start(config, log)
    time.sleep(random.Random(seed + 1).uniform(1.5, 3.0))
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    # 4. a final run to the end of the topic, stopped cleanly.
    proc = _start(config, log)
    client = AdminClient(f"http://127.0.0.1:{port}", TOKEN, timeout=5)

    def finished() -> bool:
        try:
            return client.get("/api/status").get("events") == N
        except AdminError:
            return False

    try:
        _wait_until(finished, 180, f"all {N} events")
        status = client.get("/api/status")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()[-3000:]

    assert not _temp_files(snapshot_dir), "a leftover temp file was cleaned up on restart"
    assert status["labeled"] == N, "every labeled event was scored exactly once"
    assert status["learned"] == N, "every labeled event was learned exactly once"

    predictions = prediction_ids(consume_all(broker.bootstrap, f"{topic_name}.predictions", N, timeout=120))
    assert set(predictions) == {e["id"] for e in events}, "every event has a prediction"
    assert len(predictions) >= N  # replays after a kill publish some predictions again

    final = SnapshotStore(snapshot_dir, KEY.encode()).latest_valid()
    reference = Loop(build_model(preset="hoeffding_tree"), sink=MemorySink(keep=False))
    for offset, event in enumerate(events):
        reference.process(Record(topic_name, 0, offset, orjson.dumps(event)))
    probes = [e["x"] for e in generate("stationary", 300, seed=99)]
    assert final.state["counters"].learned == reference.counters.learned == N
    assert [final.state["model"].predict_proba_one(x) for x in probes] == [
        reference.model.predict_proba_one(x) for x in probes
    ], "the resumed model is exactly the uninterrupted one"
