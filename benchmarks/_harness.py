"""Measuring instruments of the throughput benchmark: clocks on the runner, CPU times, read-back,
and the numbers Prometheus histograms give. No opinions about what is measured: see throughput.py.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import orjson

READ_BACK_TIMEOUT_S = 120.0
Stats = tuple[float, float, float]  # mean, p50, p99


class Clock:
    """Timestamps taken by wrapping the runner's own collaborators: nothing is added per event.

    `first_poll`: before the runner's first `source.poll`. `drained`: the shutdown snapshot begins
    (every event processed and learned). `flushed`: that snapshot's `sink.flush()` has returned.
    """

    def __init__(self, service) -> None:
        self.first_poll = self.drained = self.flushed = None
        runner, source, sink = service.runner, service.source, service.sink
        poll, snapshot, flush = source.poll, runner.snapshot, sink.flush

        def timed_poll(timeout):
            if self.first_poll is None:
                self.first_poll = time.perf_counter()
            return poll(timeout)

        def timed_snapshot(reason, *args, **kwargs):
            if reason == "shutdown":
                self.drained = time.perf_counter()
            return snapshot(reason, *args, **kwargs)

        def timed_flush():
            flush()
            if self.drained is not None and self.flushed is None:
                self.flushed = time.perf_counter()

        # Instance attributes shadow the methods the runner calls as `self.source.poll` etc.
        source.poll, runner.snapshot, sink.flush = timed_poll, timed_snapshot, timed_flush


def cpu_times(broker_pid: int | None) -> dict[str, float]:
    """CPU seconds so far of this thread, this process and the broker process (from /proc)."""
    process = os.times()
    times = {"main": time.thread_time(), "process": process.user + process.system, "broker": 0.0}
    try:
        fields = Path(f"/proc/{broker_pid}/stat").read_text().rsplit(")", 1)[1].split()
        times["broker"] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError, TypeError):
        pass
    return times


def read_predictions(bootstrap: str, topic: str, n: int) -> list[tuple[int, str, float]]:
    """(offset, id, ts) of the first n predictions; counted, not trusted to end offsets (Tansu)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                             auto_offset_reset="earliest", max_partition_fetch_bytes=4 * 1024 * 1024)
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    out: list[tuple[int, str, float]] = []
    deadline = time.monotonic() + READ_BACK_TIMEOUT_S
    try:
        while len(out) < n and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500, max_records=10000).values():
                out += [(r.offset, (p := orjson.loads(r.value))["id"], p["ts"]) for r in records]
    finally:
        consumer.close()
    if len(out) < n:
        raise RuntimeError(f"read back {len(out)} of {n} predictions from {topic}")
    return out[:n]



# -- numbers -------------------------------------------------------------------------------


def histogram(registry, name: str) -> tuple[list[tuple[float, float]], float, float]:
    """Cumulative (upper bound, count) buckets, sum and count of an unlabeled histogram."""
    buckets, total, count = [], 0.0, 0.0
    for family in registry.collect():
        if family.name == name:
            for s in family.samples:
                if s.name.endswith("_bucket"):
                    buckets.append((float(s.labels["le"]), s.value))
                elif s.name.endswith("_sum"):
                    total = s.value
                elif s.name.endswith("_count"):
                    count = s.value
    return sorted(buckets), total, count


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus' histogram_quantile: linear interpolation inside the bucket holding rank q."""
    if not buckets or buckets[-1][1] == 0:
        return float("nan")
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for upper, cumulative in buckets:
        if cumulative >= rank:
            if upper == float("inf"):
                return lower  # like Prometheus: the highest finite bound
            return lower + (upper - lower) * (rank - below) / max(cumulative - below, 1e-12)
        lower, below = upper, cumulative
    return lower


def step_us(registry, name: str) -> Stats:
    buckets, total, count = histogram(registry, name)
    mean = total / count * 1e6 if count else float("nan")
    return mean, histogram_quantile(0.5, buckets) * 1e6, histogram_quantile(0.99, buckets) * 1e6


def p50_p99(values, scale: float) -> tuple[float, float]:
    a = np.asarray(values, dtype=float) * scale
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


# -- output --------------------------------------------------------------------------------


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(c.rjust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])
