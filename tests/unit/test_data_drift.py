"""The data-drift detector: silent on a stationary stream, quick and precise on each incident the
guard must handle, and a state that pickles and resumes exactly. Generated data only."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drift.data import DataDriftDetector, psi

SHIFT = 3000  # the incident starts at this event; the reference is events 0..999
COLORS = np.array(["red", "green", "blue", "black", "white", "grey"])


def stationary(seed: int, n: int) -> list[dict]:
    """Events with 9 features of mixed kinds: Gaussian, uniform, exponential, Pareto (heavy tail),
    integers 0..5, a categorical string, a bool, a rounded (tied) number, and one that is absent
    from 30% of the events."""
    rng = np.random.default_rng(seed)
    columns = {
        "gauss": rng.normal(20, 5, n), "uniform": rng.uniform(0, 1, n),
        "expo": rng.exponential(2, n), "pareto": rng.pareto(1.5, n) + 1,
        "count": rng.integers(0, 6, n),
        "color": COLORS[rng.choice(6, n, p=[0.4, 0.25, 0.15, 0.1, 0.06, 0.04])],
        "flag": rng.random(n) < 0.3, "rounded": np.round(rng.normal(50, 10, n)),
    }
    sparse, present = rng.normal(0, 1, n).tolist(), (rng.random(n) < 0.7).tolist()
    names = list(columns)
    events = [dict(zip(names, row)) for row in zip(*(c.tolist() for c in columns.values()))]
    for x, value, here in zip(events, sparse, present):
        if here:
            x["sparse"] = value
    return events


def feed(detector, events, start=0, invalid=frozenset()):
    alarms = []
    for i, x in enumerate(events, start):
        alarms += detector.update_invalid(i) if i in invalid else detector.update(i, x)
    return alarms


def test_a_stationary_stream_of_200000_events_raises_no_alarm():
    events = stationary(seed=0, n=200_000)
    invalid = set(np.flatnonzero(np.random.default_rng(1).random(len(events)) < 0.005).tolist())
    detector = DataDriftDetector()
    alarms, in_reference, checks = [], 0, 0
    for i, x in enumerate(events):
        alarms += detector.update_invalid(i) if i in invalid else detector.update(i, x)
        if i % 1000 == 999 and detector.ready:
            checks += 1
            in_reference += detector.in_reference()

    assert alarms == []
    assert in_reference / checks > 0.95
    assert set(detector.last_psi()) == {"gauss", "uniform", "expo", "pareto", "count", "color",
                                        "flag", "rounded", "sparse"}


def _scale(name, factor):
    def change(x):
        x[name] = x[name] * factor
    return change


def _set(name, value):
    def change(x):
        x[name] = value
    return change


def _drop(*names):
    def change(x):
        for name in names:
            x.pop(name, None)
    return change


def _swap(x):
    x["gauss"], x["expo"] = x["expo"], x["gauss"]


def _offset(x):
    x["gauss"] += 15  # three standard deviations


def _to_text(x):
    x["count"] = str(x["count"])


def _new_feature(x):
    x["humidity"] = 0.5


INCIDENTS = {
    # name: (change of each event from SHIFT on, detectors expected, statistic, onset tolerance)
    "unit x100": (_scale("gauss", 100), {"data:gauss"}, "psi", 10),
    "unit x1000": (_scale("uniform", 1000), {"data:uniform"}, "psi", 10),
    "unit x100 of a discrete feature": (_scale("count", 100), {"data:count"}, "psi", 10),
    "offset +3 std": (_offset, {"data:gauss"}, "psi", 10),
    "stuck sensor": (_set("gauss", 21.7), {"data:gauss"}, "psi", 10),
    "zeroed sensor": (_set("expo", 0.0), {"data:expo"}, "psi", 10),
    "zeroed sensor inside its range": (_set("sparse", 0.0), {"data:sparse"}, "psi", 10),
    "missing features": (_drop("gauss", "count"), {"schema:gauss", "schema:count"},
                         "missing_rate", 10),
    "swapped columns": (_swap, {"data:gauss", "data:expo"}, "psi", 10),
    "type change": (_to_text, {"schema:count"}, "type_change_rate", 10),
    "new feature": (_new_feature, {"schema:humidity"}, "new_feature_rate", 10),
}


@pytest.mark.parametrize("incident", INCIDENTS)
def test_each_incident_is_detected_within_100_events_with_its_onset(incident):
    change, expected, statistic, tolerance = INCIDENTS[incident]
    events = stationary(seed=2, n=SHIFT + 400)
    for x in events[SHIFT:]:
        change(x)

    alarms = feed(DataDriftDetector(), events)

    assert {a.detector for a in alarms} == expected
    for alarm in alarms:
        assert (alarm.kind, alarm.statistic) == (alarm.detector.split(":")[0], statistic)
        assert 0 < alarm.at - SHIFT <= 100
        assert abs(alarm.onset - SHIFT) <= tolerance
        assert alarm.value > alarm.threshold


def test_a_burst_of_invalid_events_is_detected():
    events = stationary(seed=3, n=SHIFT + 400)
    rng = np.random.default_rng(4)
    invalid = {i for i in range(len(events)) if rng.random() < (0.3 if i >= SHIFT else 0.005)}

    alarms = feed(DataDriftDetector(), events, invalid=invalid)

    assert [(a.detector, a.kind, a.statistic) for a in alarms] == [
        ("data:invalid_rate", "data", "invalid_rate")]
    assert alarms[0].at - SHIFT <= 100
    assert abs(alarms[0].onset - SHIFT) <= 25
    assert alarms[0].value > alarms[0].threshold >= 0.05


def test_an_alarm_carries_its_evidence():
    events = stationary(seed=5, n=SHIFT + 200)
    for x in events[SHIFT:]:
        x["gauss"] *= 100

    [alarm] = feed(DataDriftDetector(), events)

    assert alarm.kind == "data" and alarm.reference == (0, 999)
    assert alarm.window == (alarm.at - 199, alarm.at)  # the last 200 valid events
    assert alarm.value > alarm.threshold >= 0.25
    assert json.loads(json.dumps(alarm.to_dict()))["window"] == list(alarm.window)


def test_schema_alarms_are_of_kind_schema():
    events = stationary(seed=6, n=SHIFT + 200)
    for x in events[SHIFT:]:
        del x["gauss"]

    [alarm] = feed(DataDriftDetector(), events)

    assert (alarm.detector, alarm.kind, alarm.statistic) == ("schema:gauss", "schema",
                                                             "missing_rate")
    assert alarm.value > alarm.threshold > 0  # the missing rate against the rate that alarms


def test_a_lasting_shift_alarms_once_and_again_only_after_it_went_back():
    events = stationary(seed=7, n=6000)
    shifted = [*range(2000, 3000), *range(4000, 4500)]
    for i in shifted:
        events[i]["gauss"] *= 100

    alarms = feed(DataDriftDetector(), events)

    assert [a.detector for a in alarms] == ["data:gauss", "data:gauss"]
    assert [abs(a.onset - s) <= 10 for a, s in zip(alarms, (2000, 4000))] == [True, True]


def test_in_reference_is_false_during_a_shift_and_true_a_window_after_it_ends():
    events = stationary(seed=8, n=4000)
    for x in events[2000:2400]:
        x["gauss"] *= 100
    detector = DataDriftDetector()
    states = {}
    for i, x in enumerate(events):
        detector.update(i, x)
        states[i] = detector.in_reference()

    assert states[1999] is True
    assert not any(states[i] for i in range(2050, 2575))  # shifted events are in the window
    assert all(states[i] for i in range(2400 + 200 + 25, 4000))


def test_not_in_reference_before_the_reference_is_collected():
    detector = DataDriftDetector()
    feed(detector, stationary(seed=9, n=999))

    assert not detector.ready and not detector.in_reference() and detector.last_psi() == {}
    assert detector.snapshot_reference() is None


def test_after_reset_reference_a_new_regime_raises_no_alarm():
    events = stationary(seed=10, n=30_000)
    for x in events[2000:]:
        x["gauss"] *= 100
        x["color"] = "purple"
    detector = DataDriftDetector()
    assert feed(detector, events[:2200])  # the change alarms

    detector.reset_reference()
    assert not detector.ready
    alarms = feed(detector, events[2200:], start=2200)

    assert alarms == []
    assert detector.ready and detector.snapshot_reference().start == 2200
    assert detector.in_reference()


def test_a_reference_reset_since_an_event_starts_with_the_kept_events_from_there():
    # The guard adopts a new regime well after its alarm: the events since are that regime's, and
    # the new reference starts with those the detector kept (the latest 2 x window valid ones).
    events = stationary(seed=10, n=3300)
    for x in events[2000:]:
        x["gauss"] *= 100
    detector = DataDriftDetector()  # reference 1000 events, window 200: 400 kept
    feed(detector, events[:2700])

    detector.reset_reference(since=2100)
    assert detector.restarted_at is None and not detector.ready
    feed(detector, events[2700:], start=2700)

    reference = detector.snapshot_reference()  # 400 kept (2300 to 2699) and 600 new
    assert detector.ready and (reference.start, reference.end) == (2300, 3299)
    assert detector.in_reference()


@pytest.mark.parametrize("end", [300, 600, 900])
def test_a_reference_collected_across_an_incidents_end_restarts_where_it_ended(end):
    # Holdout seed 67: a sensor stuck until the new reference was 90% collected, then normal. A
    # reference of both regimes raises the stuck feature's limits so far (its values came in one
    # long run) that a return of either regime looks like no change.
    events = stationary(seed=12, n=3000)
    for x in events[:end]:
        x["uniform"] = 0.42
    detector = DataDriftDetector()
    restarts = set()
    for i, x in enumerate(events):
        detector.update(i, x)
        if not detector.ready:
            restarts.add(detector.restarted_at)

    reference = detector.snapshot_reference()
    assert restarts - {None} == {reference.start} and end <= reference.start < end + 10
    assert reference.end - reference.start + 1 == detector.reference_size == 1000


def test_while_a_reference_is_collected_its_early_events_have_a_range_of_their_own():
    # A run far outside the range of the events collected so far tells a change before the
    # reference is complete; across a restart, the range is the one of the events before it.
    events = stationary(seed=12, n=1100)
    for x in events[:900]:
        x["uniform"] = 0.42  # stuck until event 900
    detector = DataDriftDetector()  # window 200
    feed(detector, events[:350])
    assert detector.early_reference() is None  # fewer than 200 events before the latest 200
    feed(detector, events[350:700], start=350)
    early = detector.early_reference()
    # Built at 400 events collected (the first 200), rebuilt at 600 (the first 400); each event
    # asks for it (`far_streak`): at 700 the next rebuild is 100 events away.
    assert (early.start, early.end) == (0, 399)
    assert {f.name: (f.lo, f.hi) for f in early.features}["uniform"] == (0.42, 0.42)
    feed(detector, events[700:1000], start=700)
    assert detector.restarted_at is not None and 900 <= detector.restarted_at < 910
    assert detector.early_reference().end < 900  # the stuck events' range, until 200 more come
    assert detector.far_outside(detector.early_reference(), 900) == list(range(900, 1000))


def test_a_new_regime_begins_after_the_run_of_events_far_outside_its_later_range():
    # An onset estimated early puts old events in a new model's catch-up; a narrow regime (a
    # stuck sensor) shows which ones: the leading run far outside the range of the later half.
    events = stationary(seed=14, n=1000)
    for x in events[700:]:
        x["uniform"] = 0.42
    detector = DataDriftDetector()
    feed(detector, events[:800])
    assert detector.regime_start(697) == 700
    assert detector.regime_start(700) == 700 and detector.regime_start(720) == 720


def test_a_regime_start_stays_at_the_onset_when_no_leading_run_gives_the_old_events_away():
    # A wider shift hides its old events in the new range; a rare value that the later half lacks
    # by chance lies far outside its range, but not in a run from the onset.
    events = stationary(seed=15, n=1000)
    for x in events[700:]:
        x["gauss"] += 5.0
        x["rare"] = 0.0
    events[705]["rare"] = 1.0
    detector = DataDriftDetector()
    feed(detector, events[:800])
    assert detector.regime_start(690) == 690 and detector.regime_start(701) == 701


def test_the_events_of_a_run_that_moves_a_constant_feature_are_flagged_until_the_run_is_long_enough_to_ask_about():
    # A sensor constant through the whole reference moves: the live model must not learn the
    # first 10 events (its scaler has seen one value); the guard asks about the run at the 10th.
    events = stationary(seed=16, n=1300)
    for x in events[:1200]:
        x["uniform"] = 0.42
    detector = DataDriftDetector()
    feed(detector, events[:1200])
    assert {f.name: (f.lo, f.hi) for f in detector.snapshot_reference().features}["uniform"] == (0.42, 0.42)
    flags = []
    for i, x in enumerate(events[1200:1215], 1200):
        detector.update(i, x)
        flags.append(detector.in_short_far_run(x))
    assert flags == [True] * 10 + [False] * 5 and detector.far_streak == 15
    # A feature that varies in the reference, far outside its range: learned (Elec2's price spikes).
    detector.update(1215, {**events[1215], "uniform": 0.42})
    spike = {**events[1216], "uniform": 0.42, "gauss": 1e4}
    detector.update(1216, spike)
    assert detector.far_streak == 1 and not detector.in_short_far_run(spike)


def test_references_of_stationary_inputs_never_restart():
    events = stationary(seed=13, n=40_000)
    for i, x in enumerate(events):
        x["day"] = i // 48 % 7  # slow: 48 events in a row share a value
    detector = DataDriftDetector()
    references = 0
    for i, x in enumerate(events):
        detector.update(i, x)
        assert detector.restarted_at is None
        if detector.ready and i % 1500 == 0:
            detector.reset_reference()
            references += 1
    assert references >= 20


def test_inputs_that_keep_drifting_still_get_a_reference():
    # A reference of drifting inputs is taken as it comes rather than none: after twice its size.
    detector = DataDriftDetector()
    rng = np.random.default_rng(14)
    restarts = set()
    for i in range(3000):
        detector.update(i, {"trend": i / 100 + rng.normal(), "noise": rng.normal()})
        if not detector.ready:
            restarts.add(detector.restarted_at)
    reference = detector.snapshot_reference()
    assert len(restarts - {None}) >= 2  # it did restart while the first 2,000 events lasted
    assert reference is not None and reference.end < 2 * 1000 + 1000 + detector.check_every


def two_regimes(seed: int):
    """A detector fed regime A (events 0-2999), then B (a unit change of "gauss", 3000-5999),
    with a reference taken of each; returns (detector, A's events, reference A, reference B)."""
    regime_a = stationary(seed=seed, n=3000)
    regime_b = [{**x, "gauss": x["gauss"] * 100} for x in stationary(seed=seed + 1, n=3000)]
    detector = DataDriftDetector()
    feed(detector, regime_a)
    reference_a = detector.snapshot_reference()
    detector.reset_reference()
    feed(detector, regime_b, start=3000)
    return detector, regime_a, reference_a, detector.snapshot_reference()


def psi_against(detector: DataDriftDetector, reference) -> tuple[bool, float]:
    match, evidence = detector.matches(reference)
    return match, evidence["psi"]


def test_the_recent_window_tells_which_regime_the_inputs_come_from():
    detector, regime_a, reference_a, reference_b = two_regimes(seed=11)

    (match_b, psi_b), (match_a, psi_a) = psi_against(detector, reference_b), psi_against(detector, reference_a)
    assert match_b and not match_a and psi_b < 0.3 < 2 < psi_a
    feed(detector, regime_a[:300], start=6000)  # back to regime A
    (match_b, psi_b), (match_a, psi_a) = psi_against(detector, reference_b), psi_against(detector, reference_a)
    assert match_a and not match_b and psi_a < 0.3 < 2 < psi_b


def test_a_regime_is_recognised_from_the_events_since_an_onset_alone():
    detector, regime_a, reference_a, reference_b = two_regimes(seed=21)
    feed(detector, regime_a[:60], start=6000)  # back to A for 60 events: the window is mostly B

    match_a, evidence = detector.matches(reference_a, since=6000)
    assert match_a and evidence["events"] == 60 and evidence["psi"] < evidence["limit"]
    assert not detector.matches(reference_b, since=6000)[0]
    assert not detector.matches(reference_a, since=5900)[0]  # B's events before the onset count
    assert not detector.matches(reference_a, since=6030)[0]  # 30 events: too few to tell


def test_a_short_window_departs_from_a_reference_only_as_far_as_an_alarm_asks():
    detector, regime_a, reference_a, reference_b = two_regimes(seed=25)
    # 40 events of B against B's own reference (chance), and against A's (a x100 unit change).
    departs, evidence = detector.departs(reference_b, since=detector.latest(40))
    assert not departs and evidence["events"] == 40 and evidence["psi"] < evidence["limit"]
    departs, evidence = detector.departs(reference_a, since=detector.latest(40))
    assert departs and evidence["feature"] == "gauss" and evidence["psi"] > evidence["limit"]
    # an alarm's limit for 40 events: far above the match's, which B's events still exceed
    assert evidence["limit"] > detector.matches(reference_a, since=detector.latest(40))[1]["limit"]
    assert detector.departs(reference_a, since=detector.latest(30))[1] == {"since": detector.latest(30), "events": 30}
    assert detector.latest(10_000) is None


def test_features_that_a_reference_never_had_are_no_match_for_its_regime():
    # A regime that lacked "uniform" (a burst of missing features) is not the one it came back from.
    without = [{k: v for k, v in x.items() if k != "uniform"} for x in stationary(seed=31, n=3000)]
    detector = DataDriftDetector(reference_size=1000, window=200, check_every=25)
    feed(detector, without)
    lacking = detector.snapshot_reference()
    feed(detector, stationary(seed=32, n=100), start=3000)

    match, evidence = detector.matches(lacking, since=3000)
    assert not match and evidence["feature"] == "uniform" and evidence["new_feature_rate"] == 1.0
    feed(detector, without[:100], start=3100)  # gone again: the other features still match
    assert detector.matches(lacking, since=3100)[0]


def test_events_far_outside_the_reference_range_are_found_for_catch_ups():
    events = stationary(seed=41, n=1300)
    detector = DataDriftDetector(reference_size=1000, window=200, check_every=25)
    feed(detector, events[:1000])
    reference = detector.snapshot_reference()
    incident = [{**x, "gauss": x["gauss"] * 1000} for x in events[1000:1002]]
    feed(detector, events[1000:1100] + incident + events[1102:1200], start=1000)

    assert detector.far_outside(reference, since=1000) == [1100, 1101]  # the two x1000 events
    assert detector.far_outside(reference, since=1101) == [1101]
    # within the range widened by its width: ordinary tails are not flagged
    assert detector.far_outside(reference, since=1102) == []
    assert detector.first_alike(reference, since=1000) == 1102 and detector.first_alike(reference, 1150) == 1150


def test_a_run_of_events_far_outside_one_range_or_back_near_another_marks_where_a_regime_ended():
    # After 3,000 events of regime B (A with "gauss" x100), A is back at 6000.
    detector, regime_a, reference_a, reference_b = two_regimes(seed=27)
    assert detector.far_run(reference_b, at_least=10) is None  # B's events are in B's range
    assert detector.near_run(reference_a, at_least=10) is None  # and most lie far outside A's
    feed(detector, regime_a[:9], start=6000)
    assert detector.near_run(reference_a, at_least=10) is None  # 9 events: fewer than asked
    feed(detector, regime_a[9:12], start=6009)
    # B's events lay far outside A's range about always: 12 near it in a row are no chance
    assert detector.near_run(reference_a, at_least=10) == 6000
    # A's events do not land far outside B's range (they are small numbers inside it)
    assert detector.far_run(reference_b, at_least=10) is None

    # The other way: from A to B, whose events lie far outside A's range (a reference of 1,000).
    feed(detector, regime_a[12:300], start=6012)
    feed(detector, [{**x, "gauss": x["gauss"] * 100} for x in regime_a[300:312]], start=6300)
    assert detector.far_run(reference_a, at_least=10) == 6300
    assert detector.far_run(reference_a, at_least=20) is None
    # The flags these answers remember per reference are a cache: a snapshot does not carry them,
    # and a restored detector gives the same answers.
    copy = pickle.loads(pickle.dumps(detector))
    assert copy._far_memo == {} and copy.far_run(reference_a, at_least=10) == 6300


def test_a_run_back_near_a_range_tells_only_if_the_events_before_it_were_far_outside_it_often():
    # Regime B is A with five times the spread of "gauss": few of its events lie far outside A's
    # range (beyond it by its width), so 12 events near it in a row could come from B by chance.
    regime_a = stationary(seed=29, n=1012)
    detector = DataDriftDetector()
    feed(detector, regime_a[:1000])
    reference_a = detector.snapshot_reference()
    feed(detector, [{**x, "gauss": 20 + (x["gauss"] - 20) * 5} for x in stationary(seed=30, n=400)], start=1000)
    feed(detector, regime_a[1000:], start=1400)
    assert detector.near_run(reference_a, at_least=10) is None


def test_a_parked_regime_is_recognised_even_if_the_onset_lets_in_a_few_events_of_the_other():
    from drift.regimes import ParkedModels

    detector, regime_a, reference_a, _ = two_regimes(seed=23)
    parked = ParkedModels(most=3)
    parked.park("model-a", reference_a, at=6000)
    feed(detector, regime_a[:60], start=6000)  # A is back at 6000; the onset is estimated at 5994

    assert not detector.matches(reference_a, since=5994)[0]  # six x100 events spoil the match
    snapshot, evidence = parked.recognise(detector, since=5994)
    assert snapshot == "model-a" and evidence["inputs"]["since"] == 6000


@pytest.mark.parametrize("shift, early", [(6.0, False), (12.0, True)])
def test_without_an_alarm_a_parked_regime_is_recognised_only_on_a_departure_an_alarm_would_ask(shift, early):
    # Regime B is A with "gauss" moved by 1.2 (or 2.4) of its spreads. A's 40 events at the return
    # match A and not B either way; only the larger move departs from B as far as an alarm asks.
    from drift.regimes import ParkedModels

    regime_a = stationary(seed=51, n=1040)
    detector = DataDriftDetector()
    feed(detector, regime_a[:1000])
    parked = ParkedModels(most=3)
    parked.park("model-a", detector.snapshot_reference(), at=1000)
    detector.reset_reference()
    feed(detector, [{**x, "gauss": x["gauss"] + shift} for x in stationary(seed=52, n=2000)], start=1000)
    feed(detector, regime_a[1000:], start=3000)

    since = detector.latest(40)
    assert since == 3000 and parked.recognise(detector, since)[0] == "model-a"  # at an alarm
    known = parked.recognise(detector, since, alarm_level=True)
    assert (known is not None) is early


def test_use_reference_restores_a_parked_regime_without_alarms():
    regime_a = stationary(seed=13, n=3000)
    regime_b = stationary(seed=14, n=3000)
    for x in regime_b:
        x["uniform"] *= 1000
    detector = DataDriftDetector()
    feed(detector, regime_a)
    parked = pickle.loads(pickle.dumps(detector.snapshot_reference()))
    detector.reset_reference()
    feed(detector, regime_b, start=3000)

    detector.use_reference(parked)  # while regime B still flows: it alarms
    assert [a.detector for a in feed(detector, regime_b[:100], start=6000)] == ["data:uniform"]
    detector.use_reference(parked)
    feed(detector, regime_a[:300], start=6100)

    assert feed(detector, regime_a[300:2000], start=6400) == []
    assert detector.in_reference()


def test_a_pickled_detector_continues_identically():
    events = stationary(seed=15, n=5000)
    for x in events[3000:]:
        x["gauss"] += 15
        x["count"] = str(x["count"])
    detector = DataDriftDetector()
    feed(detector, events[:2990])  # pending events not yet checked travel too

    copy = pickle.loads(pickle.dumps(detector))
    original_alarms = feed(detector, events[2990:], start=2990)
    copied_alarms = feed(copy, events[2990:], start=2990)

    assert len(original_alarms) == 2
    assert [a.to_dict() for a in copied_alarms] == [a.to_dict() for a in original_alarms]
    assert copy.last_psi() == detector.last_psi()


def test_a_detector_pickled_while_collecting_before_collections_restarted_resumes():
    # Snapshots written before `drift/collection.py` hold the collected events in the detector.
    events = stationary(seed=15, n=1500)
    detector = DataDriftDetector()
    feed(detector, events[:600])
    state = detector.__getstate__()
    collection = state.pop("_collection")
    state.update(_collected=collection.events, _collected_invalid=collection.invalid)
    old = DataDriftDetector.__new__(DataDriftDetector)
    old.__setstate__(state)

    feed(old, events[600:], start=600)
    feed(detector, events[600:], start=600)

    reference = detector.snapshot_reference()
    assert reference is not None and reference.start == 0 and old.snapshot_reference() == reference


def test_unusual_values_are_binned_not_crashed_on():
    events = stationary(seed=16, n=1500)
    events[1200]["gauss"] = None  # missing
    events[1201]["gauss"] = float("nan")  # missing
    events[1202]["gauss"] = np.float32(3.5)  # a NumPy scalar is a number
    events[1203]["gauss"] = 10**400  # beyond float range: above the maximum
    events[1204]["gauss"] = [1, 2]  # wrong type
    events[1205]["color"] = 7  # wrong type for a categorical feature
    events[1206]["flag"] = "yes"  # an unknown category
    detector = DataDriftDetector()

    assert feed(detector, events) == []
    assert detector.in_reference()


def test_bools_are_categories_and_few_distinct_numbers_are_discrete():
    detector = DataDriftDetector(reference_size=100, window=50)
    feed(detector, [{"b": i % 3 == 0, "n": i % 4, "x": i * 0.37 % 1} for i in range(100)])

    kinds = {f.name: f.kind for f in detector.snapshot_reference().features}
    assert kinds == {"b": "categorical", "n": "discrete", "x": "continuous"}


@pytest.mark.parametrize("arguments", [
    {"window": 0}, {"check_every": 300}, {"psi_threshold": 0}, {"invalid_rate_threshold": 1.5},
    {"reference_size": 10.5},
])
def test_invalid_settings_are_refused(arguments):
    with pytest.raises(ValueError):
        DataDriftDetector(**arguments)


def test_drift_imports_nothing_from_the_stream_side():
    code = ("import sys, drift.data; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'stream', 'kafka', 'prometheus_client', 'starlette', 'uvicorn', 'httpx'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- properties --------------------------------------------------------------------------------

counts = st.lists(st.integers(0, 1000), min_size=2, max_size=20)


@given(counts, st.data())
def test_psi_is_non_negative_and_zero_against_itself(recent, data):
    reference = data.draw(st.lists(st.integers(0, 1000), min_size=len(recent),
                                   max_size=len(recent)))

    assert psi(recent, reference) >= 0
    assert psi(recent, recent) == pytest.approx(0, abs=1e-12)
    assert psi(recent, reference) == pytest.approx(psi(reference, recent))


STATIONARY_SAMPLE = stationary(seed=17, n=3000)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_any_ordering_of_a_stationary_sample_raises_no_alarm(seed):
    order = np.random.default_rng(seed).permutation(len(STATIONARY_SAMPLE))
    events = [dict(STATIONARY_SAMPLE[i]) for i in order]

    assert feed(DataDriftDetector(), events) == []


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10**6), st.integers(60, 130))
def test_counts_kept_incrementally_agree_with_a_recount(seed, checks):
    n = 20 * checks  # no event left pending: the last check saw them all
    events = stationary(seed, n)
    for x in events[800 + (n - 800) // 2:]:
        x["gauss"] += 4  # some shift after the reference, so that the counts are not all alike
    detector = DataDriftDetector(check_every=20, window=150, reference_size=800)
    feed(detector, events)
    incremental = detector.last_psi()

    detector.use_reference(detector.snapshot_reference())  # recounts the window from scratch

    assert detector.last_psi() == pytest.approx(incremental)


def test_a_clock_feature_that_only_grows_is_known_but_never_compared():
    # Elec2's `date`, a counter, an epoch: such a column drifts by construction.
    rng = np.random.default_rng(3)
    detector = DataDriftDetector(reference_size=500, window=200, check_every=25)
    alarms = []
    for i in range(20_000):
        alarms += detector.update(i, {"date": 1000.0 + i * 0.37, "x": float(rng.normal())})
    assert alarms == []
    assert detector.snapshot_reference().clocks == ("date",)
    # the other features are still watched
    for i in range(20_000, 20_300):
        alarms += detector.update(i, {"date": 1000.0 + i * 0.37, "x": float(rng.normal()) * 100})
    assert [a.detector for a in alarms] == ["data:x"]


def test_a_slow_cyclic_feature_does_not_alarm_but_a_shift_of_an_independent_one_does():
    # A day of the week in half-hourly data: 48 events in a row share a value, so a window of 200
    # events holds four or five days and never looks like the reference's week.
    rng = np.random.default_rng(4)

    def event(i, factor=1.0):
        return {"day": float(i // 48 % 7), "x": float(rng.normal()) * factor}

    def run(detector, n):
        return [a.detector for i in range(n) for a in detector.update(i, event(i))]

    slow = DataDriftDetector()
    assert run(slow, 30_000) == []
    persistence = {f.name: f.persistence for f in slow.snapshot_reference().features}
    assert persistence["day"] > 20 and persistence["x"] < 1.1

    alarms = [a.detector for i in range(30_000, 30_300) for a in slow.update(i, event(i, factor=100.0))]
    assert alarms == ["data:x"]

    # without the persistence correction, the same stream alarms on `day` again and again
    naive = DataDriftDetector()
    reference = slow.snapshot_reference()
    naive.use_reference(replace(reference, features=tuple(replace(f, persistence=1.0) for f in reference.features)))
    assert "data:day" in [a.detector for i in range(30_000) for a in naive.update(i, event(i))]
