"""Resuming from snapshots through the real broker: seek to the snapshot's offsets, refuse bad files."""

from __future__ import annotations

import logging

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from stream.publish import publish
from stream.scenarios import generate
from stream.service import build_service
from stream.snapshots import SnapshotStore

from .kafka_util import service_config

pytestmark = pytest.mark.broker


def _two_runs_of_snapshots(broker, topic, tmp_path):
    publish(broker.bootstrap, topic, generate("stationary", 3_000, seed=11), progress=False)
    config = service_config(broker, tmp_path, topic, snapshots={"every_events": 1_000})
    build_service(config).run(max_events=2_500)
    store = SnapshotStore(config.snapshots.dir, b"test-key")
    return config, store


@pytest.mark.parametrize("damage", ["tamper", "truncate"])
def test_a_damaged_newest_snapshot_is_refused_and_the_previous_one_resumes(
    broker, topic_name, tmp_path, caplog, damage
):
    config, store = _two_runs_of_snapshots(broker, topic_name, tmp_path)
    *_, previous, newest = store.paths()
    data = newest.read_bytes()
    if damage == "tamper":
        newest.write_bytes(data[:200] + bytes([data[200] ^ 0xFF]) + data[201:])
    else:
        newest.write_bytes(data[: len(data) // 2])
    previous_meta = store.verify(previous)

    with caplog.at_level(logging.ERROR):
        service = build_service(config)
    refused = [r.getMessage() for r in caplog.records if "refusing" in r.getMessage() or "truncated" in r.getMessage()]
    assert refused and str(newest) in refused[0], "the error names the refused file"
    assert service.runner.last_snapshot.id == previous_meta.id
    assert service.loop.status["offsets"] == previous_meta.offsets
    assert service.loop.counters.events == previous_meta.events

    # It continues from the previous snapshot's offsets to the end of the topic: nothing lost.
    status = service.run(max_events=3_000 - previous_meta.events)
    assert status["events"] == status["learned"] == 3_000


def test_restart_seeks_to_the_snapshot_offsets_not_the_committed_group_offset(broker, topic_name, tmp_path):
    config, store = _two_runs_of_snapshots(broker, topic_name, tmp_path)
    newest = store.latest_valid()
    assert newest.meta.reason == "shutdown" and newest.meta.events == 2_500
    # Someone moves the group's committed offset back: the snapshot, not the group, is the truth.
    tp = TopicPartition(topic_name, 0)
    mover = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=config.kafka.group_id, enable_auto_commit=False)
    mover.assign([tp])
    mover.commit({tp: OffsetAndMetadata(100, "", -1)})
    assert mover.committed(tp) == 100
    mover.close()

    service = build_service(config)
    assert service.loop.counters.events == 2_500
    status = service.run(max_events=500)
    assert status["events"] == status["labeled"] == status["learned"] == 3_000
    assert status["offsets"] == {f"{topic_name}:0": 3_000}
    checker = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=config.kafka.group_id, enable_auto_commit=False)
    assert checker.committed(tp) == 3_000, "offsets are committed after the final snapshot is durable"
    checker.close()
