"""The runner drives a loop from a source: resume from a snapshot, poll, process, checkpoint.

Checkpointing is an ordered sequence (a failed step commits nothing):
1. flush the sink, so every prediction and dead letter before the snapshot is durable;
2. write the snapshot (model, score, pending labels, counters, next offsets) atomically;
3. only then commit the offsets to Kafka, for tools that watch the consumer group.

On start the newest valid snapshot is loaded and the source seeks to *its* offsets: the snapshot,
not the group's committed offset, is the truth. After a crash every event is learned exactly once.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

from stream.errors import OutputLost, SnapshotRefused
from stream.control import Control
from stream.history import History
from stream.loop import Loop, Record
from stream.metrics import Exporter
from stream.snapshots import NOT_RESUMABLE, Snapshot, SnapshotMeta, SnapshotStore

log = logging.getLogger(__name__)


class Source(Protocol):
    """Where records come from: Kafka partitions in the service, a file in a backtest."""

    def poll(self, timeout: float) -> list[Record] | None:
        """Records in order; an empty list when none came in time; None at the end of a finite source."""

    def seek(self, offsets: dict[tuple[str, int], int]) -> None: ...
    def commit(self, offsets: dict[tuple[str, int], int]) -> None: ...
    def lag(self) -> dict[tuple[str, int], int]: ...


class Runner:
    """Resumes, runs and checkpoints one loop."""

    def __init__(
        self,
        loop: Loop,
        source: Source,
        store: SnapshotStore,
        *,
        every_events: int = 1000,
        model_spec: str | None = None,
        metrics=None,
    ) -> None:
        self.loop = loop
        self.source = source
        self.store = store
        self.every_events = every_events
        self.model_spec = model_spec
        self.metrics = metrics
        self.last_snapshot: SnapshotMeta | None = None
        self.longest_stall = 0.0  # seconds the loop stood still for one snapshot
        self.ready = threading.Event()
        self._since_snapshot = 0
        self._exporter = Exporter(metrics) if metrics is not None else None
        self.decisions_view: list[dict] = []  # newest last; replaced, never mutated (HTTP reads it)
        self.alarms_view: list[dict] = []
        self.history = History()
        self._seen = (0, 0)
        loop.refresh_status = self.after_batch
        self.control = Control(self)

    def resume(self) -> Snapshot | None:
        """Load the newest valid snapshot (skipping refused ones, loudly) and seek to its offsets."""
        snapshot = self.store.latest_valid(on_refused=_report_refused, resumable_only=True)
        if snapshot is not None:
            self.loop.restore(snapshot.state, lineage=snapshot.meta.id)
            self.loop.guard.snapshot_taken(snapshot.meta.id, snapshot.meta.events)
            self.last_snapshot = snapshot.meta
            if self.metrics is not None:  # snapshot age counts from the snapshot, not from this start
                self.metrics.snapshot_timestamp.set(snapshot.meta.created)
            log.info(
                "resumed from snapshot %s (%d events, mode %s, offsets %s)",
                snapshot.meta.id, snapshot.meta.events, self.loop.guard.mode.value, snapshot.meta.offsets,
            )
        elif self.loop.guard.settings.enabled:
            self.snapshot("initial")  # a restore point before the first event
        self.source.seek(dict(self.loop.offsets))
        if self._exporter is not None:
            self._exporter.start_from(self.loop)
        return snapshot

    def snapshot(self, reason: str, *, restored_from: str | None = None, model=None) -> SnapshotMeta:
        """Flush, write durably, then commit offsets; raises (and commits nothing) if a step fails.

        `model`, if given, is written as the snapshot's model instead of the live one (a parked
        candidate: `reason` "candidate"; a parked model caught up: "parked")."""
        loop = self.loop
        started = time.perf_counter()
        loop.sink.flush()
        events = loop.counters.events
        state = loop.state() if model is None else {**loop.state(), "model": model, "shadow": {}}
        meta = self.store.write(
            state,
            reason=reason,
            events=events,
            parent=loop.lineage,
            metric={"name": loop.score.name, "value": loop.score.value, "rolling": loop.score.rolling},
            model_spec=self.model_spec,
            offsets={f"{t}:{p}": o for (t, p), o in loop.offsets.items()},
            restored_from=restored_from,
            mode=loop.guard.mode.value,
            protect=loop.guard.protected(events),
        )
        if reason not in NOT_RESUMABLE:  # those keep a model for the record or for a later contest
            loop.lineage = meta.id
            loop.guard.snapshot_taken(meta.id, events)
        stall = time.perf_counter() - started
        self.longest_stall = max(self.longest_stall, stall)
        self.last_snapshot = meta
        self._since_snapshot = 0
        self.source.commit(dict(loop.offsets))
        if self.metrics is not None:
            m = self.metrics
            m.snapshot_seconds.observe(stall)
            m.snapshot_bytes.set(meta.size)
            m.snapshot_timestamp.set(meta.created)
            m.snapshots.labels(reason=reason).inc()
        return meta

    def run(self, stop: threading.Event, max_events: int | None = None) -> None:
        """Process until `stop` is set, the source ends, or `max_events` were consumed; then snapshot."""
        loop = self.loop
        consumed = 0
        self.ready.set()
        while not stop.is_set():
            loop.commands.apply()
            records = self.source.poll(0.2)
            if records is None:
                break
            for record in records:
                loop.process(record)
                consumed += 1
                self._since_snapshot += 1
                if self._since_snapshot >= self.every_events:
                    self._periodic_snapshot()
                if max_events is not None and consumed >= max_events:
                    stop.set()
                    break
            self.after_batch()
        loop.commands.apply()
        self.snapshot("shutdown")
        self.after_batch()

    def _periodic_snapshot(self) -> None:
        try:
            self.snapshot("periodic")
        except OutputLost:
            raise
        except Exception as exc:
            # Nothing was committed; keep serving and try again after the next interval.
            self._since_snapshot = 0
            log.error("periodic snapshot failed, offsets not committed: %s", exc)

    def after_batch(self) -> None:
        """Bring metrics and the published status up to date (once per batch, not per event)."""
        loop = self.loop
        lags = self.source.lag()
        if self._exporter is not None:
            self._exporter.export(loop)
            for (topic, partition), lag in lags.items():
                self.metrics.consumer_lag.labels(topic=topic, partition=str(partition)).set(lag)
        guard = loop.guard
        seen = (sum(guard.decision_counts.values()), sum(guard.alarm_counts.values()))
        if seen != self._seen:
            self._seen = seen
            self.decisions_view = [d.to_dict() for d in guard.decisions]
            self.alarms_view = list(guard.alarms)
        last = self.last_snapshot
        self.history.maybe_sample({
            "events": loop.counters.events,
            "mode": guard.mode.value,
            "metric": loop.score.rolling,
            "candidate": loop.candidate_score.rolling if "candidate" in loop.shadow else None,
            "lag": sum(lags.values()) if lags else None,
            "invalid": sum(loop.counters.invalid.values()),
        }, now=time.time())
        loop.publish_status(
            last_snapshot=None if last is None else {"id": last.id, "created": last.created, "reason": last.reason},
            model_spec=self.model_spec,
            longest_snapshot_stall_seconds=self.longest_stall,
            last_decision=self.decisions_view[-1] if self.decisions_view else None,
        )


def _report_refused(exc: SnapshotRefused) -> None:
    log.error("%s; falling back to the previous snapshot", exc)
