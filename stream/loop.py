"""The prequential loop: for each event, validate, predict, publish, then learn once its label is known.

One thread owns the model: this loop. Everything else talks to it through `submit` (commands
applied between records) and reads `status`, a plain dict the loop replaces after every batch.

>>> from stream.models import build_model
>>> loop = Loop(build_model(preset="logistic_regression"), sink=MemorySink())
>>> loop.process(Record("events", 0, 0, b'{"id": "a", "x": {"f": 1.0}, "y": true}'))
>>> loop.process(Record("events", 0, 1, b'not json'))
>>> loop.counters.learned, loop.counters.invalid, loop.offsets
(1, {'not_json': 1}, {('events', 0): 2})
"""

from __future__ import annotations

import logging
import queue
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Protocol

from stream.events import Decoder, InvalidEvent, encode
from stream.models import is_classifier
from stream.pending import PendingStore
from stream.scoring import Score

log = logging.getLogger(__name__)


class Record(NamedTuple):
    """One message from a source; kafka-python's ConsumerRecord has the same fields."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    timestamp: int | None = None


class Sink(Protocol):
    """Where predictions and dead letters go: Kafka topics in the service, memory in a backtest."""

    def prediction(self, key: bytes | None, value: bytes) -> None: ...
    def dead_letter(self, record: Record, reason: str, detail: str) -> None: ...
    def flush(self) -> None: ...


class LearningGate(Protocol):
    """The seam where the drift guard plugs in: it decides whether a labeled event is learned."""

    mode: str

    def allows_learning(self, loss: float) -> bool: ...


class AlwaysLearn:
    """Plain online learning: every labeled event is learned."""

    mode = "learning"

    def allows_learning(self, loss: float) -> bool:
        return True


class MemorySink:
    """Keeps what the loop emits in lists: for backtests, tests and doctests."""

    def __init__(self, keep: bool = True) -> None:
        self.keep = keep
        self.predictions: list[bytes] = []
        self.dead_letters: list[tuple[Record, str, str]] = []

    def prediction(self, key, value) -> None:
        if self.keep:
            self.predictions.append(value)

    def dead_letter(self, record, reason, detail) -> None:
        self.dead_letters.append((record, reason, detail))

    def flush(self) -> None:
        pass


@dataclass
class Counters:
    """What the loop has done; part of the snapshot, so it resumes with the model."""

    events: int = 0
    predictions: int = 0
    labeled: int = 0
    learned: int = 0
    invalid: dict[str, int] = field(default_factory=dict)


class Loop:
    """Owns the model, its score, the pending-label store and the consumed offsets."""

    def __init__(
        self,
        model,
        *,
        sink: Sink,
        decoder: Decoder | None = None,
        score: Score | None = None,
        pending: PendingStore | None = None,
        gate: LearningGate | None = None,
        metrics=None,
        observer=None,
    ) -> None:
        self.model = model
        self.classifier = is_classifier(model)
        self.sink = sink
        self.decode = decoder if decoder is not None else Decoder(numeric_label=not self.classifier)
        self.score = score if score is not None else Score.for_model(self.classifier)
        self.pending = pending if pending is not None else PendingStore()
        self.gate = gate if gate is not None else AlwaysLearn()
        self.metrics = metrics
        self.observer = observer  # the backtest's per-event hook; None in the service
        self.counters = Counters()
        self.offsets: dict[tuple[str, int], int] = {}
        self.lineage: str | None = None  # id of the snapshot this model state descends from
        self.status: dict[str, Any] = {}
        self.commands: queue.Queue = queue.Queue()
        self._handlers: dict[str, Callable[..., Any]] = {}
        self.refresh_status: Callable[[], None] = self.publish_status
        self._pending_dropped = (0, 0)

    # -- the hot path ------------------------------------------------------------------------

    def process(self, record: Record) -> None:
        """Handle one record; never raises for bad input (that goes to the dead-letter sink)."""
        counters = self.counters
        counters.events += 1
        self.offsets[(record.topic, record.partition)] = record.offset + 1
        if self.observer is not None:
            self.observer.on_event(record.offset, self.gate.mode)
        try:
            event = self.decode(record.value)
            if event.x is None:
                entry = self.pending.pop(event.id)
                if entry is None:
                    raise InvalidEvent("unknown_id", f"label for id {event.id!r} matches no pending prediction")
                self._labeled(record, entry[0], entry[1], event.y)
                return
        except InvalidEvent as exc:
            self._invalid(record, exc)
            return
        try:
            y_pred, proba = self._predict(event.x)
        except Exception as exc:  # a model that cannot take this input must not stop the service
            self._invalid(record, InvalidEvent("model_error", f"predict failed: {exc!r}"))
            return
        self._publish(event, y_pred, proba)
        if event.y is not None:
            self._labeled(record, event.x, y_pred, event.y)
        elif event.id is not None:
            self.pending.put(event.id, event.x, y_pred, event.ts)

    def _predict(self, x: dict):
        metrics = self.metrics
        t0 = time.perf_counter()
        if self.classifier:
            proba = self.model.predict_proba_one(x)
            y_pred = max(proba, key=proba.get) if proba else None
        else:
            proba = None
            y_pred = self.model.predict_one(x)
        if metrics is not None:
            metrics.predict_seconds.observe(time.perf_counter() - t0)
        return y_pred, proba

    def _publish(self, event, y_pred, proba) -> None:
        now = time.time()
        message = {"id": event.id, "y_pred": y_pred, "model": self.lineage, "mode": self.gate.mode, "ts": now}
        if proba is not None:
            message["proba"] = proba
        key = event.id.encode() if event.id is not None else None
        self.sink.prediction(key, encode(message))
        self.counters.predictions += 1
        if event.ts is not None and self.metrics is not None:
            self.metrics.e2e_lag.observe(max(0.0, now - event.ts))

    def _labeled(self, record: Record, x: dict, y_pred, y) -> None:
        loss = self.score.update(y, y_pred)
        self.counters.labeled += 1
        if self.observer is not None:
            self.observer.on_labeled(record.offset, loss)
        if not self.gate.allows_learning(loss):
            return
        t0 = time.perf_counter()
        try:
            self.model.learn_one(x, y)
        except Exception as exc:  # counted and dead-lettered; the event was scored but not learned
            self._invalid(record, InvalidEvent("model_error", f"learn failed: {exc!r}"))
            return
        if self.metrics is not None:
            self.metrics.learn_seconds.observe(time.perf_counter() - t0)
        self.counters.learned += 1

    def _invalid(self, record: Record, exc: InvalidEvent) -> None:
        invalid = self.counters.invalid
        invalid[exc.reason] = invalid.get(exc.reason, 0) + 1
        self.sink.dead_letter(record, exc.reason, exc.detail)

    # -- state -------------------------------------------------------------------------------

    def state(self) -> dict:
        """Everything a snapshot holds, by reference (the snapshot store pickles it at once)."""
        return {
            "model": self.model,
            "score": self.score,
            "pending": self.pending,
            "counters": self.counters,
            "offsets": self.offsets,
            "gate": self.gate,
            "lineage": self.lineage,
        }

    def restore(self, state: dict, lineage: str | None) -> None:
        self.model = state["model"]
        self.classifier = is_classifier(self.model)
        self.score = state["score"]
        self.pending = state["pending"]
        self.counters = state["counters"]
        self.offsets = dict(state["offsets"])
        self.gate = state["gate"]
        self.lineage = lineage

    # -- commands ----------------------------------------------------------------------------

    def on(self, name: str, handler: Callable[..., Any]) -> None:
        """Register what a command does; handlers run on the loop's thread, between records."""
        self._handlers[name] = handler

    def submit(self, name: str, **args) -> Future:
        """Queue a command from any thread; the future resolves once the loop has applied it."""
        if name not in self._handlers:
            raise KeyError(f"unknown command {name!r}")
        future: Future = Future()
        self.commands.put((name, args, future))
        return future

    def apply_commands(self) -> int:
        """Apply every queued command; returns how many ran."""
        applied = 0
        while True:
            try:
                name, args, future = self.commands.get_nowait()
            except queue.Empty:
                return applied
            if not future.set_running_or_notify_cancel():
                continue
            applied += 1
            try:
                result = self._handlers[name](**args)
            except Exception as exc:  # the caller gets the error; the loop keeps running
                log.warning("command %s failed: %s", name, exc)
                future.set_exception(exc)
                continue
            # Status first, so that a caller who waited for the command reads its effect next.
            self.refresh_status()
            future.set_result(result)

    # -- reporting ---------------------------------------------------------------------------

    def publish_status(self, **extra) -> None:
        """Replace the status dict that HTTP handlers read (one reference swap: thread-safe)."""
        c = self.counters
        status = {
            "mode": self.gate.mode,
            "events": c.events,
            "predictions": c.predictions,
            "labeled": c.labeled,
            "learned": c.learned,
            "invalid": dict(c.invalid),
            "metric": {"name": self.score.name, "value": self.score.value, "rolling": self.score.rolling},
            "offsets": {f"{t}:{p}": o for (t, p), o in sorted(self.offsets.items())},
            "model": self.lineage,
            "pending_labels": len(self.pending),
            "pending_expired": self.pending.expired,
            "pending_evicted": self.pending.evicted,
            "updated": time.time(),
        }
        status.update(extra)
        self.status = status

