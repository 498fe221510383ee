"""Guard-quality runs: one stream, its arms, exact accounting by event index, acceptance bars.

A `Case` is a synthetic stream with known incident or change positions and the event ranges its
numbers are measured on; `run_case` (a process-pool task) generates the stream once and runs every
arm of every model over it through `stream.backtest.backtest`, the service's own loop.

Arms:
- ``no-guard``: plain online learning (the guard disabled).
- ``guard``: the default guard, a snapshot every 500 events.
- ``oracle``: the guard disabled; the harness, knowing where the incident is, pauses learning at
  its first event and resumes at the first event after it. Only for incidents: after a real change
  (and on a stationary stream) the best an omniscient operator can do is never pause, which is
  exactly ``no-guard``, so that arm is the reference there.
- ``river-drc``: River's own answer, `river.drift.DriftRetrainingClassifier` around the same
  preset with `drift.binary.DDM` (a background model trains during warnings and replaces the
  model at a drift), guard disabled. Classifiers only: River has no regression counterpart.

Metrics are exact: the backtest's windows are the greatest common divisor of every boundary a case
measures at, so each range is a whole number of windows, re-aggregated from their labeled counts.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from functools import reduce

import orjson
from river import drift

from drift.stats import mcnemar_p
from stream.backtest import backtest
from stream.config import Config
from stream.models import build_model
from stream.scenarios import CHANGE_KINDS, describe, generate, task

ARMS = ("no-guard", "guard", "oracle", "river-drc")
AFTER = 10_000  # events measured after an incident ends (or from a real change)
SNAPSHOT_EVERY = 500
FAMILIES = {  # model family -> preset per task
    "linear": {"classification": "logistic_regression", "regression": "linear_regression"},
    "tree": {"classification": "hoeffding_tree", "regression": "hoeffding_tree_regressor"},
}
# Acceptance bars (DESIGN.md "Incidents the guard must handle", as the team set them).
ORACLE_SLACK = 0.01  # incidents: within 1% (relative) of the oracle after the incident ...
CHANGE_POINTS = 0.01  # real changes, accuracy: at least no-guard - 1 point
CHANGE_MAE_RATIO = 1.05  # real changes, MAE: at most 1.05 x no-guard
DETECT_WITHIN = 200  # unit change x100 or more: first alarm within 200 events of the start


@dataclass(frozen=True)
class Case:
    """A stream (scenario, params, n, seed) and where its numbers are measured."""

    key: str  # what --scenarios matches
    label: str  # the table's row name
    scenario: str
    params: dict
    n: int
    seed: int
    kind: str  # "incident", "change" or "stationary"
    task: str
    after: tuple[int, int]
    during: tuple[int, int] | None
    detect: tuple[int, int] | None  # a first alarm in this range is the detection
    onset: int | None  # alarms before it are false alarms (None: every alarm is)
    pauses: tuple[tuple[int, int], ...]  # the oracle pauses learning over these
    factor: float | None = None

    @property
    def window(self) -> int:
        points = [self.n, *self.after, *(self.during or ()), *(p for pair in self.pauses for p in pair)]
        return reduce(math.gcd, [p for p in points if p], 0) or 1

    def arms(self) -> tuple[str, ...]:
        arms = ARMS if self.kind == "incident" else tuple(a for a in ARMS if a != "oracle")
        return arms if self.task == "classification" else tuple(a for a in arms if a != "river-drc")


def make_case(key: str, scenario: str, n: int, seed: int, label: str | None = None, **params) -> Case:
    """Build a case from a scenario; the measured ranges follow from its incidents (see the module doc)."""
    incidents = describe(scenario, n, seed, **params)
    kind = "stationary" if not incidents else ("change" if incidents[0].kind in CHANGE_KINDS else "incident")
    first = incidents[0] if incidents else None
    during = detect = None
    pauses: tuple = ()
    if kind == "stationary":
        after, onset = (0, n), None  # the whole stream
    elif kind == "incident":
        after, during, detect = (first.end, first.end + AFTER), (first.start, first.end), (first.start, first.end)
        onset, pauses = first.start, ((first.start, first.end),)
    elif first.kind == "gradual_change":  # measured once the new concept has taken over
        after, during, detect = (first.end, first.end + AFTER), (first.start, first.end), (first.start, first.end + AFTER)
        onset = first.start
    else:  # abrupt, recurring: from the first change on (recurring visits are short enough to fit)
        after, onset = (first.start, first.start + AFTER), first.start
        detect = (first.start, first.end) if first.kind == "recurring_change" else after
    if after[1] > n:
        raise ValueError(f"case {key!r}: measuring up to event {after[1]} needs n >= {after[1]}, got {n}")
    return Case(key, label or key, scenario, params, n, seed, kind, task(scenario, params.get("base")),
                after, during, detect, onset, pauses, first.factor if first else None)


class CountingDRC(drift.DriftRetrainingClassifier):
    """River's drift-retraining wrapper that also records the event index of each drift."""

    at = -1  # the harness sets the index of the event being processed

    def _update_detector(self, x, y):
        super()._update_detector(x, y)
        if self.drift_detector.drift_detected:
            if "drifts" not in vars(self):
                self.drifts = []
            self.drifts.append(self.at)


@dataclass
class ArmResult:
    after: float | None
    during: float | None
    overall: float | None
    alarms: list[int]  # event index of every alarm (drift level; River warnings left out)
    rollbacks: int | None
    learned: int
    seconds: float
    decisions: list[dict] = field(default_factory=list)
    alarm_rows: list[dict] = field(default_factory=list)
    windows: list[tuple[int, float | None]] = field(default_factory=list)


def run_case(case: Case, family: str, skip: tuple[str, ...] = ()) -> dict:
    """The arms of one model family on the case's stream (but `skip`): {arm: ArmResult as dict}."""
    _quiet()
    events = [orjson.dumps(e) for e in generate(case.scenario, case.n, case.seed, **case.params)]
    preset = FAMILIES[family][case.task]
    results, losses = {}, {"guard": {}, "no-guard": {}}  # per-event losses: the paired test
    for arm in case.arms():
        if arm not in skip:
            results[arm] = asdict(run_arm(events, case, preset, arm, losses=losses.get(arm)))
    if "guard" in results and "no-guard" in results:
        results["guard"]["vs_no_guard"] = paired(losses["guard"], losses["no-guard"], case.task)
    return results


def paired(guard: dict[int, float], plain: dict[int, float], task_: str) -> dict:
    """Guard against no-guard on the same labeled events, a test of the difference the table shows.

    Accuracy: exact McNemar on the events only one of them got wrong. MAE: the paired test of the
    mean absolute error difference (normal approximation, fine at thousands of events); a sign
    test would ask which model errs less more often, not which has the lower mean.
    """
    differences = [plain[i] - loss for i, loss in guard.items() if i in plain]
    better, worse = sum(d > 0 for d in differences), sum(d < 0 for d in differences)
    p = mcnemar_p(better, worse) if task_ == "classification" else _mean_difference_p(differences)
    return {"better": better, "worse": worse, "p_value": p}


def _mean_difference_p(differences: list[float]) -> float:
    """Two-sided p-value that paired differences have mean zero (z test on their mean)."""
    n = len(differences)
    if n < 2:
        return 1.0
    mean = sum(differences) / n
    spread = math.sqrt(sum((d - mean) ** 2 for d in differences) / (n - 1))
    if spread == 0:
        return 1.0 if mean == 0 else 0.0
    return math.erfc(abs(mean) / (spread / math.sqrt(n)) / math.sqrt(2))


def _quiet() -> None:
    # The loop logs every guard decision as a warning; the report has them. Errors still show.
    logging.getLogger("stream").setLevel(logging.ERROR)


def run_arm(events: list[bytes], case: Case, preset: str, arm: str,
            losses: dict[int, float] | None = None) -> ArmResult:
    """One arm over the stream; `losses`, if given, gets the loss of each labeled event after the case."""
    config = Config.build({"model": {"preset": preset}, "snapshots": {"every_events": SNAPSHOT_EVERY}}, env={})
    model, hook = None, None
    if arm == "oracle":
        starts = {s: e for s, e in case.pauses}
        ends = {e for _, e in case.pauses}

        def hook(index, loop):
            if index in ends and not loop.guard.learning:
                loop.guard.resume(index, "oracle: the incident is over")
            if index in starts:
                loop.guard.pause(index, "oracle: an incident begins")
    elif arm == "river-drc":
        model = CountingDRC(build_model(preset=preset), drift_detector=drift.binary.DDM())

        def hook(index, loop):
            loop.model.at = index
    on_labeled = None
    if losses is not None:
        start, end = case.after

        def on_labeled(index, loss):
            if start <= index < end:
                losses[index] = loss
    report = backtest(events, config, guard=arm == "guard", window=case.window, model=model, on_event=hook,
                      on_labeled=on_labeled)
    return summarise(report, case, drifts=getattr(model, "drifts", []) if model is not None else None)


def summarise(report: dict, case: Case | None, drifts: list[int] | None = None) -> ArmResult:
    windows = report["windows"]
    name = report["metric"]["name"]
    if drifts is None:
        alarms = [a["at"] for a in report["alarms"] if a.get("level") != "warning"]
    else:
        alarms = list(drifts)
    return ArmResult(
        after=metric_over(windows, name, *case.after) if case else None,
        during=metric_over(windows, name, *case.during) if case and case.during else None,
        overall=report["metric"]["value"],
        alarms=alarms,
        rollbacks=None if drifts is not None else report["rollbacks"],
        learned=report["learned"],
        seconds=report["seconds"],
        decisions=[_compact(d) for d in report["decisions"]],
        alarm_rows=[_compact(a) for a in report["alarms"]][:200],
        windows=[(w["start"], w["metric"]) for w in windows],
    )


def metric_over(windows: list[dict], name: str, start: int, end: int) -> float | None:
    """Accuracy or MAE over the labeled events with index in [start, end); windows must align."""
    loss = labeled = 0.0
    for w in windows:
        if w["end"] <= start or w["start"] >= end:
            continue
        if w["start"] < start or w["end"] > end:
            raise ValueError(f"window [{w['start']}, {w['end']}) straddles the range [{start}, {end})")
        if w["labeled"]:
            per_event = 1.0 - w["metric"] if name == "accuracy" else w["metric"]
            loss += per_event * w["labeled"]
            labeled += w["labeled"]
    if not labeled:
        return None
    return 1.0 - loss / labeled if name == "accuracy" else loss / labeled


def _compact(row: dict) -> dict:
    """A decision or alarm for the JSON file, without the raw windows of values in its evidence."""
    def small(value):
        if isinstance(value, dict):
            return {k: small(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)) and len(value) > 8:
            return f"<{len(value)} values>"
        return value
    return small(row)


# -- acceptance --------------------------------------------------------------------------------


def first_detection(case: Case, alarms: list[int]) -> int | None:
    if case.detect is None:
        return None
    hits = [a for a in alarms if case.detect[0] <= a < case.detect[1]]
    return min(hits) - case.detect[0] if hits else None


def false_alarms(case: Case, alarms: list[int]) -> int:
    return len(alarms) if case.onset is None else sum(a < case.onset for a in alarms)


def better_by(task_: str, value: float | None, reference: float | None, relative: bool) -> float | None:
    """How much better `value` is than `reference` (negative: worse): points or a relative share."""
    if value is None or reference is None:
        return None
    diff = value - reference if task_ == "classification" else reference - value
    return diff / abs(reference) if relative and reference else diff


def verdict(case: Case, arms: dict) -> list[str]:
    """The bars the guard arm fails ([] = pass), given every arm's results for one model."""
    guard, plain = arms["guard"], arms["no-guard"]
    failed = []
    if case.kind == "stationary":
        if guard["rollbacks"]:
            failed.append("rollbacks")
        return failed
    if case.kind == "incident":
        vs_oracle = better_by(case.task, guard["after"], arms["oracle"]["after"], relative=True)
        if vs_oracle is None or vs_oracle < -ORACLE_SLACK:
            failed.append("oracle")
        vs_plain = better_by(case.task, guard["after"], plain["after"], relative=False)
        if vs_plain is None or vs_plain < 0:
            # Where pausing itself costs (a harmless incident), even the oracle misses this bar.
            oracle_too = better_by(case.task, arms["oracle"]["after"], plain["after"], relative=False)
            failed.append("no-guard (oracle too)" if oracle_too is not None and oracle_too < 0 else "no-guard")
        if case.scenario.endswith("unit_change") and (case.factor or 0) >= 100:
            delay = first_detection(case, guard["alarms"])
            if delay is None or delay > DETECT_WITHIN:
                failed.append("delay")
    else:
        if case.task == "classification":
            ok = guard["after"] is not None and guard["after"] >= plain["after"] - CHANGE_POINTS
        else:
            ok = guard["after"] is not None and guard["after"] <= CHANGE_MAE_RATIO * plain["after"]
        if not ok:
            failed.append("no-guard")
    return failed


# -- real streams ------------------------------------------------------------------------------

SEGMENT = 5_000


def run_file(path, options: dict, preset: str) -> dict:
    """A CSV file through no-guard and guard: accuracy overall and per 5,000 events, alarms, decisions.

    The logistic_regression preset is a binary model of 0/1 labels: on string or multiclass labels
    (Elec2's UP/DOWN, INSECTS' six classes) it never predicts a label, so there the linear model is
    the same pipeline with `multiclass.OneVsRestClassifier` around the logistic regression.
    Returns ``{"model": name, "arms": {arm: result}}``.
    """
    from stream.files import iter_events

    _quiet()
    events = list(iter_events(path, **options))
    labels = {orjson.loads(e).get("y") for e in events}
    one_vs_rest = preset == "logistic_regression" and not labels <= {0, 1}
    config = Config.build({"model": {"preset": preset}, "snapshots": {"every_events": SNAPSHOT_EVERY}}, env={})
    arms = {}
    for arm in ("no-guard", "guard"):
        model = _one_vs_rest_logistic() if one_vs_rest else None
        report = backtest(events, config, guard=arm == "guard", window=SEGMENT, model=model)
        result = asdict(summarise(report, None))
        result["segments"] = result.pop("windows")
        result["events"] = report["events"]
        result["invalid"] = report["invalid_by_reason"]
        arms[arm] = result
    return {"model": preset + (" (one-vs-rest)" if one_vs_rest else ""), "arms": arms}


def _one_vs_rest_logistic():
    from river import compose, linear_model, multiclass

    from stream.features import Prepare

    return compose.Pipeline(Prepare(scale=True), multiclass.OneVsRestClassifier(linear_model.LogisticRegression()))
