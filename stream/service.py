"""The service: wires config, model, Kafka, snapshots, metrics and the admin server around one loop."""

from __future__ import annotations

import logging
import secrets
import signal
import threading
import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from stream.admin import AdminServer, create_app
from stream.config import Config
from stream.events import Decoder
from stream.kafka_io import KafkaSink, KafkaSource, client_settings, create_topics, topic_names
from stream.loop import Loop
from stream.metrics import Metrics
from stream.models import build_from_config, is_classifier
from stream.pending import PendingStore
from stream.runner import Runner
from stream.scoring import Score
from stream.snapshots import SnapshotStore

log = logging.getLogger(__name__)


@dataclass
class Service:
    """A built, not yet running service; `run` blocks until stopped."""

    config: Config
    runner: Runner
    source: KafkaSource
    sink: KafkaSink
    registry: CollectorRegistry
    admin: AdminServer | None
    token: str

    @property
    def loop(self) -> Loop:
        return self.runner.loop

    def run(self, stop: threading.Event | None = None, max_events: int | None = None) -> dict:
        stop = stop or threading.Event()
        try:
            self.runner.run(stop, max_events=max_events)
        finally:
            if self.admin is not None:
                self.admin.stop()
            self.source.close()
            self.sink.close()
        return self.loop.status


def build_service(config: Config, *, registry: CollectorRegistry | None = None) -> Service:
    """Resume from the newest valid snapshot and connect to Kafka; start the admin server."""
    registry = registry or CollectorRegistry()
    metrics = Metrics(registry)
    store = SnapshotStore(config.snapshots.dir, config.snapshot_key(), keep=config.snapshots.keep)
    # The model and its guard first: a configuration they refuse stops the start before Kafka is touched.
    model = build_from_config(config.model)
    guard = config.build_guard(is_classifier(model))
    create_topics(client_settings(config.kafka), topic_names(config.kafka))
    sink = KafkaSink(config.kafka)
    loop = Loop(
        model,
        sink=sink,
        decoder=Decoder.from_config(config.events, numeric_label=not is_classifier(model)),
        score=Score.for_model(is_classifier(model), window=config.metrics.window),
        pending=PendingStore(config.labels.pending_max, config.labels.ttl_seconds),
        guard=guard,
        metrics=metrics,
    )
    source = KafkaSource(config.kafka)
    runner = Runner(
        loop, source, store,
        every_events=config.snapshots.every_events,
        model_spec=config.model.spec,
        metrics=metrics,
    )
    runner.resume()
    runner.after_batch()
    token = config.admin.token or secrets.token_urlsafe(24)
    admin = None
    if config.admin.enabled:
        if not config.admin.token:
            log.warning("no [admin] token configured; generated one for this run: %s", token)
        app = create_app(runner, registry, token=token, public_reads=config.admin.public_reads)
        admin = AdminServer(app, config.admin.host, config.admin.port).start()
        log.info("admin API on %s", admin.url)
    metrics.up_since.set(time.time())
    return Service(config, runner, source, sink, registry, admin, token)


def stop_on_signals(stop: threading.Event) -> None:
    """SIGINT and SIGTERM ask the loop to finish its batch, snapshot and exit."""

    def handle(signum, frame):
        log.info("received %s, stopping after a final snapshot", signal.Signals(signum).name)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handle)
        signal.signal(signal.SIGTERM, handle)
