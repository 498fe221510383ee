"""Backtest: the service's own loop and runner over a JSONL/CSV file, no Kafka, with a JSON report.

The file is the source (the event's index in the file is its offset) and predictions go to memory;
snapshots are real files in a temporary directory, so rollbacks behave exactly as in the service.
"""

from __future__ import annotations

import secrets
import tempfile
import threading
import time
from collections import Counter
from itertools import islice
from pathlib import Path
from typing import Callable, Iterable, Iterator

from stream.config import Config
from stream.events import Decoder
from stream.loop import Loop
from stream.records import MemorySink, Record
from stream.models import build_from_config, is_classifier
from stream.pending import PendingStore
from stream.runner import Runner
from stream.scoring import Score
from stream.snapshots import SnapshotStore

FILE_TOPIC = "file"


class FileSource:
    """Records from an iterable of raw events; offsets are 0-based positions in the file."""

    def __init__(self, events: Iterable[bytes], batch: int = 1000) -> None:
        self._events: Iterator[bytes] = iter(events)
        self._next = 0
        self.batch = batch

    def poll(self, timeout: float) -> list[Record] | None:
        chunk = list(islice(self._events, self.batch))
        if not chunk:
            return None
        start = self._next
        self._next += len(chunk)
        return [Record(FILE_TOPIC, 0, start + i, raw) for i, raw in enumerate(chunk)]

    def seek(self, offsets: dict[tuple[str, int], int]) -> None:
        target = offsets.get((FILE_TOPIC, 0), 0)
        for _ in islice(self._events, max(0, target - self._next)):
            pass
        self._next = max(self._next, target)

    def commit(self, offsets) -> None:
        pass

    def lag(self) -> dict:
        return {}


class WindowObserver:
    """Per-window metric and modes, keyed by the event's index in the file."""

    def __init__(self, score_name: str, window: int) -> None:
        self.window = window
        self.score_name = score_name
        self.loss: dict[int, list[float]] = {}
        self.modes: dict[int, Counter] = {}
        self.hook: Callable[[int], None] | None = None
        self.labeled_hook: Callable[[int, float], None] | None = None

    def on_event(self, index: int, mode: str) -> None:
        if self.hook is not None:
            self.hook(index)
        w = index // self.window
        counts = self.modes.get(w)
        if counts is None:
            counts = self.modes[w] = Counter()
        counts[mode] += 1

    def on_labeled(self, index: int, loss: float) -> None:
        if self.labeled_hook is not None:
            self.labeled_hook(index, loss)
        entry = self.loss.setdefault(index // self.window, [0.0, 0])
        entry[0] += loss
        entry[1] += 1

    def windows(self) -> list[dict]:
        rows = []
        for w in sorted(self.modes):
            loss_sum, n = self.loss.get(w, (0.0, 0))
            metric = None
            if n:
                metric = 1.0 - loss_sum / n if self.score_name == "accuracy" else loss_sum / n
            modes = self.modes[w]
            rows.append({
                "start": w * self.window,
                "end": w * self.window + sum(modes.values()),
                "metric": metric,
                "labeled": n,
                "mode": modes.most_common(1)[0][0],
                "modes": dict(modes),
            })
        return rows


def backtest(
    events: Iterable[bytes],
    config: Config,
    *,
    guard: bool = True,
    window: int = 1000,
    snapshot_dir: str | Path | None = None,
    model=None,
    on_event: Callable[[int, Loop], None] | None = None,
    on_labeled: Callable[[int, float], None] | None = None,
) -> dict:
    """Run the loop over `events` (raw bytes, in order) and return the report of DESIGN.md.

    `model` replaces the configured one (a benchmark's baseline); `on_event(index, loop)` runs
    before each event (a harness acting as the operator, e.g. pausing during a known incident);
    `on_labeled(index, loss)` gets the live model's loss on each labeled event (paired tests).
    """
    model = model if model is not None else build_from_config(config.model)
    classifier = is_classifier(model)
    score = Score.for_model(classifier, window=config.metrics.window)
    observer = WindowObserver(score.name, window)
    loop = Loop(
        model,
        sink=MemorySink(keep=False),
        decoder=Decoder.from_config(config.events, numeric_label=not classifier),
        score=score,
        pending=PendingStore(config.labels.pending_max, config.labels.ttl_seconds),
        guard=config.build_guard(classifier, enabled=guard, history=None),
        observer=observer,
    )
    if on_event is not None:
        observer.hook = lambda index: on_event(index, loop)
    observer.labeled_hook = on_labeled
    with tempfile.TemporaryDirectory(prefix="riverguard-backtest-") as tmp:
        store = SnapshotStore(snapshot_dir or tmp, secrets.token_bytes(32), keep=config.snapshots.keep)
        runner = Runner(
            loop, FileSource(events), store,
            every_events=config.snapshots.every_events,
            model_spec=config.model.spec,
        )
        runner.resume()  # a fresh store: writes the initial restore point, as the service does
        started = time.perf_counter()
        runner.run(threading.Event())
        elapsed = time.perf_counter() - started
    c = loop.counters
    guard_state = loop.guard
    return {
        "events": c.events,
        "labeled": c.labeled,
        "invalid": sum(c.invalid.values()),
        "invalid_by_reason": dict(c.invalid),
        "metric": {"name": score.name, "value": score.value},
        "windows": observer.windows(),
        "alarms": [_alarm_row(a) for a in guard_state.alarms],
        "decisions": [d.to_dict() for d in guard_state.decisions],  # the journal's own records
        "rollbacks": sum(guard_state.rollback_counts.values()),
        "learned": c.learned,
        "outliers": c.outliers,
        "stood_in": c.stood_in,
        "model": config.model.spec,
        "guard": guard_state.settings.enabled,
        "seconds": round(elapsed, 3),
    }


def _alarm_row(alarm: dict) -> dict:
    row = {"at": alarm["at"], "detector": alarm["detector"], "kind": alarm["kind"]}
    row.update({k: alarm[k] for k in ("level", "statistic", "value", "onset") if k in alarm})
    return row

