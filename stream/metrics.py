"""Prometheus metrics of the service, created on a registry that the caller passes in.

>>> from prometheus_client import CollectorRegistry
>>> registry = CollectorRegistry()
>>> m = Metrics(registry)
>>> m.events.labels(outcome="processed").inc(3)
>>> registry.get_sample_value("riverguard_events_total", {"outcome": "processed"})
3.0
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram

from stream.events import REASONS

# Predict and learn of one event take microseconds to milliseconds; snapshots take longer.
_STEP_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 0.1)
_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
_SNAPSHOT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

MODES = ("learning", "quarantine", "paused")
OUTCOMES = ("processed", "invalid")


class Metrics:
    """Every metric riverguard exports, prefixed `riverguard_`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        r = registry
        self.events = Counter(
            "riverguard_events", "Events consumed, by outcome.", ["outcome"], registry=r
        )
        self.predictions = Counter("riverguard_predictions", "Predictions published.", registry=r)
        self.labeled = Counter("riverguard_labeled_events", "Events whose label arrived.", registry=r)
        self.learn_steps = Counter("riverguard_learn_steps", "learn_one calls on the live model.", registry=r)
        self.invalid = Counter(
            "riverguard_invalid_events", "Events sent to the dead-letter topic, by reason.", ["reason"], registry=r
        )
        self.predict_seconds = Histogram(
            "riverguard_predict_duration_seconds", "predict_one latency.", buckets=_STEP_BUCKETS, registry=r
        )
        self.learn_seconds = Histogram(
            "riverguard_learn_duration_seconds", "learn_one latency.", buckets=_STEP_BUCKETS, registry=r
        )
        self.e2e_lag = Histogram(
            "riverguard_end_to_end_lag_seconds",
            "Event timestamp to prediction published.",
            buckets=_LAG_BUCKETS,
            registry=r,
        )
        self.consumer_lag = Gauge(
            "riverguard_consumer_lag_messages",
            "Messages behind the partition's high watermark.",
            ["topic", "partition"],
            registry=r,
        )
        self.metric = Gauge(
            "riverguard_model_metric",
            "Rolling metric of a model (accuracy or MAE) over the last window of labeled events.",
            ["model", "metric"],
            registry=r,
        )
        self.mode = Enum("riverguard_guard_state", "Guard state.", states=list(MODES), registry=r)
        self.snapshot_seconds = Histogram(
            "riverguard_snapshot_duration_seconds", "Time to write a snapshot.", buckets=_SNAPSHOT_BUCKETS, registry=r
        )
        self.snapshot_bytes = Gauge("riverguard_snapshot_size_bytes", "Size of the last snapshot.", registry=r)
        self.snapshot_timestamp = Gauge(
            "riverguard_snapshot_last_timestamp_seconds",
            "When the last snapshot was written; snapshot age is time() minus this.",
            registry=r,
        )
        self.snapshots = Counter("riverguard_snapshots", "Snapshots written, by reason.", ["reason"], registry=r)
        self.pending = Gauge("riverguard_pending_labels", "Predictions waiting for their label.", registry=r)
        self.pending_dropped = Counter(
            "riverguard_pending_labels_dropped",
            "Pending predictions dropped before their label came, by cause.",
            ["cause"],
            registry=r,
        )
        self.up_since = Gauge("riverguard_start_time_seconds", "When the service started.", registry=r)
        # Pre-create the bounded label sets so that dashboards see zeros rather than gaps.
        for outcome in OUTCOMES:
            self.events.labels(outcome=outcome)
        for reason in REASONS:
            self.invalid.labels(reason=reason)
        for cause in ("expired", "evicted"):
            self.pending_dropped.labels(cause=cause)
        self.mode.state("learning")
