"""Helpers for integration tests against the real embedded broker: produce, consume, run a service."""

from __future__ import annotations

import threading
import time

import orjson
from kafka import KafkaConsumer, TopicPartition

from stream.config import Config
from stream.service import Service


def service_config(broker, tmp_path, topic: str, **sections) -> Config:
    """A config for one test: its own topics, snapshot dir, key and a free admin port."""
    data = {
        "kafka": {
            "bootstrap_servers": broker.bootstrap,
            "topic": topic,
            "predictions_topic": f"{topic}.predictions",
            "dead_letter_topic": f"{topic}.dlq",
            "group_id": f"{topic}.group",
        },
        "snapshots": {"dir": str(tmp_path / "snapshots"), "key": "test-key", "every_events": 1000},
        "admin": {"port": 0, "token": "test-token"},
    }
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    return Config.build(data, env={}, source="<test>")


def consume_all(bootstrap: str, topic: str, expected: int, timeout: float = 60.0) -> list:
    """Every record of partition 0 of `topic`: read until at least `expected` came and a poll is empty."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=1000)
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    records = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            batches = consumer.poll(timeout_ms=1000, max_records=5000)
            if not batches and len(records) >= expected:
                break
            for batch in batches.values():
                records.extend(batch)
    finally:
        consumer.close()
    return records


def prediction_ids(records) -> list[str]:
    return [orjson.loads(r.value)["id"] for r in records]


def run_in_thread(service: Service, max_events: int | None = None):
    """Run a service on a thread; returns (thread, stop event, result dict filled on exit)."""
    stop = threading.Event()
    result: dict = {}

    def target():
        result["status"] = service.run(stop, max_events=max_events)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, stop, result


def wait_for(condition, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)
