"""Concept drift: a River detector on the live model's loss stream, gated by direction and size.

The loss is the 0/1 loss of a classifier, or the absolute error of a regressor; the River detector
sees the latter divided by a running reference level of the error (clipped to [0, 10]), so that one
detector setting fits every target scale. River detectors also fire when the error falls (the model
improves while it learns) and on changes too small to matter: both are swallowed here. A drift is
reported only when the error rose, judged on our own loss history: `drift.stats.change_point`
estimates the onset, and the mean loss since the onset must exceed the mean before by
`min_increase` (classification, in error-rate units) or by a factor `min_ratio` (regression), and
stand out of the noise. A stationary stream must never roll the model back.

>>> import numpy as np
>>> rng = np.random.default_rng(7)
>>> losses = np.concatenate([rng.random(3000) < 0.07, rng.random(600) < 0.5]).astype(int)
>>> detector = ConceptDetector("adwin")
>>> signals = [s for i, x in enumerate(losses.tolist()) if (s := detector.update(i, x))]
>>> [(s.detector, s.level, s.at, s.onset) for s in signals]
[('concept:adwin', 'drift', 3051, 3012)]
>>> signal = signals[0]
>>> round(signal.before, 3), round(signal.after, 3), signal.threshold, signal.window
(0.076, 0.575, 0.08, (2012, 3051))
>>> detector.baseline() == signal.before   # the level the guard waits for
True
"""

from __future__ import annotations

import inspect
import math
from dataclasses import asdict, dataclass

import numpy as np
from river import drift as river_drift
from river.drift import binary as river_binary

from drift.stats import change_point

DETECTORS = ("adwin", "page_hinkley", "kswin", "ddm", "eddm", "fhddm", "hddm_a", "hddm_w")
BINARY_DETECTORS = ("ddm", "eddm", "fhddm", "hddm_a", "hddm_w")
REGRESSION_DETECTORS = tuple(d for d in DETECTORS if d not in BINARY_DETECTORS)  # on any loss, not only 0/1
TASKS = ("classification", "regression")

_RIVER_CLASSES = {
    "adwin": river_drift.ADWIN,
    "page_hinkley": river_drift.PageHinkley,
    "kswin": river_drift.KSWIN,
    "ddm": river_binary.DDM,
    "eddm": river_binary.EDDM,
    "fhddm": river_binary.FHDDM,
    "hddm_a": river_binary.HDDMA,
    "hddm_w": river_binary.HDDMW,
}
# Our defaults where River's do not suit a loss stream; `params` override them.
_DEFAULT_PARAMS = {
    "kswin": {"seed": 0},  # reproducible, and identical after a snapshot round trip
    # Alarms on a falling error are swallowed here, but they restart the detector: it keeps no
    # memory of a worse past, which would blunt it to a later rise.
    "hddm_a": {"two_sided_test": True},
    "hddm_w": {"two_sided_test": True},
}
# River's FHDDM alarms when the rate of 1s falls (it watches accuracy): feed it 1 - loss.
_FEEDS_ACCURACY = frozenset({"fhddm"})

_MAX_SCALED_ERROR = 10.0
_FAST_LEVEL_RATE = 0.02  # during warm-up the error falls steeply: the level follows it
_SLOW_LEVEL_RATE = 0.002  # afterwards it moves slowly, so that a gradual drift is not absorbed
_RECENT_RATE = 0.02  # a short average of the loss: above the level, a rise is suspected
_MIN_SEGMENT = 10  # fewest events on either side of a change point
_MIN_EVIDENCE = 100  # fewest latest events a rise is judged on: bursts of errors are no drift
_MIN_BASELINE = 100  # fewest events the level before a rise is measured on
_MAX_BASELINE = 1000  # and most: the latest level counts, not the learning curve before it
_MIN_Z = 4.5  # a rise must stand out of its own noise by this many standard errors
_WARNING_Z = 3.0  # a warning, of half the effect size, by this many
_WATCH = 500  # events a rise that failed the gate is looked for again (River forgets it at once)
_WATCH_Z = 5.5  # standard errors a rise found so needs: many looks need plainer evidence than one
_RETRY = 10  # while watching, or within a warning episode, estimate again this often (events)
_WARNING_QUIET = 100  # events without River's warning flag that end a warning episode


@dataclass(frozen=True)
class ConceptSignal:
    """A rise of the model's error reported by `ConceptDetector.update`: evidence for the guard."""

    at: int  # event index (of the labeled event) when it fired
    detector: str  # "concept:adwin", "concept:ddm", ...
    kind: str  # "concept"
    level: str  # "warning" or "drift"
    statistic: str  # "mean_loss" (classification) or "scaled_abs_error" (regression)
    before: float  # mean loss before the estimated onset
    after: float  # mean loss since the estimated onset
    threshold: float  # the effect-size gate that was passed
    onset: int  # estimated event index where the error began to rise
    window: tuple[int, int]  # event index range the estimate used

    def to_dict(self) -> dict:
        data = asdict(self)
        data["window"] = list(self.window)
        return data


class ConceptDetector:
    """A River drift detector on a loss stream that reports only meaningful rises of the error.

    `update(index, loss)` takes the loss of one labeled event: 0 or 1 for classification, the
    absolute error for regression. `baseline()` is the loss level (in the units given to `update`)
    of the latest normal period; `reset()` starts afresh, warm-up included, once the guard has
    resolved a quarantine. Updates count in the order they come; `index` is only recorded.

    Of the detectors, ADWIN is the default: quick, and silent on stationary streams. KSWIN runs a
    SciPy KS test per event (~0.3 ms) and barely sees a change of a 0/1 rate; FHDDM (fed 1 - loss:
    River's FHDDM watches accuracy) and HDDM_W only see large rises; EDDM and Page-Hinkley alarm
    often on noise, which the gate swallows.
    """

    def __init__(
        self,
        name: str = "adwin",
        *,
        task: str = "classification",
        params: dict | None = None,
        min_increase: float = 0.08,
        min_ratio: float = 1.5,
        history: int = 3000,
        warmup: int = 300,
    ):
        if name not in DETECTORS:
            raise ValueError(f"unknown concept detector {name!r}; expected one of {DETECTORS}")
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
        if task == "regression" and name in BINARY_DETECTORS:
            raise ValueError(
                f"concept detector {name!r} takes 0/1 losses only; "
                f"for regression use one of {REGRESSION_DETECTORS}"
            )
        if not min_increase > 0:
            raise ValueError(f"min_increase must be > 0, got {min_increase}")
        if not min_ratio > 1:
            raise ValueError(f"min_ratio must be > 1, got {min_ratio}")
        if history < _MIN_BASELINE + _MIN_EVIDENCE:
            raise ValueError(f"history must be >= {_MIN_BASELINE + _MIN_EVIDENCE}, got {history}")
        if warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {warmup}")
        self.name = name
        self.task = task
        self.params = _check_params(name, params or {})
        self.min_increase = float(min_increase)
        self.min_ratio = float(min_ratio)
        self.history = int(history)
        self.warmup = int(warmup)
        self._label = f"concept:{name}"
        self._gives_warnings = name in BINARY_DETECTORS and name not in _FEEDS_ACCURACY
        # The long-run loss level: the regression scale, and the baseline while no drift is known.
        self._level: float | None = None
        self._recent = 0.0
        self.reset()

    def reset(self) -> None:
        """A fresh River detector and loss history; the warm-up starts again."""
        self._river = _RIVER_CLASSES[self.name](**self.params)
        self._index = np.zeros(self.history, dtype=np.int64)
        self._loss = np.zeros(self.history, dtype=np.float64)  # regression: capped at 10 x level
        self._next = 0  # ring position of the next write
        self._valid = 0  # how many latest entries belong to the current period
        self._updates = 0
        self._drift_before: float | None = None
        self._watch_until = 0  # a rise failed the gate at an alarm: look again until this update
        self._retry_at = 0
        self._in_warning = False
        self._warned = False
        self._warned_onset: int | None = None
        self._quiet = 0
        self._warning_retry_at = 0

    def baseline(self) -> float | None:
        """Pre-onset loss level of the latest normal period, in the units given to `update`.

        The mean loss before the onset of the last reported drift, or else the long-run level while
        learning (a slow average, frozen while a rise is suspected). None before any update.
        """
        return self._drift_before if self._drift_before is not None else self._level

    def update(self, index: int, loss: float) -> ConceptSignal | None:
        """Record the loss of one labeled event; a signal when the error rose significantly."""
        loss = self._capped(index, loss)
        self._record(index, loss)
        value = loss if self.task == "classification" else self._scaled(loss)
        river = self._river
        river.update((1 - value) if self.name in _FEEDS_ACCURACY else value)
        self._updates += 1
        self._track_level(loss)

        if self._updates <= self.warmup:
            if self._updates == self.warmup:
                # Detectors that keep statistics since their start (DDM, HDDM, Page-Hinkley) would
                # remember the steep fall of the warm-up and be blunt: restart on a learned model.
                self._river = _RIVER_CLASSES[self.name](**self.params)
            return None
        if river.drift_detected:  # River resets itself on the next update: act now
            return self._on_alarm(index)
        if self._updates < self._watch_until and self._updates >= self._retry_at:
            signal = self._on_watch(index)
            if signal is not None:
                return signal
        if self._gives_warnings:
            return self._on_warning_flag(index, river.warning_detected)
        return None

    # -- the pieces of an update ---------------------------------------------------------------

    def _capped(self, index: int, loss: float) -> float:
        loss = float(loss)
        if self.task == "classification":
            if loss not in (0.0, 1.0):
                raise ValueError(f"event {index}: classification loss must be 0 or 1, got {loss}")
            return loss
        if not (math.isfinite(loss) and loss >= 0.0):
            raise ValueError(f"event {index}: regression loss must be a finite |error|, got {loss}")
        # One wild prediction must weigh no more than ten typical errors, in every statistic.
        return min(loss, _MAX_SCALED_ERROR * self._level) if self._level else loss

    def _scaled(self, loss: float) -> float:
        if self._level:
            return loss / self._level
        return 1.0 if loss else 0.0  # no level yet, or only exact predictions so far

    def _record(self, index: int, loss: float) -> None:
        pos = self._next
        self._index[pos] = index
        self._loss[pos] = loss
        self._next = (pos + 1) % self.history
        if self._valid < self.history:
            self._valid += 1

    def _track_level(self, loss: float) -> None:
        """Follow the long-run loss level, except while a rise of the error is suspected."""
        if self._level is None:
            self._level = self._recent = loss
            return
        self._recent += _RECENT_RATE * (loss - self._recent)
        if self.task == "classification":
            suspected = self._recent - self._level >= self.min_increase / 2
        else:
            suspected = self._recent >= self._level * (1 + (self.min_ratio - 1) / 2)
        warming = self._updates <= self.warmup
        watching = self._in_warning or self._updates < self._watch_until
        if warming or not (suspected or watching):
            rate = max(_FAST_LEVEL_RATE, 1 / self._updates) if warming else _SLOW_LEVEL_RATE
            self._level += rate * (loss - self._level)

    def _on_alarm(self, index: int) -> ConceptSignal | None:
        """River's detector fired: report a rise that passes the gate, else watch it or drop it."""
        estimate = self._estimate()
        if estimate is None:  # the error fell
            self._watch_until = 0
            return None
        if self._passes(estimate, "drift"):
            return self._report(index, estimate)
        # Too small or too unclear so far (or the alarm came a few events after the change). River's
        # detector forgets it on the next update: look again for a while, on plainer evidence,
        # since each look is one more chance for noise to pass.
        self._watch_until = self._updates + _WATCH
        self._retry_at = self._updates + _RETRY
        return None

    def _on_watch(self, index: int) -> ConceptSignal | None:
        self._retry_at = self._updates + _RETRY
        estimate = self._estimate()
        if estimate is None or estimate.z < _WATCH_Z:
            return None
        return self._report(index, estimate) if self._passes(estimate, "drift") else None

    def _report(self, index: int, estimate: _Estimate) -> ConceptSignal:
        self._drift_before = estimate.before
        self._valid = min(estimate.kept, self._valid)  # the new period starts at the onset
        self._watch_until = 0
        self._in_warning = False
        self._warned_onset = None
        return self._signal(index, "drift", estimate)

    def _on_warning_flag(self, index: int, flag: bool) -> ConceptSignal | None:
        """One warning per episode of a rise, however often River's warning flag flickers."""
        if not flag:
            self._quiet += 1
            if self._in_warning and self._quiet >= _WARNING_QUIET:
                self._in_warning = False
            return None
        self._quiet = 0
        if not self._in_warning:
            self._in_warning, self._warned, self._warning_retry_at = True, False, self._updates
        if self._warned or self._updates < self._warning_retry_at:
            return None
        self._warning_retry_at = self._updates + _RETRY
        estimate = self._estimate()
        if estimate is None or not self._passes(estimate, "warning"):
            return None
        self._warned = True
        last, self._warned_onset = self._warned_onset, estimate.onset
        if last is not None and abs(estimate.onset - last) < _MIN_EVIDENCE:
            return None
        return self._signal(index, "warning", estimate)

    # -- estimation ----------------------------------------------------------------------------

    def _estimate(self) -> _Estimate | None:
        """The latest rise of the loss in the current period: the segments before and after it.

        `change_point` finds one change; if it is a fall (the model improving), the search goes on
        after it, so that an old fall does not hide a recent rise. The level before a rise is
        measured on the latest `_MIN_BASELINE` to `_MAX_BASELINE` events, reaching back over such a
        fall if need be: a segment picked by the search, starting where the error fell, starts low.
        """
        n, end = self._valid, self._next
        order = np.arange(end - n, end) % self.history
        index, losses = self._index[order], self._loss[order]
        # Noise measured on the whole period, as if nothing changed: a short run without errors
        # must not look noiseless.
        spread = float(losses.std()) if n else 0.0
        start = 0
        while n - start >= 2 * _MIN_SEGMENT:
            segment = losses[start:]
            k = change_point(segment, min_size=_MIN_SEGMENT)
            if segment[k:].mean() > segment[:k].mean():
                onset = start + k
                first = max(0, onset - _MAX_BASELINE, min(start, onset - _MIN_BASELINE))
                return _Estimate(
                    before=float(losses[first:onset].mean()),
                    head=onset - first,
                    spread=spread,
                    after=float(losses[onset:].mean()),
                    kept=n - onset,
                    judged=float(losses[max(0, min(onset, n - _MIN_EVIDENCE)) :].mean()),
                    onset=int(index[onset]),
                    first=int(index[first]),
                )
            start += k
        return None

    def _threshold(self, level: str) -> float:
        """The effect-size gate: an increase (classification) or a ratio; half of it to warn."""
        share = 1.0 if level == "drift" else 0.5
        if self.task == "classification":
            return share * self.min_increase
        return 1 + share * (self.min_ratio - 1)

    def _passes(self, rise: _Estimate, level: str) -> bool:
        """The effect-size gate, and a rise plain in our own data."""
        if rise.head < _MIN_BASELINE or rise.z < (_MIN_Z if level == "drift" else _WARNING_Z):
            return False
        after = min(rise.judged, rise.after)  # so that the signal shows what passed
        if self.task == "classification":
            return after - rise.before >= self._threshold(level)
        return after >= rise.before * self._threshold(level)

    def _signal(self, index: int, level: str, estimate: _Estimate) -> ConceptSignal:
        if self.task == "classification":
            statistic, unit = "mean_loss", 1.0
        else:  # in units of the reference level, which is frozen while a rise is suspected
            statistic, unit = "scaled_abs_error", self._level or 1.0
        return ConceptSignal(
            at=int(index),
            detector=self._label,
            kind="concept",
            level=level,
            statistic=statistic,
            before=estimate.before / unit,
            after=estimate.after / unit,
            threshold=self._threshold(level),
            onset=estimate.onset,
            window=(estimate.first, int(index)),
        )


@dataclass(frozen=True)
class _Estimate:
    """A rise found in the loss history: the split at `onset` and what lies on either side."""

    before: float  # mean loss before the onset (over `head` events)
    head: int
    spread: float  # standard deviation of the loss over the whole period
    after: float  # mean loss since the onset (over `kept` events)
    kept: int
    judged: float  # mean since the onset, or over the last _MIN_EVIDENCE events if more
    onset: int  # event index of the first event after the change
    first: int  # event index of the first event before it that was used

    @property
    def z(self) -> float:
        """The judged rise in units of its standard error."""
        error = self.spread * math.sqrt(1 / self.head + 1 / max(self.kept, _MIN_EVIDENCE))
        rise = self.judged - self.before
        return rise / error if error > 0 else (math.inf if rise > 0 else 0.0)


def _check_params(name: str, params: dict) -> dict:
    """Our defaults for `name` overridden by `params`; an unknown parameter is an error."""
    accepted = set(inspect.signature(_RIVER_CLASSES[name].__init__).parameters) - {"self"}
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise ValueError(
            f"unknown parameter {unknown[0]!r} for concept detector {name!r}; "
            f"it accepts {sorted(accepted)}"
        )
    return {**_DEFAULT_PARAMS.get(name, {}), **params}
