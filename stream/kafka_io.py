"""Kafka at the edges of the loop: a source of records and a sink for predictions and dead letters.

The source *assigns* every partition of the events (and labels) topic to itself instead of joining
a consumer group: one instance owns one model, and its position comes from the snapshot. The group
id is still used to commit offsets, so standard tools can watch the lag.
"""

from __future__ import annotations

import logging
import time
from typing import Iterable

import kafka.partitioner
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.structs import OffsetAndMetadata

from stream.config import KafkaConfig
from stream.errors import OutputLost, RiverguardError
from stream.loop import Record

log = logging.getLogger(__name__)


def client_settings(cfg: KafkaConfig) -> dict:
    """Connection settings shared by consumer, producer and admin client (SASL/SSL passed through)."""
    settings = {"bootstrap_servers": cfg.bootstrap_servers.split(","), "security_protocol": cfg.security_protocol}
    for name in ("sasl_mechanism", "sasl_plain_username", "sasl_plain_password", "ssl_cafile"):
        value = getattr(cfg, name)
        if value is not None:
            settings[name] = value
    return settings


def topic_names(cfg: KafkaConfig) -> list[str]:
    """Every topic the service reads or writes."""
    names = [cfg.topic, cfg.predictions_topic, cfg.dead_letter_topic]
    return names + ([cfg.labels_topic] if cfg.labels_topic else [])


def create_topics(settings: dict, names: Iterable[str], *, partitions: int = 1, replication_factor: int = 1) -> list[str]:
    """Create whichever of `names` do not exist yet; return the ones created.

    Existing topics are left alone, whatever their partition count.
    """
    wanted = list(dict.fromkeys(names))
    admin = KafkaAdminClient(**settings, client_id="riverguard-admin")
    try:
        existing = set(admin.list_topics())
        created = []
        # One request per topic: a batch fails as a whole when another client won a race on one.
        for name in (n for n in wanted if n not in existing):
            try:
                admin.create_topics([NewTopic(name, partitions, replication_factor)])
                created.append(name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        admin.close()


class KafkaSource:
    """Every partition of the input topics, positioned by the snapshot's offsets."""

    def __init__(self, cfg: KafkaConfig, *, metadata_timeout: float = 30.0) -> None:
        self.cfg = cfg
        self.consumer = KafkaConsumer(
            **client_settings(cfg),
            group_id=cfg.group_id,
            client_id="riverguard",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=cfg.max_poll_records,
            fetch_max_bytes=16 * 1024 * 1024,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        topics = [cfg.topic] + ([cfg.labels_topic] if cfg.labels_topic else [])
        self.partitions = [tp for topic in topics for tp in self._partitions(topic, metadata_timeout)]
        self.consumer.assign(self.partitions)
        self._last_commit: dict[TopicPartition, OffsetAndMetadata] = {}

    def _partitions(self, topic: str, timeout: float) -> list[TopicPartition]:
        deadline = time.monotonic() + timeout
        while True:
            ids = self.consumer.partitions_for_topic(topic)
            if ids:
                return [TopicPartition(topic, p) for p in sorted(ids)]
            if time.monotonic() > deadline:
                raise RiverguardError(
                    f"topic {topic!r} has no partitions on {self.cfg.bootstrap_servers} after {timeout:.0f}s"
                )
            time.sleep(0.2)

    def seek(self, offsets: dict[tuple[str, int], int]) -> None:
        for tp in self.partitions:
            offset = offsets.get((tp.topic, tp.partition))
            if offset is None:
                self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, offset)

    def poll(self, timeout: float) -> list[Record]:
        batches = self.consumer.poll(timeout_ms=int(timeout * 1000), max_records=self.cfg.max_poll_records)
        if len(batches) == 1:
            return next(iter(batches.values()))
        return [record for records in batches.values() for record in records]

    def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        """Best effort, not waited for: the snapshot holds the truth; the group offset is for observers.

        Waiting stalled the loop for a broker round trip on every snapshot (2 ms median, up to 30 ms
        in the throughput benchmark). `close` commits the last offsets synchronously.
        """
        self._last_commit = {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in offsets.items()}
        try:
            self.consumer.commit_async(self._last_commit, callback=_report_commit)
        except KafkaError as exc:
            log.warning("offset commit failed (the snapshot still holds the offsets): %s", exc)

    def lag(self) -> dict[tuple[str, int], int]:
        lags = {}
        for tp in self.partitions:
            high = self.consumer.highwater(tp)
            if high is not None:
                lags[(tp.topic, tp.partition)] = max(0, high - self.consumer.position(tp))
        return lags

    def close(self) -> None:
        if self._last_commit:  # an asynchronous commit may still be in flight: make the last one land
            try:
                self.consumer.commit(self._last_commit)
            except KafkaError as exc:
                log.warning("offset commit failed (the snapshot still holds the offsets): %s", exc)
        self.consumer.close(autocommit=False)


def _report_commit(offsets, response) -> None:
    if isinstance(response, Exception):
        log.warning("offset commit failed (the snapshot still holds the offsets): %s", response)


class SinglePartitionFirst(kafka.partitioner.DefaultPartitioner):
    """The default partitioner, minus the key's hash when the topic has a single partition.

    A prediction's key is its event id: on every `send` the default hashes it with pure-Python
    murmur2 (1.2-1.7 us for ids of 6-10 bytes) and copies the metadata's partition sets (3 us in
    all; 0.3 us here). With one partition every key lands on it anyway, so each record goes exactly
    where the default would put it; with more partitions, the default decides.

    >>> class Cluster:  # what a partitioner reads of kafka-python's ClusterMetadata
    ...     def __init__(self, n): self.ids = set(range(n))
    ...     def topics(self): return {"predictions"}
    ...     def partitions_for_topic(self, topic): return set(self.ids)
    ...     def available_partitions_for_topic(self, topic): return set(self.ids)
    >>> ours, default = SinglePartitionFirst(), kafka.partitioner.DefaultPartitioner()
    >>> keys = [f"e-{i}".encode() for i in range(1000)]
    >>> {ours.partition("predictions", k, k, b"{}", b"{}", Cluster(1)) for k in keys}
    {0}
    >>> all(ours.partition("predictions", k, k, b"{}", b"{}", Cluster(6))
    ...     == default.partition("predictions", k, k, b"{}", b"{}", Cluster(6)) for k in keys)
    True
    """

    def partition(self, topic, key, serialized_key, value, serialized_value, cluster):
        partitions = cluster.partitions_for_topic(topic)  # live metadata: follows added partitions
        if partitions is not None and len(partitions) == 1:
            for only in partitions:
                return only
        return super().partition(topic, key, serialized_key, value, serialized_value, cluster)


# kafka-python < 3 calls a partitioner as `(key, all_partitions, available)`: its default stays there.
_PARTITIONER_OBJECTS = hasattr(kafka.partitioner, "Partitioner")


class KafkaSink:
    """Predictions to the predictions topic; invalid events, bytes untouched, to the dead-letter topic."""

    def __init__(self, cfg: KafkaConfig, *, flush_timeout: float = 30.0) -> None:
        self.cfg = cfg
        self.flush_timeout = flush_timeout
        self.failed = 0
        self.producer = KafkaProducer(
            **client_settings(cfg),
            client_id="riverguard",
            acks="all",  # predictions are flushed before a snapshot commits offsets: make them durable
            linger_ms=5,
            batch_size=256 * 1024,
            compression_type=None,
            **({"partitioner": SinglePartitionFirst()} if _PARTITIONER_OBJECTS else {}),
        )

    def prediction(self, key: bytes | None, value: bytes) -> None:
        self.producer.send(self.cfg.predictions_topic, key=key, value=value).add_errback(self._failed)

    def dead_letter(self, record: Record, reason: str, detail: str) -> None:
        headers = [
            ("riverguard.reason", reason.encode()),
            ("riverguard.detail", detail[:1000].encode("utf-8", "replace")),
            ("riverguard.topic", record.topic.encode()),
            ("riverguard.partition", str(record.partition).encode()),
            ("riverguard.offset", str(record.offset).encode()),
        ]
        self.producer.send(
            self.cfg.dead_letter_topic, value=record.value or b"", headers=headers
        ).add_errback(self._failed)

    def _failed(self, exc: Exception) -> None:
        self.failed += 1
        log.error("a message was not delivered: %s", exc)

    def flush(self) -> None:
        """Wait until every message is acknowledged; raise if any was lost, so no snapshot commits it."""
        self.producer.flush(timeout=self.flush_timeout)
        if self.failed:
            # Sticky: the events behind a lost message are already learned, so no later snapshot
            # may commit past them either. The service stops; a restart replays from the snapshot.
            raise OutputLost(f"{self.failed} output messages were not delivered; no snapshot is written")

    def close(self) -> None:
        self.producer.close(timeout=self.flush_timeout)
