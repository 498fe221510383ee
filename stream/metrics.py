"""Prometheus metrics of the service, created on a registry that the caller passes in.

>>> from prometheus_client import CollectorRegistry
>>> registry = CollectorRegistry()
>>> m = Metrics(registry)
>>> m.events.labels(outcome="processed").inc(3)
>>> registry.get_sample_value("riverguard_events_total", {"outcome": "processed"})
3.0
"""

from __future__ import annotations

import re
import time
from bisect import bisect_left

import prometheus_client.metrics
from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from drift.decisions import ACTIONS, TRIGGERS
from stream.events import REASONS

# Predict and learn of one event take microseconds to milliseconds; snapshots take longer.
_STEP_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 0.1)
_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
_SNAPSHOT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

MODES = ("learning", "quarantine", "paused")
OUTCOMES = ("processed", "invalid")
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


class StepHistogram:
    """A histogram observed once per event by the loop: a bisect and two list additions (0.2 us).

    prometheus_client's `Histogram.observe` takes a lock for the sum and one for the bucket (0.6
    us; the loop observes three per event). This one has no lock: the loop's thread is its only
    writer, and the registry reads it at scrape time as a collector. Exposed exactly like a
    `Histogram` without labels: `_bucket{le}` (cumulative, `+Inf` last), `_count`, `_sum`,
    `_created`.

    Counts and sum live in one list that a scrape copies in one C call, so the buckets and `_count`
    always agree with each other; only `_sum` can be torn, by the single observation the loop may
    be in the middle of (its bucket counted, its value not yet added). The next scrape includes it.
    That is no worse than `Histogram`, which reads its sum and each bucket one at a time.

    >>> registry = CollectorRegistry()
    >>> h = StepHistogram("demo_seconds", "Demo.", (0.1, 1.0), registry)
    >>> for value in (0.05, 0.1, 0.5, 5.0):
    ...     h.observe(value)
    >>> [registry.get_sample_value("demo_seconds_bucket", {"le": le}) for le in ("0.1", "1.0", "+Inf")]
    [2.0, 3.0, 4.0]
    >>> registry.get_sample_value("demo_seconds_count"), registry.get_sample_value("demo_seconds_sum")
    (4.0, 5.65)
    """

    def __init__(self, name: str, documentation: str, buckets, registry: CollectorRegistry) -> None:
        if not _NAME.fullmatch(name):
            raise ValueError(f"invalid metric name {name!r}")
        bounds = tuple(float(b) for b in buckets)
        if not bounds or list(bounds) != sorted(set(bounds)) or bounds[-1] == float("inf"):
            raise ValueError(f"{name}: buckets must be finite, distinct and ascending, got {buckets!r}")
        self.name = name
        self.documentation = documentation
        self.bounds = bounds
        self.created = time.time()
        # [count of bucket 0, ..., count of +Inf, sum]: bucket i counts bounds[i-1] < value <= bounds[i]
        self._state = [0] * (len(bounds) + 1) + [0.0]
        self._les = [floatToGoString(b) for b in bounds] + ["+Inf"]
        registry.register(self)

    def observe(self, value: float) -> None:
        state = self._state
        state[bisect_left(self.bounds, value)] += 1
        state[-1] += value

    def describe(self) -> list[HistogramMetricFamily]:
        return [HistogramMetricFamily(self.name, self.documentation)]

    def collect(self):
        *counts, total = self._state.copy()  # one C call: see the class docstring
        buckets, cumulative = [], 0.0
        for le, count in zip(self._les, counts):
            cumulative += count
            buckets.append((le, cumulative))
        family = HistogramMetricFamily(self.name, self.documentation, buckets=buckets, sum_value=total)
        if getattr(prometheus_client.metrics, "_use_created", True):  # as Histogram does
            family.samples.append(Sample(self.name + "_created", {}, self.created))
        yield family


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
        self.stand_ins = Counter(
            "riverguard_stand_in_predictions", "Predictions a parked model made in the live model's place.", registry=r
        )
        self.invalid = Counter(
            "riverguard_invalid_events", "Events sent to the dead-letter topic, by reason.", ["reason"], registry=r
        )
        # Observed on every event by the loop: StepHistogram, not Histogram (see there).
        self.predict_seconds = StepHistogram(
            "riverguard_predict_duration_seconds", "predict_one latency.", _STEP_BUCKETS, r
        )
        self.learn_seconds = StepHistogram("riverguard_learn_duration_seconds", "learn_one latency.", _STEP_BUCKETS, r)
        self.e2e_lag = StepHistogram(
            "riverguard_end_to_end_lag_seconds", "Event timestamp to prediction published.", _LAG_BUCKETS, r
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
        m.stand_ins.inc(now["stood_in"] - last.get("stood_in", 0))
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
        "stood_in": c.stood_in,
        "invalid": dict(c.invalid), "expired": loop.pending.expired, "evicted": loop.pending.evicted,
        "alarms": dict(guard.alarm_counts), "decisions": dict(guard.decision_counts),
        "rollbacks": dict(guard.rollback_counts),
    }


def _inc_each(now: dict, last: dict, child) -> None:
    for key, value in now.items():
        if value != last.get(key, 0):
            child(key).inc(value - last.get(key, 0))
