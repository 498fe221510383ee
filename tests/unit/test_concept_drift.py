"""The concept-drift detector on synthetic loss streams: no drift where there is none, the right
onset where there is one, and only rises of the error count.

Streams are NumPy draws with fixed seeds, so every test is deterministic. KSWIN costs ~0.3 ms per
update (a SciPy KS test per event), so its streams are kept short.
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drift.concept import BINARY_DETECTORS, DETECTORS, ConceptDetector, ConceptSignal

NON_BINARY = tuple(d for d in DETECTORS if d not in BINARY_DETECTORS)
JUMP_AT = 4000

# Events from the change to the first drift signal, at most. The largest delays seen on 40 seeds,
# to 0.5 / to 0.35: adwin 67 / 131, page_hinkley 160 / 257, ddm 150 / 299, eddm 336 / 494,
# fhddm 70 / 194, hddm_a 121 / 190, hddm_w 70 / 236. The seeds here are typical ones.
DELAY_TO_HALF = {"adwin": 100, "page_hinkley": 200, "kswin": 200, "ddm": 200, "eddm": 400,
                 "fhddm": 100, "hddm_a": 150, "hddm_w": 150}  # fmt: skip
DELAY_TO_035 = {"adwin": 150, "page_hinkley": 400, "ddm": 400, "eddm": 700, "fhddm": 300,
                "hddm_a": 300, "hddm_w": 400}  # fmt: skip


def learning_curve(n: int, rate: float = 0.07, seed: int = 0) -> np.ndarray:
    """0/1 losses of a classifier that learns: error from 0.4 down to `rate` over 2,000 events."""
    p = np.full(n, rate)
    p[:2000] = np.linspace(0.4, rate, 2000)[: min(n, 2000)]
    return (np.random.default_rng(seed).random(n) < p).astype(int)


def jump(after: float, *, before: float = 0.07, length: int = 1000, seed: int = 0) -> np.ndarray:
    """The learning curve to `before`, then from event JUMP_AT an error rate of `after`."""
    rng = np.random.default_rng(seed + 1000)
    return np.concatenate([learning_curve(JUMP_AT, before, seed), rng.random(length) < after])


def abs_errors(n: int, seed: int = 0, scale: float = 250.0, learning: bool = True) -> np.ndarray:
    """|error| of a regressor (Gaussian residuals), its spread falling from 3 to 1 as it learns."""
    sd = np.ones(n)
    if learning:
        sd[:2000] = np.linspace(3.0, 1.0, 2000)[: min(n, 2000)]
    return np.abs(np.random.default_rng(seed).normal(0.0, sd)) * scale


def run(detector: ConceptDetector, losses, start: int = 0) -> list[ConceptSignal]:
    signals = []
    for i, loss in enumerate(np.asarray(losses).tolist(), start=start):
        signal = detector.update(i, loss)
        if signal is not None:
            check_signal(detector, signal)
            signals.append(signal)
    return signals


def drifts(signals: list[ConceptSignal]) -> list[ConceptSignal]:
    return [s for s in signals if s.level == "drift"]


def check_signal(detector: ConceptDetector, signal: ConceptSignal) -> None:
    """What every signal promises: a rise past its gate, an onset inside its window."""
    assert signal.kind == "concept"
    assert signal.detector == f"concept:{detector.name}"
    assert signal.level in ("warning", "drift")
    assert signal.window[0] <= signal.onset <= signal.window[1] == signal.at
    if detector.task == "classification":
        assert signal.statistic == "mean_loss"
        assert signal.after - signal.before >= signal.threshold - 1e-12
        gate = detector.min_increase if signal.level == "drift" else detector.min_increase / 2
    else:
        assert signal.statistic == "scaled_abs_error"
        assert signal.after >= signal.before * signal.threshold - 1e-12
        ratio = detector.min_ratio
        gate = ratio if signal.level == "drift" else 1 + (ratio - 1) / 2
    assert signal.threshold == pytest.approx(gate)


# -- no change: never a drift -------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_stationary_stream_gives_no_drift_with_the_default_detector(seed):
    signals = run(ConceptDetector(), learning_curve(200_000, seed=seed))
    assert drifts(signals) == []


@pytest.mark.parametrize("name", DETECTORS)
def test_stationary_stream_gives_no_drift_with_any_detector(name):
    n = 6_000 if name == "kswin" else 200_000
    signals = run(ConceptDetector(name), learning_curve(n, seed=3))
    assert drifts(signals) == []
    # River's warning flags flicker; what reaches the guard stays rare.
    assert len(signals) <= 5


@pytest.mark.parametrize("name", DETECTORS)
def test_a_falling_error_is_never_a_drift(name):
    rng = np.random.default_rng(5)
    losses = np.concatenate([rng.random(3000) < 0.3, rng.random(3000) < 0.07])
    signals = run(ConceptDetector(name), losses)
    assert drifts(signals) == []
    assert [s for s in signals if s.at >= 3000] == []  # not even a warning


@pytest.mark.parametrize("name", ["adwin", "ddm", "hddm_a"])
def test_a_rise_below_the_gate_is_swallowed(name):
    detector = ConceptDetector(name)  # min_increase 0.08
    signals = run(detector, jump(0.12, length=20_000, seed=2))
    assert drifts(signals) == []


def test_no_signal_during_warmup():
    rng = np.random.default_rng(0)
    losses = np.concatenate([rng.random(100) < 0.05, rng.random(400) < 0.9])
    signals = run(ConceptDetector("hddm_a", warmup=300), losses)
    assert all(s.at >= 300 for s in signals)


# -- abrupt rises: found fast, onset close ------------------------------------------------------


@pytest.mark.parametrize("name", DETECTORS)
def test_jump_to_half_errors_is_detected_with_its_onset(name):
    signals = drifts(run(ConceptDetector(name), jump(0.5, length=600, seed=4)))
    assert signals, "the jump was not detected"
    first = signals[0]
    assert JUMP_AT <= first.at <= JUMP_AT + DELAY_TO_HALF[name]
    assert abs(first.onset - JUMP_AT) <= 30
    assert first.before == pytest.approx(0.07, abs=0.03)
    assert first.after > 0.3


@pytest.mark.parametrize("name", [d for d in DETECTORS if d != "kswin"])
def test_label_noise_of_30_percent_is_detected(name):
    # KSWIN is left out: a KS test of 30 against 30 Bernoulli draws rarely sees 0.07 -> 0.35.
    signals = drifts(run(ConceptDetector(name), jump(0.35, length=1000, seed=6)))
    assert signals, "the label noise was not detected"
    first = signals[0]
    assert JUMP_AT <= first.at <= JUMP_AT + DELAY_TO_035[name]
    assert abs(first.onset - JUMP_AT) <= 50


def test_the_default_detector_finds_label_noise_on_many_seeds():
    delays, onset_errors = [], []
    for seed in range(10):
        first = drifts(run(ConceptDetector(), jump(0.35, length=600, seed=seed)))[0]
        delays.append(first.at - JUMP_AT)
        onset_errors.append(abs(first.onset - JUMP_AT))
    assert min(delays) >= 0 and np.median(delays) <= 100
    assert np.median(onset_errors) <= 15 and max(onset_errors) <= 50


def test_baseline_is_the_level_before_the_onset():
    detector = ConceptDetector()
    assert detector.baseline() is None
    run(detector, learning_curve(JUMP_AT, seed=7))
    assert detector.baseline() == pytest.approx(0.07, abs=0.02)  # the long-run level
    signal = drifts(run(detector, jump(0.5, length=300, seed=7)[JUMP_AT:], start=JUMP_AT))[0]
    assert detector.baseline() == pytest.approx(signal.before)
    detector.reset()
    assert detector.baseline() == pytest.approx(0.07, abs=0.02)  # no drift since the reset


# -- warnings -----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ddm_warns_before_the_drift_of_a_gradual_rise(seed):
    p = np.concatenate(
        [np.linspace(0.4, 0.07, 2000), np.full(3000, 0.07), np.linspace(0.07, 0.4, 3000)]
    )
    losses = np.random.default_rng(seed).random(p.size) < p
    signals = run(ConceptDetector("ddm"), losses)
    warnings = [s for s in signals if s.level == "warning"]
    assert warnings and drifts(signals)
    assert warnings[0].at < drifts(signals)[0].at
    assert warnings[0].at > 5000  # the rise, not the learning curve


# -- regression ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NON_BINARY)
def test_regression_error_tripling_is_detected(name):
    rng = np.random.default_rng(9)
    tail = np.abs(rng.normal(0.0, 3.0, 600)) * 250.0
    losses = np.concatenate([abs_errors(JUMP_AT, seed=9), tail])
    detector = ConceptDetector(name, task="regression")
    first = drifts(run(detector, losses))[0]
    assert JUMP_AT <= first.at <= JUMP_AT + 150
    assert abs(first.onset - JUMP_AT) <= 30
    assert first.after / first.before == pytest.approx(3.0, rel=0.35)
    assert detector.baseline() == pytest.approx(0.8 * 250, rel=0.15)  # raw mean |error|, pre-onset


@pytest.mark.parametrize("name", NON_BINARY)
def test_stationary_regression_stream_gives_no_drift(name):
    n = 6_000 if name == "kswin" else 100_000
    assert drifts(run(ConceptDetector(name, task="regression"), abs_errors(n, seed=11))) == []


def test_regression_does_not_depend_on_the_unit_of_the_target():
    tail = abs_errors(500, seed=13, learning=False) * 2.5
    losses = np.concatenate([abs_errors(JUMP_AT, seed=12), tail])
    # Powers of two scale exactly in floating point: the signals must be equal, not just close.
    small = run(ConceptDetector(task="regression"), losses / 1024)
    large = run(ConceptDetector(task="regression"), losses * 1024)
    assert small and small == large


def test_one_wild_error_is_no_drift():
    losses = abs_errors(10_000, seed=14)
    losses[6000] = 1e12
    assert drifts(run(ConceptDetector("page_hinkley", task="regression"), losses)) == []


# -- construction and input ---------------------------------------------------------------------


@pytest.mark.parametrize("name", BINARY_DETECTORS)
def test_binary_detectors_refuse_regression(name):
    with pytest.raises(ValueError, match="adwin.*page_hinkley.*kswin"):
        ConceptDetector(name, task="regression")


def test_params_go_to_river_and_unknown_ones_are_named():
    assert ConceptDetector("adwin", params={"delta": 0.01}).params["delta"] == 0.01
    with pytest.raises(ValueError, match="'threshold'.*'adwin'"):
        ConceptDetector("adwin", params={"delta": 0.01, "threshold": 3})


@pytest.mark.parametrize(
    "kwargs",
    [{"name": "cusum"}, {"task": "ranking"}, {"min_increase": 0}, {"min_ratio": 1.0},
     {"history": 50}, {"warmup": -1}],
)  # fmt: skip
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        ConceptDetector(**kwargs)


@pytest.mark.parametrize(
    ("task", "loss"),
    [("classification", 0.5), ("regression", float("nan")), ("regression", -1.0)],
)
def test_bad_losses_are_refused_with_the_event_index(task, loss):
    with pytest.raises(ValueError, match="event 17"):
        ConceptDetector(task=task).update(17, loss)


def test_signal_to_dict_is_json():
    signal = drifts(run(ConceptDetector(), jump(0.5, length=300)))[0]
    data = json.loads(json.dumps(signal.to_dict()))
    assert data["window"] == list(signal.window)
    assert data["detector"] == "concept:adwin" and data["level"] == "drift"


# -- snapshots ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DETECTORS)
def test_pickle_round_trip_mid_stream_gives_the_same_signals(name):
    p = np.concatenate(
        [np.linspace(0.4, 0.07, 1000), np.full(1500, 0.07), np.linspace(0.07, 0.5, 800)]
    )
    losses = (np.random.default_rng(21).random(p.size) < p).astype(int)
    cut = 2600  # in the middle of the rise: River's state, our history and the level all matter
    original = ConceptDetector(name, warmup=200)
    run(original, losses[:cut])
    restored = pickle.loads(pickle.dumps(original))
    expected = run(original, losses[cut:], start=cut)
    assert drifts(expected), "the rise after the snapshot should be detected"
    assert run(restored, losses[cut:], start=cut) == expected


def test_reset_forgets_the_history_and_starts_a_new_warmup():
    detector = ConceptDetector(warmup=300)
    assert drifts(run(detector, jump(0.5, length=300)))
    detector.reset()
    rng = np.random.default_rng(3)
    # The new model's error is stationary at 0.5: the old 0.07 must not make it a drift.
    assert run(detector, rng.random(5000) < 0.5, start=JUMP_AT + 300) == []


@settings(max_examples=25, deadline=None)
@given(
    name=st.sampled_from(["adwin", "page_hinkley", "ddm", "hddm_a"]),
    rates=st.tuples(st.floats(0.0, 0.6), st.floats(0.0, 0.6)),
    change=st.integers(200, 1500),
    cut=st.integers(1, 2499),
    seed=st.integers(0, 2**16),
)
def test_any_stream_resumes_identically_and_keeps_its_promises(name, rates, change, cut, seed):
    p = np.where(np.arange(2500) < change, rates[0], rates[1])
    losses = (np.random.default_rng(seed).random(p.size) < p).astype(int)
    original = ConceptDetector(name, warmup=100, history=1000)
    run(original, losses[:cut])  # run() checks every signal's promises
    restored = pickle.loads(pickle.dumps(original))
    assert run(restored, losses[cut:], start=cut) == run(original, losses[cut:], start=cut)
