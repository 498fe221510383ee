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

from drift.decisions import ACTIONS, TRIGGERS
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
        self.alarms = Counter(
            "riverguard_drift_alarms", "Drift alarms, by detector and kind (concept, data, schema).",
            ["detector", "kind"], registry=r,
        )
        self.decisions = Counter("riverguard_guard_decisions", "Guard decisions, by action.", ["action"], registry=r)
        self.rollbacks = Counter("riverguard_rollbacks", "Rollbacks, by trigger (auto, manual).", ["trigger"], registry=r)
        self.alert = Gauge(
            "riverguard_guard_alert", "1 while the guard asks for an operator (quarantine limit, rollback storm).",
            registry=r,
        )
        self.quarantine_labeled = Gauge(
            "riverguard_quarantine_labeled_events", "Labeled events seen in the current quarantine.", registry=r
        )
        # Pre-create the bounded label sets so that dashboards see zeros rather than gaps.
        for outcome in OUTCOMES:
            self.events.labels(outcome=outcome)
        for reason in REASONS:
            self.invalid.labels(reason=reason)
        for cause in ("expired", "evicted"):
            self.pending_dropped.labels(cause=cause)
        for action in ACTIONS:
            self.decisions.labels(action=action)
        for trigger in TRIGGERS:
            self.rollbacks.labels(trigger=trigger)
        self.mode.state("learning")


class Exporter:
    """Brings Prometheus up to date with the loop's own counters, once per batch, by differences.

    The loop keeps plain integers (they go into snapshots); Prometheus counters only ever grow, so
    each export adds what changed since the last one.
    """

    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics
        self._last: dict = {}

    def start_from(self, loop) -> None:
        """After a resume, counts restored from the snapshot belong to the previous process."""
        self._last = _counts(loop)

    def export(self, loop) -> None:
        m, last, now = self.m, self._last, _counts(loop)
        invalid = sum(now["invalid"].values()) - sum(last.get("invalid", {}).values())
        m.events.labels(outcome="invalid").inc(invalid)
        m.events.labels(outcome="processed").inc(now["events"] - last.get("events", 0) - invalid)
        m.predictions.inc(now["predictions"] - last.get("predictions", 0))
        m.labeled.inc(now["labeled"] - last.get("labeled", 0))
        m.learn_steps.inc(now["learned"] - last.get("learned", 0))
        for (name, metric) in (("expired", "expired"), ("evicted", "evicted")):
            m.pending_dropped.labels(cause=name).inc(now[metric] - last.get(metric, 0))
        _inc_each(now["invalid"], last.get("invalid", {}), lambda k: m.invalid.labels(reason=k))
        _inc_each(now["alarms"], last.get("alarms", {}), lambda k: m.alarms.labels(detector=k[0], kind=k[1]))
        _inc_each(now["decisions"], last.get("decisions", {}), lambda k: m.decisions.labels(action=k))
        _inc_each(now["rollbacks"], last.get("rollbacks", {}), lambda k: m.rollbacks.labels(trigger=k))
        self._last = now
        guard = loop.guard
        m.pending.set(len(loop.pending))
        m.mode.state(guard.mode.value)
        m.alert.set(1 if guard.alert else 0)
        m.quarantine_labeled.set(guard.quarantine.contest.labeled if guard.quarantine else 0)
        rolling = loop.score.rolling
        if rolling is not None:
            m.metric.labels(model="live", metric=loop.score.name).set(rolling)
        candidate = loop.candidate_score.rolling if "candidate" in loop.shadow else None
        if candidate is not None:
            m.metric.labels(model="candidate", metric=loop.score.name).set(candidate)
        else:
            try:  # no candidate, no series: a stale value would read as a live candidate
                m.metric.remove("candidate", loop.score.name)
            except KeyError:
                pass


def _counts(loop) -> dict:
    c, guard = loop.counters, loop.guard
    return {
        "events": c.events, "predictions": c.predictions, "labeled": c.labeled, "learned": c.learned,
        "invalid": dict(c.invalid), "expired": loop.pending.expired, "evicted": loop.pending.evicted,
        "alarms": dict(guard.alarm_counts), "decisions": dict(guard.decision_counts),
        "rollbacks": dict(guard.rollback_counts),
    }


def _inc_each(now: dict, last: dict, child) -> None:
    for key, value in now.items():
        if value != last.get(key, 0):
            child(key).inc(value - last.get(key, 0))
