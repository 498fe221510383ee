"""Throughput of the full service against bare River, per model preset, on the embedded broker.

    python -m benchmarks.throughput --events 50000 --presets logistic_regression,hoeffding_tree

For each preset, in one process (the machine is shared and noisy, so both arms are measured side
by side, never compared across runs):

1. N labeled events of the ``stationary`` scenario are stamped with the wall clock, encoded once
   and pre-loaded into a fresh one-partition topic of an embedded (Tansu) broker.
2. **bare**: the same bytes, decoded up front with orjson, through a tight in-memory loop of
   ``predict_proba_one`` (``predict_one`` for regressors) then ``learn_one`` on a fresh model, once
   before and once after each service run.
3. **service**: `build_service` exactly as production builds it (snapshots every
   ``--every-events``, admin server on port 0, Prometheus registry), then ``service.run``.
4. The predictions topic is read back for latency; the service's histograms give the model's own
   time inside the service; the `Loop` alone over the same bytes in memory attributes the gap.

Noise only ever slows a run down, so each arm reports its best run (``--rounds`` repeats the
pair); taking the best bare run makes the ratio conservative.

What "service ev/s" measures (`Clock`, in _harness.py): from just before the runner's first poll
to the moment the final snapshot's ``sink.flush()`` returns: every event consumed, decoded,
predicted, published, scored and learned, every periodic snapshot written, every prediction
acknowledged by the broker. Building the service and, after that flush, writing the final
snapshot and closing the clients are excluded; ``run s`` is the whole ``service.run`` call.

Not part of the tests. ``--profile DIR`` writes a cProfile of each service run (main thread only;
the profiler inflates Python-heavy code, so read shares from it, not rates).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import logging
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson

from benchmarks._harness import Clock, Stats, cpu_times, histogram, p50_p99, read_predictions, step_us, table

DEFAULT_PRESETS = "logistic_regression,hoeffding_tree"
FLOORS = {"logistic_regression": 0.35, "hoeffding_tree": 0.6}  # service/bare the team must reach


@dataclass
class ServiceRun:
    rate: float
    seconds: float  # first poll -> final flush
    run_seconds: float  # the whole service.run call
    e2e_ms: tuple[float, float]  # p50, p99 of prediction ts - event ts
    gap_us: tuple[float, float]  # p50, p99 of the time between consecutive predictions
    predict_us: Stats
    learn_us: Stats
    snapshots: int
    snapshot_total_ms: float
    longest_stall_ms: float
    snapshot_kb: float
    cpu: dict[str, float]  # CPU seconds during service.run
    accuracy: float | None


@dataclass
class Result:
    preset: str
    bare_rates: list[float] = field(default_factory=list)
    runs: list[ServiceRun] = field(default_factory=list)
    accuracy_bare: float = float("nan")
    loop: tuple[float, Stats, Stats] | None = None  # ev/s, predict us, learn us of the Loop alone

    @property
    def bare(self) -> float:
        return max(self.bare_rates)

    @property
    def best(self) -> ServiceRun:
        return max(self.runs, key=lambda r: r.rate)

    @property
    def ratio(self) -> float:
        return self.best.rate / self.bare


# -- the events ------------------------------------------------------------------------------


def make_events(n: int, seed: int) -> list[dict]:
    try:
        from stream.scenarios import generate
    except ImportError:  # without the scenarios module, River's generator directly
        from river.datasets import synth

        rows = synth.Agrawal(classification_function=6, seed=seed).take(n)
        return [{"id": f"e-{i:07d}", "x": {k: float(v) for k, v in x.items()}, "y": int(y)}
                for i, (x, y) in enumerate(rows)]
    return list(generate("stationary", n, seed=seed))


def preload(bootstrap: str, topic: str, events: list[dict]) -> tuple[list[bytes], dict[str, float]]:
    """Stamp each event with the wall clock as it is sent; return the bytes sent and id -> ts."""
    from stream.publish import publish

    sent: list[bytes] = []
    stamps: dict[str, float] = {}

    def stamped():
        for event in events:
            stamps[event["id"]] = ts = time.time()
            sent.append(raw := orjson.dumps({**event, "ts": ts}))
            yield raw

    count = publish(bootstrap, topic, stamped(), total=len(events), progress=False)
    if count != len(events):
        raise RuntimeError(f"published {count} of {len(events)} events to {topic}")
    return sent, stamps


# -- the arms --------------------------------------------------------------------------------


def bare_rate(preset: str, raw: list[bytes], seed: int) -> tuple[float, float]:
    """Events per second of predict-then-learn in memory, and the prequential accuracy."""
    from stream.models import build_model, is_classifier

    rows = [(e["x"], e["y"]) for e in map(orjson.loads, raw)]
    model = build_model(preset=preset, seed=seed)
    correct = 0
    if is_classifier(model):
        predict_proba, learn = model.predict_proba_one, model.learn_one
        started = time.perf_counter()
        for x, y in rows:
            proba = predict_proba(x)
            correct += (max(proba, key=proba.get) if proba else None) == y
            learn(x, y)
    else:
        predict, learn = model.predict_one, model.learn_one
        started = time.perf_counter()
        for x, y in rows:
            predict(x)
            learn(x, y)
    return len(rows) / (time.perf_counter() - started), correct / len(rows)


def loop_rate(preset: str, raw: list[bytes], seed: int) -> tuple[float, Stats, Stats]:
    """The service's Loop over the same bytes in memory: no Kafka, no snapshots (attribution only).

    Built from the same configuration and components as `build_service` builds it (decoder, score,
    pending labels, the guard with its detectors, Prometheus metrics), with a `MemorySink`.
    """
    from prometheus_client import CollectorRegistry

    from stream.config import Config
    from stream.events import Decoder
    from stream.loop import Loop, MemorySink, Record
    from stream.metrics import Metrics
    from stream.models import build_from_config, is_classifier
    from stream.pending import PendingStore
    from stream.scoring import Score

    config = Config.build({"model": {"preset": preset, "seed": seed}}, env={})
    model = build_from_config(config.model)
    classifier = is_classifier(model)
    registry = CollectorRegistry()
    loop = Loop(
        model,
        sink=MemorySink(keep=False),
        decoder=Decoder.from_config(config.events, numeric_label=not classifier),
        score=Score.for_model(classifier, window=config.metrics.window),
        pending=PendingStore(config.labels.pending_max, config.labels.ttl_seconds),
        guard=config.build_guard(classifier),
        metrics=Metrics(registry),
    )
    decisions: list = []
    loop.execute = decisions.extend  # no runner to carry them out; a stationary stream should have none
    records = [Record("events", 0, offset, value) for offset, value in enumerate(raw)]
    process = loop.process
    started = time.perf_counter()
    for record in records:
        process(record)
    rate = len(records) / (time.perf_counter() - started)
    if decisions:
        print(f"[{preset}] Loop alone: the guard decided {[d.action for d in decisions]} on a stationary stream;"
              " its rate is not comparable", file=sys.stderr)
    return rate, step_us(registry, "riverguard_predict_duration_seconds"), step_us(
        registry, "riverguard_learn_duration_seconds")


def run_service(broker, preset: str, topics: dict[str, str], stamps: dict[str, float], args, profile_dir):
    from stream.config import Config
    from stream.service import build_service

    n = len(stamps)
    snapshots = {"every_events": args.every_events, "key": "benchmark-key"}
    if args.snapshot_min_interval is not None:  # a key that older configs do not have
        snapshots["min_interval_seconds"] = args.snapshot_min_interval
    with tempfile.TemporaryDirectory(prefix="rg-bench-snap-") as snap_dir:
        config = Config.build({
            "model": {"preset": preset, "seed": args.seed},
            "snapshots": {**snapshots, "dir": snap_dir},
            "kafka": {"bootstrap_servers": broker.bootstrap, "topic": topics["events"], "group_id": topics["group"],
                      "predictions_topic": topics["predictions"], "dead_letter_topic": topics["dlq"]},
            "admin": {"port": 0, "token": "benchmark-token"},
        }, env={})
        service = build_service(config)
        clock = Clock(service)
        profiler = cProfile.Profile() if profile_dir else None
        cpu_before = cpu_times(broker.pid)
        started = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        status = service.run(max_events=n)
        if profiler is not None:
            profiler.disable()
        run_seconds = time.perf_counter() - started
        cpu = {k: v - cpu_before[k] for k, v in cpu_times(broker.pid).items()}
    cpu["threads"] = cpu.pop("process") - cpu["main"]
    if profiler is not None:
        path = Path(profile_dir) / f"service-{preset}-{topics['group']}.prof"
        profiler.dump_stats(path)
        print(f"  cProfile written to {path}", file=sys.stderr)
    if status["learned"] != n or status["predictions"] != n:
        raise RuntimeError(f"service made {status['predictions']} predictions and learned {status['learned']}"
                           f" of {n} events")

    predictions = read_predictions(broker.bootstrap, topics["predictions"], n)
    e2e = [ts - stamps[event_id] for _, event_id, ts in predictions]
    gaps = np.diff(np.array([ts for _, _, ts in sorted(predictions)]))
    registry, runner = service.registry, service.runner
    _, snapshot_total, snapshot_count = histogram(registry, "riverguard_snapshot_duration_seconds")
    seconds = clock.flushed - clock.first_poll
    return ServiceRun(
        rate=n / seconds, seconds=seconds, run_seconds=run_seconds,
        e2e_ms=p50_p99(e2e, 1e3), gap_us=p50_p99(gaps, 1e6),
        predict_us=step_us(registry, "riverguard_predict_duration_seconds"),
        learn_us=step_us(registry, "riverguard_learn_duration_seconds"),
        snapshots=int(snapshot_count), snapshot_total_ms=snapshot_total * 1e3,
        longest_stall_ms=runner.longest_stall * 1e3, snapshot_kb=runner.last_snapshot.size / 1024,
        cpu=cpu, accuracy=status["metric"]["value"],
    )


# -- one preset ----------------------------------------------------------------------------


def bench_preset(broker, preset: str, events: list[dict], args) -> Result:
    result = Result(preset)
    say = lambda what: print(f"[{preset}] {what}", file=sys.stderr)  # noqa: E731
    for round_ in range(args.rounds):
        tag = f"{preset}-{uuid.uuid4().hex[:6]}"
        topics = {"events": f"bench-events-{tag}", "predictions": f"bench-predictions-{tag}",
                  "dlq": f"bench-dlq-{tag}", "group": f"bench-{tag}"}
        broker.create_topics([topics["events"], topics["predictions"], topics["dlq"]], partitions=1)
        say(f"round {round_ + 1}: pre-loading {len(events)} events into {topics['events']}")
        raw, stamps = preload(broker.bootstrap, topics["events"], events)
        say("bare River")
        rate, result.accuracy_bare = bare_rate(preset, raw, args.seed)
        result.bare_rates.append(rate)
        say("service")
        result.runs.append(run_service(broker, preset, topics, stamps, args, args.profile))
        say("bare River")
        result.bare_rates.append(bare_rate(preset, raw, args.seed)[0])
    say("the Loop alone, in memory")
    result.loop = loop_rate(preset, raw, args.seed)
    return result


# -- output --------------------------------------------------------------------------------


def _verdict(r: Result) -> str:
    floor = FLOORS.get(r.preset)
    return f"{r.ratio:.2f}" + ("" if floor is None else " ok" if r.ratio >= floor else f" < {floor}")


def report(results: list[Result], args) -> str:
    us = lambda t: "/".join(f"{v:.0f}" for v in t)  # noqa: E731
    main = table(
        ["preset", "bare ev/s", "service ev/s", "ratio", "p50 ms", "p99 ms", "longest snapshot stall ms",
         "snapshot KB"],
        [[r.preset, f"{r.bare:,.0f}", f"{r.best.rate:,.0f}", _verdict(r), f"{r.best.e2e_ms[0]:,.0f}",
          f"{r.best.e2e_ms[1]:,.0f}", f"{r.best.longest_stall_ms:.1f}", f"{r.best.snapshot_kb:.1f}"]
         for r in results],
    )
    where = table(
        ["preset", "bare runs ev/s", "service runs ev/s", "Loop alone ev/s", "service s", "run s", "snapshots",
         "snapshot ms total", "CPU s main/threads/broker", "accuracy bare/service"],
        [[r.preset, " ".join(f"{x:,.0f}" for x in r.bare_rates), " ".join(f"{s.rate:,.0f}" for s in r.runs),
          f"{r.loop[0]:,.0f}", f"{r.best.seconds:.2f}", f"{r.best.run_seconds:.2f}", str(r.best.snapshots),
          f"{r.best.snapshot_total_ms:.0f}", "/".join(f"{r.best.cpu[k]:.2f}" for k in ("main", "threads", "broker")),
          f"{r.accuracy_bare:.4f}/{r.best.accuracy:.4f}"] for r in results],
    )
    latency = table(
        ["preset", "gap p50 us", "gap p99 us", "predict us: service", "Loop alone", "learn us: service",
         "Loop alone"],
        [[r.preset, f"{r.best.gap_us[0]:.0f}", f"{r.best.gap_us[1]:.0f}",
          us(r.best.predict_us), us(r.loop[1]), us(r.best.learn_us), us(r.loop[2])] for r in results],
    )
    interval = "" if args.snapshot_min_interval is None else f" and >= {args.snapshot_min_interval} s apart"
    return f"""{main}

{args.events} labeled events per preset, snapshots every {args.every_events} events{interval}, seed {args.seed}, \
{args.rounds} round(s); each arm's best run.
bare ev/s     predict_proba_one + learn_one in memory on pre-decoded events (best run).
service ev/s  events / (first poll -> final flush acknowledged): consume, decode, predict, publish, score,
              learn, periodic snapshots, metrics; excludes start-up and writing the final snapshot.
ratio         service / bare. Floors: {", ".join(f"{k} >= {v}" for k, v in FLOORS.items())}.
p50/p99 ms    prediction's ts - event's ts. The events were pre-loaded, so this is the time an event
              waited behind the backlog, not the cost of one event (see gap below).
longest snapshot stall  the longest the loop stood still for one snapshot (flush, pickle, sign, fsync,
              commit); snapshot KB: the last (shutdown) snapshot file.

{where}

Loop alone    the service's Loop over the same bytes in memory, built as the service builds it (guard,
              decoder, score, Prometheus metrics) but with a MemorySink: no Kafka, no snapshots. bare ->
              Loop alone is the code around the model, Loop alone -> service is Kafka and snapshots.
CPU s         CPU seconds during `run s`: the loop's thread, the process' other threads (Kafka client
              I/O, admin server), the broker process. They share 2 cores.

{latency}

gap           time between consecutive predictions = what one event costs inside the service, end to
              end; p99 includes polls and snapshot stalls.
predict/learn the model's own time per event, mean/p50/p99 (Prometheus histograms: coarse buckets,
              quantiles interpolated like histogram_quantile, mean = _sum/_count).
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50000, help="events per preset (default 50000)")
    parser.add_argument("--presets", default=DEFAULT_PRESETS, help=f"comma-separated (default {DEFAULT_PRESETS})")
    parser.add_argument("--every-events", type=int, default=1000, help="snapshot interval (default 1000)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--rounds", type=int, default=1, help="bare/service/bare rounds per preset (default 1)")
    parser.add_argument("--snapshot-min-interval", type=float, metavar="SECONDS",
                        help="[snapshots] min_interval_seconds, for configs that have it (default: unset)")
    parser.add_argument("--profile", metavar="DIR", help="write a cProfile of each service run to DIR")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from stream.broker import EmbeddedBroker

    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    print(f"generating {args.events} events (seed {args.seed})", file=sys.stderr)
    events = make_events(args.events, args.seed)
    # Keep the harness's own copy of the stream out of every full collection of either arm
    # (it cost the bare arm ~8% before).
    gc.collect()
    gc.freeze()
    with EmbeddedBroker() as broker:
        results = [bench_preset(broker, p.strip(), events, args) for p in args.presets.split(",") if p.strip()]
    print(report(results, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
