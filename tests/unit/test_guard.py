"""The guard's state machine: every transition, every refused one, every guardrail, and properties."""

from __future__ import annotations

import itertools
import pickle
import random

import pytest
from hypothesis import HealthCheck, given, settings as hyp_settings, strategies as st

from drift.confirm import SURE_RISE
from drift.contest import Contest
from drift.decisions import MANUAL_ONLY, TRANSITIONS, IllegalTransition, Mode, check_transition
from drift.guard import Guard, GuardError, GuardSettings
from drift.history import LOOK_P, PERSIST_LOOKS, SHOWN_MIN, VERIFY_MIN
from drift.matching import FAR_MATCH_EVENTS


def make(**overrides) -> Guard:
    defaults = dict(reference_size=200, data_window=100, check_every=10, min_quarantine=30,
                    evidence_window=200, lookback=2000)
    guard = Guard(GuardSettings(**{**defaults, **overrides}), classifier=True)
    guard.snapshot_taken("s-initial", 0)
    return guard


class Stream:
    """Feeds a guard the way the loop does: features, then the label's loss, snapshots every 100."""

    def __init__(self, guard: Guard, seed: int = 1) -> None:
        self.guard = guard
        self.rng = random.Random(seed)
        self.index = 0
        self.decisions = []

    def run(self, n: int, *, error: float = 0.05, scale: float = 1.0, shadow=None, labels: bool = True,
            replay=None, stuck: float | None = None, narrow: bool = False):
        g = self.guard
        for _ in range(n):
            i = self.index
            a = self.rng.gauss(0, 1) * scale
            b = self.rng.random() if stuck is None else stuck
            x = {"a": a, "b": 0.2 + 0.6 * b if narrow else b}
            self.decisions += g.observe_features(i, x)
            if labels:
                loss = 1.0 if self.rng.random() < error else 0.0
                losses = shadow(loss) if (shadow and g.challengers) else None
                self.decisions += g.observe_label(i, loss, losses, replay=replay)
            self.index += 1
            if self.index % 100 == 0:
                g.snapshot_taken(f"s{self.index:06d}", self.index)
        return self

    def actions(self):
        return [(d.action, d.trigger, d.source, d.target) for d in self.decisions]


def caught_up(rollback, decision) -> str:
    """The snapshot a decision in `rollback`'s quarantine parks the restored model by: the newest
    taken in the quarantine (it holds that model as caught up, frozen since), else its restore
    point. `Stream` takes one every 100 events."""
    newest = decision.at // 100 * 100
    return f"s{newest:06d}" if newest > rollback.at else rollback.restore


def promoted_in(guard: Guard, before: int, **incident) -> tuple[Stream, object, object]:
    """A stream of `before` normal events, then the incident until its candidate, which makes no
    error, is promoted: the stream, the rollback and the promotion."""
    stream = Stream(guard).run(before)
    while len(stream.decisions) < 2:
        stream.run(1, shadow=lambda loss: {"candidate": 0.0} if stream.guard.quarantine else None, **incident)
    return stream, *stream.decisions


def quarantined_by_concept(**overrides) -> Stream:
    stream = Stream(make(**overrides)).run(1500)
    assert stream.guard.mode is Mode.LEARNING and not stream.decisions
    for _ in range(300):  # stop at the alarm, so that the test decides what the quarantine sees
        stream.run(1, error=0.6)
        if stream.guard.mode is Mode.QUARANTINE:
            return stream
    raise AssertionError(f"no quarantine: {stream.actions()}")


# -- the table ---------------------------------------------------------------------------------

ALL = [(s, t, a, tr) for s, t in itertools.product(Mode, Mode) for a in ("rollback", "resume", "promote",
       "pause", "alert", "reboot") for tr in ("auto", "manual")]


@pytest.mark.parametrize("source, target, action, trigger", ALL, ids=lambda v: getattr(v, "value", v))
def test_every_transition_is_allowed_exactly_when_the_table_says(source, target, action, trigger):
    allowed = action in TRANSITIONS.get((source, target), ()) and not (
        trigger == "auto" and {(source, target, None), (source, target, action)} & MANUAL_ONLY)
    if allowed:
        check_transition(source, target, action, trigger)
    else:
        with pytest.raises(IllegalTransition):
            check_transition(source, target, action, trigger)


def test_nothing_leaves_paused_automatically():
    for target, actions in ((t, a) for (s, t), a in TRANSITIONS.items() if s is Mode.PAUSED):
        for action in actions:
            with pytest.raises(IllegalTransition, match="operator"):
                check_transition(Mode.PAUSED, target, action, "auto")


# -- automatic transitions ---------------------------------------------------------------------

def test_a_concept_alarm_rolls_back_to_the_last_snapshot_before_the_onset():
    stream = quarantined_by_concept()
    rollback = stream.decisions[-1]
    assert (rollback.action, rollback.trigger, rollback.source, rollback.target) == (
        "rollback", "auto", "learning", "quarantine")
    onset = rollback.evidence["onset"]
    assert abs(onset - 1500) <= 40
    restored_at = int(rollback.restore[1:])
    assert restored_at <= onset and onset - restored_at < 100 + 40
    assert rollback.candidate == "start"
    assert rollback.catch_up == (restored_at, onset)  # the good events the snapshot had not learned
    assert rollback.shadow_catch_up == (onset, rollback.at + 1)  # the candidate's: the new concept's
    assert rollback.evidence["alarm"]["detector"] == "concept:adwin"
    assert stream.guard.quarantine.restored == rollback.restore
    assert stream.guard.challengers == ["candidate", "fresh"]


def test_a_rollback_catch_up_stops_before_the_first_incident_event_even_if_the_onset_is_late():
    stream = Stream(make()).run(1050)
    guard = stream.guard
    stream.run(3, scale=1000.0)  # three x1000 events, then a late alarm's onset estimate after them
    stream.run(17)
    alarm = {"detector": "data:a", "kind": "data", "statistic": "psi", "value": 1.0}
    rollback = guard._on_alarm(stream.index, alarm, onset=1060)[0]
    assert rollback.catch_up == (1000, 1050)  # from the snapshot at 1000, not past the first x1000 event
    assert rollback.shadow_catch_up == (1050, stream.index + 1)  # the candidate learns the incident


def test_a_feature_unit_change_is_a_data_alarm_within_200_events_without_labels():
    stream = Stream(make()).run(1000)
    stream.run(200, scale=100.0, labels=False)
    rollback = stream.decisions[0]
    assert rollback.action == "rollback" and rollback.evidence["alarm"]["detector"] == "data:a"
    assert rollback.at - 1000 <= 200
    assert abs(rollback.evidence["onset"] - 1000) <= 10


def test_the_candidate_beating_the_restored_model_is_promoted_and_the_restored_one_parked():
    stream = quarantined_by_concept()
    restored = stream.guard.quarantine.restored
    stream.run(200, error=0.6, shadow=lambda loss: {"candidate": 0.0})
    promote = stream.decisions[-1]
    assert (promote.action, promote.source, promote.target, promote.candidate) == (
        "promote", "quarantine", "learning", "promote")
    assert promote.evidence["p_value"] < 0.01 and promote.evidence["improvement"] >= 0.1
    assert promote.park == (restored,)
    assert [p.snapshot for p in stream.guard.parked] == [restored]


def test_a_fresh_model_that_beats_the_restored_one_is_promoted_in_its_place():
    stream = quarantined_by_concept()
    restored = stream.guard.quarantine.restored
    # The copy of the restored model cannot unlearn fast enough; a model started afresh can.
    stream.run(200, error=0.6, shadow=lambda loss: {"candidate": loss, "fresh": 0.0})
    promote = stream.decisions[-1]
    assert (promote.action, promote.candidate, promote.challenger) == ("promote", "promote", "fresh")
    assert "fresh model" in promote.reason and promote.evidence["challenger"] == "fresh"
    assert promote.park == (restored,)


def test_without_a_fresh_model_only_the_copy_learns_in_shadow():
    stream = quarantined_by_concept(fresh_candidate=False)
    assert stream.guard.challengers == ["candidate"]


@pytest.mark.parametrize("fresh_loss, promoted", [(0.0, "fresh"), (1.0, "candidate")])
def test_an_operator_promotes_the_candidate_or_the_fresh_model_whichever_did_better(fresh_loss, promoted):
    stream = quarantined_by_concept()
    stream.run(20, error=0.5, shadow=lambda loss: {"candidate": 0.5 if loss else 0.0, "fresh": fresh_loss})
    decision = stream.guard.promote(stream.index)
    assert (decision.trigger, decision.challenger) == ("manual", promoted)
    assert decision.reason == f"the {'fresh model' if promoted == 'fresh' else 'candidate'} promoted by an operator"


def test_the_incident_is_over_when_the_restored_model_is_back_to_its_error_level():
    stream = quarantined_by_concept(evidence_window=500)
    stream.run(400, error=0.05, shadow=lambda loss: {"candidate": loss})
    resume = stream.decisions[-1]
    # over within an evidence window: the candidate learned too little of anything to park it; it
    # learns on in shadow (what it learned through the incident may help) on a probation
    assert (resume.action, resume.source, resume.target, resume.candidate) == (
        "resume", "quarantine", "learning", "keep")
    assert resume.restore is None  # the restored model is live already
    assert "incident over" in resume.reason and resume.evidence["p_value"] >= 0.05
    assert resume.catch_up is None  # the events its recovery was judged on may end the incident
    assert not stream.guard.parked
    assert stream.guard.challengers == ["candidate"]


def over_with_the_candidate_on_probation(**overrides) -> tuple[Stream, str]:
    stream = quarantined_by_concept(evidence_window=500, **overrides)
    restored = stream.guard.quarantine.restored
    stream.run(400, error=0.05, shadow=lambda loss: {"candidate": loss})
    assert stream.decisions[-1].candidate == "keep"
    return stream, restored


def test_after_an_incident_the_candidate_goes_on_when_it_predicts_significantly_better():
    # It learned through the incident what the frozen restored model missed (no-guard's edge where
    # pausing cost more than the incident did: missing features leave the others to learn).
    stream, restored = over_with_the_candidate_on_probation()
    over = stream.decisions[-1]
    errs = itertools.cycle([1.0] + [0.0] * 99)  # 0.01 against the restored model's 0.06
    stream.run(3000, error=0.06, shadow=lambda loss: {"candidate": next(errs)})
    win = stream.decisions[-1]
    assert win is not over and win.at - over.at < 1000
    assert (win.action, win.trigger, win.source, win.target) == ("promote", "auto", "learning", "learning")
    assert (win.candidate, win.challenger, win.restore, win.park) == ("promote", "candidate", None, ())
    assert (win.evidence["test"], win.evidence["alpha"]) == ("sequential", 0.01) and win.evidence["events"] <= 500
    assert f"the candidate, which learned through the incident and went on learning in shadow, beats the " \
           f"restored model ({restored}) that resumed" in win.reason
    assert stream.guard.challengers == [] and stream.guard.probation is None


def test_after_an_incident_a_candidate_that_is_not_better_is_dropped_when_the_probation_ends():
    stream, restored = over_with_the_candidate_on_probation(probation=1000)
    over = stream.decisions[-1]
    errs = itertools.cycle([1.0] * 6 + [0.0] * 94)  # a little better: 0.06 against 0.07, by chance or not
    stream.run(1200, error=0.07, shadow=lambda loss: {"candidate": next(errs)})
    assert stream.decisions[-1] is over
    assert stream.guard.probation is None and stream.guard.challengers == []


def test_the_candidate_on_probation_after_an_incident_is_part_of_the_guard_state():
    import pickle

    stream, restored = over_with_the_candidate_on_probation()
    restarted = pickle.loads(pickle.dumps(stream.guard))
    assert restarted.challengers == ["candidate"] and restarted.probation.resumed == restored


def test_a_candidate_that_learned_a_long_concept_incident_is_parked_and_can_win_when_it_recurs():
    stream = quarantined_by_concept()  # evidence window 200
    # Another concept for 300 labeled events: the candidate learns it, too slowly to win.
    stream.run(300, error=0.6, shadow=lambda loss: {"candidate": loss})
    stream.run(300, error=0.05, shadow=lambda loss: {"candidate": loss})  # the old concept is back
    over = stream.decisions[-1]
    assert (over.action, over.target, over.candidate) == ("resume", "learning", "park")
    assert "the candidate is parked" in over.reason
    stream.guard.candidate_parked("s-candidate", stream.index)  # what the loop does with "park"
    parked = stream.guard.parked[0]
    assert (parked.snapshot, parked.reference) == ("s-candidate", None)  # recalled by labels only
    assert "s-candidate" in stream.guard.protected(stream.index)
    assert not stream.guard.restore_points.before(stream.index).snapshot == "s-candidate"
    stream.run(300, error=0.05)
    stream.run(300, error=0.6)  # the other concept recurs
    assert stream.guard.mode is Mode.QUARANTINE
    assert stream.guard.challengers == ["parked:s-candidate", "candidate", "fresh"]
    stream.run(200, error=0.6, shadow=lambda loss: {"candidate": loss, "parked:s-candidate": 0.0})
    back = stream.decisions[-1]
    assert (back.action, back.restore, back.target) == ("resume", "s-candidate", "learning")
    # the model of the old concept is parked in turn, as caught up
    assert back.park == (caught_up(stream.decisions[-2], back),) != (stream.decisions[-2].restore,)


def test_a_long_data_quarantine_that_ends_over_does_not_park_the_candidate():
    stream = Stream(make(evidence_window=200)).run(1000)
    stream.run(100, scale=100.0)  # an input incident: a data alarm
    stream.run(300, scale=100.0, error=0.6, shadow=lambda loss: {"candidate": loss})
    stream.run(600, error=0.05, shadow=lambda loss: {"candidate": loss})
    over = stream.decisions[-1]
    # (it learned a data incident, not a concept that may recur: it learns on, on probation)
    assert (over.action, over.target, over.candidate) == ("resume", "learning", "keep")
    assert "incident over" in over.reason and stream.decisions[0].evidence["alarm"]["kind"] == "data"
    assert not stream.guard.parked
    # The restored model learns the events of the window the data check found back, and all since:
    # none of the x100 ones (they ended at 1400).
    assert over.catch_up == (1400, over.at + 1)


def test_an_incident_over_catches_up_on_the_window_the_inputs_were_found_back_in_and_all_since():
    # Drawn seed 3, agrawal swapped commission, hvalue [5.5k,6.5k) / tree: learning only the events
    # after the check that found the inputs back, the restored model missed a window of good ones
    # and ended 1.10% under the oracle (0.12% with them). Here a stuck sensor, in range.
    stream = Stream(make()).run(1000)
    stream.run(300, stuck=0.5, shadow=lambda loss: {"candidate": loss})  # ends at event 1300
    found = None  # the data check that found the inputs back (the last time)
    while stream.guard.mode is Mode.QUARANTINE:
        before = stream.guard.quarantine.back_from
        stream.run(1, shadow=lambda loss: {"candidate": loss})
        now = stream.guard.quarantine.back_from if stream.guard.quarantine is not None else None
        if now is not None and now != before:
            found = stream.index - 1
    over = stream.decisions[-1]
    assert "incident over" in over.reason and stream.decisions[0].evidence["alarm"]["kind"] == "data"
    # The data window (100 events) up to that check, kept since: the check before found the inputs
    # still moved. The window may hold the incident's last few events (in range, none is far):
    # here the 10 stuck ones from 1290, where learning only the events after the check would
    # have skipped the 89 good ones of the window.
    assert over.catch_up == (found + 1 - 100, over.at + 1) == (1290, over.at + 1)


def test_a_quarantine_from_a_snapshot_before_back_from_catches_up_after_the_check_as_it_did():
    stream = Stream(make()).run(1000)
    stream.run(300, stuck=0.5, shadow=lambda loss: {"candidate": loss})
    while stream.guard.quarantine.back_from is None:
        stream.run(1, shadow=lambda loss: {"candidate": loss})
    found = stream.index - 1  # the data check that found the inputs back
    q = stream.guard.quarantine
    state = {k: v for k, v in pickle.loads(pickle.dumps(q)).__dict__.items() if k != "back_from"}
    state["back_since"] = found  # as it was written then
    old = object.__new__(type(q))
    old.__setstate__(state)  # what unpickling a snapshot written before it does
    assert old.back_from == found + 1 and q.back_from == found + 1 - 100 and not hasattr(old, "back_since")


def test_an_incident_over_after_a_concept_quarantine_catches_up_on_nothing_even_if_the_inputs_wavered():
    # Labels were the incident: inputs that moved and came back meanwhile do not mark its end.
    stream = quarantined_by_concept()
    stream.run(200, scale=3.0, error=0.6, shadow=lambda loss: {"candidate": loss})
    assert stream.guard.quarantine.inputs_moved
    stream.run(600, error=0.05, shadow=lambda loss: {"candidate": loss})
    over = stream.decisions[-1]
    assert (over.action, over.catch_up) == ("resume", None) and "incident over" in over.reason


def test_a_concept_quarantine_does_not_end_while_the_inputs_hold_numbers_far_outside_their_range():
    # The error rose first, then a x100 unit change came that the restored model predicts well
    # enough: resuming would teach it the x100 events. It waits for them to be gone.
    stream = quarantined_by_concept()
    same = lambda loss: {n: loss for n in stream.guard.challengers}  # noqa: E731 - no challenger wins
    stream.run(300, scale=100.0, error=0.05, shadow=same)
    assert stream.guard.mode is Mode.QUARANTINE and [d.action for d in stream.decisions] == ["rollback"]
    back = stream.index
    stream.run(300, error=0.05, shadow=same)
    over = stream.decisions[-1]
    assert (over.action, over.target) == ("resume", "learning") and "incident over" in over.reason
    assert back + stream.guard.settings.data_window <= over.at < back + 300  # once the window is free of them


def test_after_a_promotion_a_parked_model_that_beats_the_live_one_is_recalled_without_an_alarm():
    stream = quarantined_by_concept()
    restored = stream.guard.quarantine.restored
    stream.run(200, error=0.6, shadow=lambda loss: {"candidate": 0.0})  # promoted; `restored` parked
    assert stream.guard.challengers == [f"parked:{restored}", "fresh"]  # the fresh model: the runner-up
    # The old regime returns and the live model's error *falls* (no concept alarm), but the parked
    # model is better still on the same events.
    stream.run(300, error=0.3, shadow=lambda loss: {f"parked:{restored}": 0.0})
    recall = stream.decisions[-1]
    assert (recall.action, recall.trigger, recall.source, recall.target, recall.restore) == (
        "resume", "auto", "learning", "learning", restored)
    assert recall.candidate == "displace" and stream.guard.parked[0].snapshot != restored
    assert stream.guard.challengers == ["displaced"]  # the live model it replaced learns on in shadow


def recalled_while_learning(**overrides) -> tuple[Stream, str]:
    """A x100 regime is promoted, then the old inputs return and their parked model is recalled."""
    stream = Stream(make(**overrides)).run(1000)
    stream.run(300, scale=100.0, error=0.6, shadow=lambda loss: {"candidate": 0.0})  # rollback, promote
    parked = stream.guard.parked[0].snapshot
    stream.run(1000, scale=100.0, shadow=lambda loss: {n: loss for n in stream.guard.challengers})
    stream.run(60)  # the old inputs are back: their model is recalled
    assert (stream.decisions[-1].action, stream.decisions[-1].restore) == ("resume", parked)
    return stream, parked


def test_the_model_a_recall_displaced_goes_on_when_it_predicts_the_regime_significantly_better():
    stream, parked = recalled_while_learning()
    recall = stream.decisions[-1]
    assert recall.candidate == "displace" and stream.guard.challengers == ["displaced"]
    # The displaced model learned through the other regime; once it has relearned this one, it errs
    # on far fewer events than the recalled model (0.01 against 0.06): the sequential test, whose
    # alpha holds at every look, and the margin on the evidence window (200 events here).
    errs = itertools.cycle([1.0] + [0.0] * 99)
    stream.run(3000, error=0.06, shadow=lambda loss: {"displaced": next(errs)})
    promote = stream.decisions[-1]
    assert (promote.action, promote.trigger, promote.source, promote.target) == ("promote", "auto", "learning", "learning")
    assert (promote.candidate, promote.challenger, promote.restore, promote.park) == ("promote", "displaced", None, ())
    assert (promote.evidence["test"], promote.evidence["alpha"]) == ("sequential", 0.01) and promote.evidence["events"] == 200
    assert f"{parked}'s recall displaced" in promote.reason
    assert stream.guard.challengers == [] and stream.guard.mode is Mode.LEARNING
    assert parked not in {p.snapshot for p in stream.guard.parked}  # it lost on its own regime


def test_a_displaced_model_that_is_not_better_is_dropped_when_its_probation_ends():
    stream, parked = recalled_while_learning(probation=1000)
    errs = itertools.cycle([1.0] * 7 + [0.0] * 93)  # a little better: 0.06 against 0.07, by chance or not
    stream.run(1200, error=0.07, shadow=lambda loss: {"displaced": next(errs)})
    assert stream.decisions[-1].restore == parked and stream.guard.challengers == []
    assert stream.guard.probation is None


def test_the_displaced_model_is_part_of_the_guard_state():
    import pickle

    stream, parked = recalled_while_learning()
    restarted = pickle.loads(pickle.dumps(stream.guard))
    assert restarted.challengers == ["displaced"] and restarted.probation.recalled == parked


def promoted_the_fresh_model(**overrides) -> tuple[Stream, str]:
    """A concept change the fresh model wins first: the candidate, the runner-up, learns on."""
    stream = quarantined_by_concept(**overrides)
    restored = stream.guard.quarantine.restored
    stream.run(200, error=0.6,
               shadow=lambda loss: {"candidate": loss, "fresh": 0.0} if stream.guard.quarantine else None)
    promote = stream.decisions[-1]
    assert (promote.action, promote.challenger, promote.park) == ("promote", "fresh", (restored,))
    assert stream.guard.challengers == [f"parked:{restored}", "candidate"]
    return stream, restored


def test_the_runner_up_of_a_promotion_goes_on_when_it_predicts_the_new_regime_significantly_better():
    stream, restored = promoted_the_fresh_model()
    promoted = stream.decisions[-1]
    # Once it has adapted, the candidate errs on far fewer events than the fresh model (0.01 against
    # 0.06): the sequential test, and the margin on the evidence window (200 events here).
    errs = itertools.cycle([1.0] + [0.0] * 99)
    stream.run(3000, error=0.06, shadow=lambda loss: {"candidate": next(errs)})
    win = stream.decisions[-1]
    assert win is not promoted and win.at - promoted.at < 1000
    assert (win.action, win.trigger, win.source, win.target) == ("promote", "auto", "learning", "learning")
    assert (win.candidate, win.challenger, win.restore, win.park) == ("promote", "candidate", None, ())
    assert (win.evidence["test"], win.evidence["alpha"]) == ("sequential", 0.01) and win.evidence["events"] == 200
    assert "the candidate, which went on learning in shadow after the promotion, beats" in win.reason
    # The fresh model lost on the new regime: not parked. The old regime's model stays on probation.
    assert [p.snapshot for p in stream.guard.parked] == [restored]
    assert stream.guard.challengers == [f"parked:{restored}"]


def test_a_runner_up_that_is_not_better_is_dropped_when_the_probation_ends():
    stream, restored = promoted_the_fresh_model(probation=1000)
    errs = itertools.cycle([1.0] * 6 + [0.0] * 94)  # a little better: 0.06 against 0.07, by chance or not
    stream.run(1200, error=0.07, shadow=lambda loss: {"candidate": next(errs)})
    assert stream.decisions[-1].challenger == "fresh" and stream.guard.probation is None
    assert stream.guard.challengers == []


def test_after_an_operator_promotes_no_runner_up_learns_on():
    stream = quarantined_by_concept()
    restored = stream.guard.quarantine.restored
    stream.decisions.append(stream.guard.promote(stream.index))
    assert stream.guard.challengers == [f"parked:{restored}"]  # the operator's choice stands


def test_the_runner_up_is_part_of_the_guard_state():
    import pickle

    stream, restored = promoted_the_fresh_model()
    restarted = pickle.loads(pickle.dumps(stream.guard))
    assert restarted.challengers == [f"parked:{restored}", "candidate"] and restarted.probation.rivals == ["candidate"]


def test_a_probation_win_at_chance_level_does_not_recall_a_parked_model():
    # The probation tests at every labeled event for 5,000 events: a win one window could show by
    # chance (8 better, 0 worse of 200: p = 0.008 < alpha) is not enough; a clear one is.
    stream = quarantined_by_concept()
    restored = stream.guard.quarantine.restored
    stream.run(200, error=0.6, shadow=lambda loss: {"candidate": 0.0})  # promoted; `restored` parked
    name, lucky = f"parked:{restored}", itertools.count()
    stream.run(400, error=0.1, shadow=lambda loss: {name: 0.0 if loss and next(lucky) < 8 else loss})
    assert stream.decisions[-1].action == "promote" and stream.guard.challengers == [name, "fresh"]
    stream.run(300, error=0.3, shadow=lambda loss: {name: 0.0})
    assert (stream.decisions[-1].action, stream.decisions[-1].restore) == ("resume", restored)


def test_a_rollback_that_ends_in_a_promotion_does_not_count_toward_the_storm_limit():
    stream = Stream(make(max_rollbacks=1, rollback_window=100_000)).run(1500)
    for _ in range(2):
        stream.run(300, error=0.6, shadow=lambda loss: {"candidate": 0.0})
        assert stream.guard.mode is not Mode.PAUSED
        stream.run(1500, error=0.05, shadow=lambda loss: {n: loss for n in stream.guard.challengers})
    assert [d.action for d in stream.decisions].count("promote") == 2


def test_a_parked_model_that_wins_is_brought_back():
    stream = quarantined_by_concept()
    stream.run(200, error=0.6, shadow=lambda loss: {"candidate": 0.0})  # promote; the old model is parked
    parked = stream.guard.parked[0].snapshot
    stream.run(300, error=0.05)
    stream.run(300, error=0.6)  # the old regime comes back: the promoted model errs again
    assert stream.guard.mode is Mode.QUARANTINE
    assert f"parked:{parked}" in stream.guard.challengers
    stream.run(200, error=0.6, shadow=lambda loss: {"candidate": loss, f"parked:{parked}": 0.0})
    back = stream.decisions[-1]
    assert (back.action, back.restore, back.target) == ("resume", parked, "learning")
    assert "earlier regime" in back.reason
    assert back.catch_up == (stream.decisions[-2].evidence["onset"], back.at + 1)  # the events it won on


def test_on_a_tie_a_parked_model_wins_over_the_candidate_and_the_fresh_model():
    stream = quarantined_by_concept()
    stream.run(200, error=0.6, shadow=lambda loss: {"candidate": 0.0})  # promote; the old model is parked
    parked = stream.guard.parked[0].snapshot
    stream.run(300, error=0.05)
    stream.run(300, error=0.6)  # the old regime comes back
    assert stream.guard.challengers == [f"parked:{parked}", "candidate", "fresh"]
    stream.run(200, error=0.6, shadow=lambda loss: {n: 0.0 for n in stream.guard.challengers})
    assert stream.decisions[-1].restore == parked  # it knows the regime; the others learned 50 events


def test_the_inputs_of_a_parked_regime_bring_its_model_back_before_any_alarm():
    stream = Stream(make()).run(1000)
    stream.run(300, scale=100.0, error=0.6, shadow=lambda loss: {"candidate": 0.0})  # rollback, promote
    assert [d.action for d in stream.decisions] == ["rollback", "promote"]
    parked = stream.guard.parked[0].snapshot
    stream.run(1000, scale=100.0)  # the new regime, with its own reference
    rollbacks, alarms, switch = stream.guard.decision_counts["rollback"], len(stream.guard.alarms), stream.index
    stream.run(100)  # the old inputs are back
    back = stream.decisions[-1]
    assert (back.action, back.trigger, back.source, back.target, back.restore) == (
        "resume", "auto", "learning", "learning", parked)
    assert "come from the regime of" in back.reason and back.evidence["inputs"]["psi"] < back.evidence["inputs"]["limit"]
    # On the latest 40 events, at the first data check that has them: no alarm, no quarantine.
    assert back.at - switch < 40 + 10 and len(stream.guard.alarms) == alarms
    assert stream.guard.decision_counts["rollback"] == rollbacks
    assert back.catch_up == (back.evidence["onset"], back.at + 1) and switch <= back.catch_up[0]
    assert stream.guard.mode is Mode.LEARNING and back.park  # the model it replaces is parked
    stream.run(1000)
    assert stream.decisions[-1] is back  # and it stays


@pytest.mark.parametrize("restore_failed", [False, True])
def test_a_promotion_parks_the_restored_model_as_caught_up_unless_the_loop_could_not_load_it(restore_failed):
    # A snapshot taken in quarantine holds the restored model, caught up on the events between its
    # restore point and the onset, and frozen since: parked by it, the model misses none of them.
    # If the loop could not load the restored model, the live one in those snapshots is another.
    stream = quarantined_by_concept()
    rollback = stream.decisions[-1]
    if restore_failed:
        stream.guard.restore_failed()
    stream.run(200, error=0.6, shadow=lambda loss: {"candidate": loss, "fresh": loss})  # no winner yet
    stream.run(300, error=0.6, shadow=lambda loss: {"candidate": 0.0, "fresh": loss})
    promotion = stream.decisions[-1]
    assert promotion.action == "promote" and promotion.at // 100 * 100 > rollback.at
    assert promotion.park == ((rollback.restore,) if restore_failed else (caught_up(rollback, promotion),))
    assert stream.guard.parked[0].snapshot == promotion.park[0]


def test_inputs_back_soon_after_a_promotion_bring_back_the_model_parked_while_they_were_gone():
    # A short x100 incident the candidate won (it learned it): the incident ends while the new
    # reference is still being collected, so there is no current reference to depart from. The
    # new regime's inputs lay far outside the parked model's range, and the latest are back near
    # it: a run of them brings it back, before the 40 events a match by PSI asks.
    stream = Stream(make(reference_size=500)).run(1000)
    stream.run(300, scale=100.0, shadow=lambda loss: {"candidate": 0.0} if stream.guard.quarantine else None)
    rollback, promotion = stream.decisions
    assert promotion.action == "promote"
    back_at = stream.index
    stream.run(100)
    assert back_at + 100 < promotion.at + 500  # the new reference is not complete yet
    recall = stream.decisions[-1]
    assert promotion.park == (caught_up(rollback, promotion),) != (rollback.restore,)
    assert (recall.action, recall.restore, recall.target) == ("resume", promotion.park[0], "learning")
    assert f"come from the regime of {promotion.park[0]}, and are back near its range" in recall.reason
    assert recall.at - back_at < 40 and recall.catch_up[0] >= back_at
    assert stream.guard.data.ready  # compared with the recalled regime's reference again


def test_a_run_brings_a_regime_back_while_the_data_checks_are_still_quiet_after_a_promotion():
    # For `data_window` events after a promotion the window holds the old regime's events, and data
    # alarms wait; a run of events back near the parked range does not need to.
    stream = Stream(make(reference_size=500)).run(1000)
    while len(stream.decisions) < 2:  # x100 until the candidate is promoted
        stream.run(1, scale=100.0, shadow=lambda loss: {"candidate": 0.0} if stream.guard.quarantine else None)
    rollback, promotion = stream.decisions
    stream.run(20, scale=100.0)
    back_at = stream.index
    stream.run(40)
    recall = stream.decisions[-1]
    assert (recall.action, recall.restore) == ("resume", caught_up(rollback, promotion))
    assert recall.at < promotion.at + stream.guard.settings.data_window and recall.at - back_at < 25


def test_a_parked_regime_whose_inputs_lie_far_outside_the_current_range_comes_back_on_a_short_run():
    # x100, then back to x1 (the x100 model is parked with its reference), then x100 again: a run
    # of events far outside the x1 reference's range, matching the parked x100 regime, recalls it
    # before the 40 events a match by PSI asks, and it catches up from where the run began.
    stream = Stream(make()).run(1000)
    stream.run(300, scale=100.0, error=0.6, shadow=lambda loss: {"candidate": 0.0} if stream.guard.quarantine else None)
    stream.run(1500, scale=100.0, shadow=lambda loss: {n: loss for n in stream.guard.challengers})
    stream.run(1500, shadow=lambda loss: {n: loss for n in stream.guard.challengers})
    assert [d.action for d in stream.decisions] == ["rollback", "promote", "resume"]
    x100 = stream.decisions[-1].park[0]
    back_at = stream.index
    stream.run(100, scale=100.0, shadow=lambda loss: {n: loss for n in stream.guard.challengers})
    recall = stream.decisions[-1]
    assert (recall.action, recall.restore, recall.target) == ("resume", x100, "learning")
    assert f"come from the regime of {x100}, and lie far outside the current one's range" in recall.reason
    assert recall.at - back_at < 40 and recall.evidence["run"] == "far_outside_current"
    assert back_at <= recall.catch_up[0] < back_at + 10


@pytest.mark.parametrize("min_quarantine, stuck_after", [(30, 300), (210, 16)], ids=["seed 67", "seed 127"])
def test_a_stuck_sensor_that_ends_while_the_new_reference_is_collected_brings_back_the_parked_model(
        min_quarantine, stuck_after):
    # Holdout seed 67 (friedman, x0 stuck for 1,000 events): the candidate that learned the stuck
    # sensor was promoted, and the incident ended while the new reference was collected. The values
    # back lie far outside the range of the stuck ones collected (a point): a run of them that
    # matches the parked regime brings its model back, before the 40 events a match by PSI asks.
    # Holdout seed 127 (agrawal, salary zeroed [12k,13k) / tree): the candidate was promoted 16
    # events before the end. A collection begun at the promotion held almost none of the zeroed
    # values, nothing told their end, and the candidate went on (1.25% under the oracle); it begins
    # with the kept events since the alarm, which are the new regime's too.
    stream = Stream(make(reference_size=1000, min_quarantine=min_quarantine)).run(1200)
    while len(stream.decisions) < 2:
        stream.run(1, stuck=0.3, shadow=lambda loss: {"candidate": 0.0} if stream.guard.quarantine else None)
    rollback, promotion = stream.decisions
    assert promotion.action == "promote" and promotion.at - rollback.at >= min_quarantine - 10
    stream.run(stuck_after, stuck=0.3)
    back_at = stream.index
    stream.run(100)
    recall = stream.decisions[-1]
    assert (recall.action, recall.restore, recall.target) == ("resume", promotion.park[0], "learning")
    assert "lie far outside the range of the events collected for the current one" in recall.reason
    assert recall.evidence["run"] == "far_outside_collected" and recall.at - back_at < 25
    assert back_at <= recall.catch_up[0] < back_at + 10


@pytest.mark.parametrize("incident, after, run", [
    *[({"scale": 100.0}, after, "back_near_parked") for after in (20, 27, 33, 40)],
    *[({"stuck": 0.3}, after, "far_outside_current") for after in (800, 807, 813, 820)]])
def test_a_run_that_ends_an_incident_brings_the_parked_model_back_at_its_10th_event_wherever_the_checks_fall(
        incident, after, run):
    # The incident until its candidate is promoted (the normal model parked), then `after` more
    # events of it, then normal events: a run back near the parked range (x100 ends), or far
    # outside the current one (a stuck sensor moves again), is asked about at its 10th event, not
    # at the next data check (every 25 events here: up to 24 more events served by the incident's
    # model). Hold-out seed 157 (friedman, x0 stuck [7k,8k) / linear): the fresh model promoted in
    # the stuck sensor, blind to x0, served 30 events after it moved again.
    stream, rollback, promotion = promoted_in(make(reference_size=500, check_every=25, data_window=200), 1200,
                                              **incident)
    stream.run(after, **incident)
    if "stuck" in incident:
        assert stream.guard.data.snapshot_reference() is not None  # the stuck regime's, complete
    back_at = stream.index
    stood_in = [stream.run(1).guard.stand_in() for _ in range(5)]
    # The stuck regime's model does not learn the run before it is asked about (its scaler has
    # seen one value of b); back to x1 from x100 is inside the x100 range, and is learned.
    assert stream.guard.holds_out({"a": 0.0, "b": 0.9}) is ("stuck" in incident)
    assert not stream.guard.holds_out({"a": 0.0, "b": 0.9}, scaled=False)  # a model without a scaler learns it
    stood_in += [stream.run(1).guard.stand_in() for _ in range(35)]
    recall = stream.decisions[-1]
    assert (recall.action, recall.restore, recall.evidence["run"]) == ("resume", promotion.park[0], run)
    assert recall.at == back_at + FAR_MATCH_EVENTS - 1 and recall.catch_up == (back_at, recall.at + 1)
    # Up to the recall, the parked model predicts the events far outside the stuck regime's range
    # (`Loop._stand_in`); back from x100 lies inside its range, and the live model predicts it.
    parked = f"parked:{promotion.park[0]}" if "stuck" in incident else None
    assert stood_in[:FAR_MATCH_EVENTS] == [parked] * FAR_MATCH_EVENTS and not any(stood_in[FAR_MATCH_EVENTS:])
    assert pickle.loads(pickle.dumps(stream.guard)).parked._streaks == {}  # per event: not in a snapshot


def test_a_data_alarms_shadow_models_start_where_a_stuck_sensor_stuck_not_at_an_onset_estimated_early():
    # Hold-out seed 153 (friedman, x0 stuck [7k,8k) / linear): the onset was estimated 3 events
    # early, and those 3 values of x0 gave the fresh model's scaler a variance near zero; its
    # predictions blew up when the sensor moved again (5.93% over the oracle). The events before
    # the run of stuck values are the restored model's to learn.
    stream = Stream(make(reference_size=1000), seed=1).run(1200)
    while not stream.decisions:
        stream.run(1, stuck=0.3)
    rollback = stream.decisions[0]
    assert rollback.evidence["onset"] < 1200  # this stream's estimate: 1192
    assert rollback.catch_up[1] == rollback.shadow_catch_up[0] == 1200


@pytest.mark.parametrize("alarm", ["data", "concept"])
def test_after_a_promotion_the_new_reference_starts_with_the_inputs_since_a_data_alarm_only(alarm):
    # A data alarm marks where the inputs changed: the events since are the new regime's, and its
    # reference starts with the ones kept (2 x data_window, 200 here). A concept alarm does not:
    # its reference is collected from the promotion on, a whole `reference_size`.
    if alarm == "data":
        stream = Stream(make(reference_size=1000, min_quarantine=210)).run(1200)
        while len(stream.decisions) < 2:
            stream.run(1, stuck=0.3, shadow=lambda loss: {"candidate": 0.0} if stream.guard.quarantine else None)
    else:
        stream = quarantined_by_concept(reference_size=1000, min_quarantine=210)
        while stream.guard.quarantine is not None:
            stream.run(1, error=0.6, shadow=lambda loss: {"candidate": 0.0})
    rollback, promotion = stream.decisions[-2:]
    assert promotion.action == "promote" and promotion.at - rollback.at >= 200
    stream.run(800, stuck=0.3 if alarm == "data" else None, error=0.05 if alarm == "data" else 0.6)
    reference = stream.guard.data.snapshot_reference()
    if alarm == "data":
        assert reference is not None and reference.start > rollback.at
    else:
        assert reference is None  # 800 of its 1,000 events


def test_an_incident_that_ends_while_the_new_reference_is_collected_restarts_it_and_the_parked_model_comes_back():
    # A narrowed sensor (values in the middle 60% of their range) ends while the new reference is
    # collected: nothing lies far outside any range, but the collection restarts where its inputs
    # changed (a reference taken across the end would hold both regimes, and a return to either
    # would look like no change), and the events since match the parked regime.
    stream = Stream(make(reference_size=1000)).run(1200)
    # The restored model errs on 10% of the events, the candidate on none: promoted within them.
    stream.run(300, narrow=True, error=0.1, shadow=lambda loss: {"candidate": 0.0} if stream.guard.quarantine else None)
    _, promotion = stream.decisions
    assert promotion.action == "promote"
    stream.run(300, narrow=True)
    back_at = stream.index
    stream.run(200)
    recall = stream.decisions[-1]
    assert (recall.action, recall.restore, recall.target) == ("resume", promotion.park[0], "learning")
    assert "differ from the ones collected before them" in recall.reason
    assert back_at - 10 <= recall.evidence["restarted_at"] < back_at + 10 and recall.at - back_at < 100
    assert recall.at < promotion.at + 1000  # the reference was still collected


def test_a_lasting_moderate_shift_is_not_taken_for_the_old_inputs_back_while_the_new_reference_is_collected():
    # While the new reference is collected, 40 events of features with twice their spread would
    # pass for the old regime's now and then (a match needs only that chance could give them). Only
    # a run back near the old range, after the new regime's events lay far outside it often, tells
    # a return then: a few outliers far outside it are not that.
    stream = Stream(make(reference_size=1000)).run(1200)
    stream.run(300, scale=2.0, error=0.1, shadow=lambda loss: {"candidate": 0.0} if stream.guard.quarantine else None)
    assert [d.action for d in stream.decisions] == ["rollback", "promote"]
    for _ in range(7):
        stream.run(1, scale=100.0)
        stream.run(99, scale=2.0)
    assert [d.action for d in stream.decisions] == ["rollback", "promote"]


def test_a_parked_model_whose_inputs_equal_the_current_ones_is_not_recalled_by_them():
    # A concept change parks the old model with the same inputs: they match its regime all along,
    # but do not depart from the current one, so only labels could bring it back.
    stream = Stream(make()).run(1000)
    stream.run(300, error=0.6,
               shadow=lambda loss: {"candidate": 0.0, "fresh": 0.0} if stream.guard.quarantine else None)
    assert [d.action for d in stream.decisions] == ["rollback", "promote"] and stream.guard.parked[0].by_inputs
    stream.run(3000, error=0.05)
    assert [d.action for d in stream.decisions] == ["rollback", "promote"]


@pytest.mark.parametrize("extra_error_every, action", [(None, "promote"), (50, "promote"), (2, "resume")])
def test_a_harmless_shift_of_the_inputs_goes_on_with_the_candidate_unless_it_did_significantly_worse(
        extra_error_every, action):
    # An extra error every 50 events is a worse mean loss, but not significantly worse: the candidate,
    # which learned the events of the quarantine, goes on. One every 2 events is significant.
    count = itertools.count()
    stream = Stream(make(harmless_after=300)).run(1000)
    stream.run(800, scale=3.0, shadow=lambda loss: {
        "candidate": 1.0 if extra_error_every and next(count) % extra_error_every == 0 else loss})
    rollback, resolution = stream.decisions
    assert rollback.evidence["alarm"]["kind"] == "data" and stream.guard.mode is Mode.LEARNING
    assert (resolution.action, resolution.target) == (action, "learning")
    assert "the inputs moved but the restored model's error stayed" in resolution.reason
    promoted = action == "promote"
    assert resolution.candidate == ("promote" if promoted else "drop")
    # a promotion parks the restored model (as caught up)
    assert resolution.park == ((caught_up(rollback, resolution),) if promoted else ())
    stream.run(1000, scale=3.0)  # the new inputs are the reference now
    assert len(stream.decisions) == 2


@pytest.mark.parametrize("ends", [True, False])
def test_a_harmless_x100_shift_that_is_ending_is_not_accepted_the_restored_model_resumes(ends):
    # Holdout seed 73 (agrawal commission x100 [7k,8k), tree): the harmless verdict came 73 events
    # after the incident ended, before the inputs were found back, and put on the candidate, which
    # had learned the x100 events. While the latest inputs are back near the range after far ones,
    # the verdict waits; the inputs back end the quarantine "over". A x100 shift that goes on is
    # accepted as before.
    stream = Stream(make(harmless_after=300)).run(1000)
    stream.run(300, scale=100.0, shadow=lambda loss: {"candidate": loss})
    stream.run(400, scale=1.0 if ends else 100.0, shadow=lambda loss: {"candidate": loss})
    rollback, resolution = stream.decisions[:2]
    assert rollback.action == "rollback" and rollback.evidence["alarm"]["kind"] == "data"
    if ends:
        assert (resolution.action, resolution.candidate) == ("resume", "keep")  # on probation
        assert resolution.reason.startswith("incident over: the restored model's error is back")
        assert resolution.catch_up[0] == 1300  # none of the x100 events, all after them
    else:
        assert (resolution.action, resolution.candidate) == ("promote", "promote")
        assert "the inputs moved but the restored model's error stayed" in resolution.reason


def test_a_concept_alarm_on_the_inputs_of_a_parked_regime_brings_its_model_back_within_the_quarantine():
    stream = Stream(make()).run(1000)
    stream.run(300, scale=5.0, error=0.6, shadow=lambda loss: {"candidate": 0.0})  # rollback, promote
    parked = stream.guard.parked[0].snapshot
    stream.run(1500, scale=5.0, shadow=lambda loss: {n: loss for n in stream.guard.challengers})
    switch = stream.index
    # The old inputs come back, and the live model errs on them: the error detector fires first
    # (x5: few of the new regime's inputs were far outside the old range, so no run of them tells).
    stream.run(100, error=0.6, shadow=lambda loss: {n: loss for n in stream.guard.challengers})
    rollback, back = stream.decisions[-2:]
    assert rollback.action == "rollback" and rollback.evidence["alarm"]["kind"] == "concept"
    assert (back.action, back.restore, back.target) == ("resume", parked, "learning")
    assert f"inputs since the onset at event {rollback.evidence['onset']} come from the regime" in back.reason
    assert back.at - switch <= 60
    # the events of its regime since the onset: none of the x100 ones before the switch
    assert back.catch_up[1] == back.at + 1 and switch <= back.catch_up[0] <= max(switch, rollback.evidence["onset"])


def test_a_concept_alarm_on_labels_a_parked_model_predicts_better_brings_it_back_at_once():
    stream = Stream(make(probation=500)).run(1000)
    stream.run(300, error=0.6, shadow=lambda loss: {"candidate": 0.0})  # rollback, then the candidate won
    rollback, promotion = stream.decisions
    parked = stream.guard.parked[0].snapshot
    stream.run(1500)  # the new concept, learned; the probation is over
    # The old concept is back: the live model errs, the model of the restore point too (a real
    # change), the parked model predicts the events since the onset well.
    stream.run(300, error=0.6, replay=lambda snapshot, since: [0.0 if snapshot == parked else 1.0]
               * (stream.index - since + 1))
    back = stream.decisions[2]
    assert (back.action, back.restore, back.target) == ("resume", parked, "learning")
    assert "predicts the labeled events since the onset" in back.reason
    assert back.evidence["labels"]["p_value"] < 0.01 and back.evidence["labels"]["worse"] == 0
    assert back.catch_up == (back.evidence["onset"], back.at + 1)  # its regime's events since the onset
    assert stream.guard.decision_counts["rollback"] == 1 and stream.guard.mode is Mode.LEARNING


def concept_returns_soon_after_a_grid_point(**overrides) -> tuple[Stream, str]:
    """A promotion parked the old concept's model; it comes back so that the detector (ADWIN checks
    every 32 events) fires 21 labeled events after the onset: too few to score a model on."""
    stream = Stream(make(probation=500, **overrides)).run(1000)
    stream.run(300, error=0.6, shadow=lambda loss: {"candidate": 0.0})
    parked = stream.guard.parked[0].snapshot
    stream.run(1515)
    return stream, parked


def test_a_concept_alarm_too_soon_after_its_onset_is_held_until_a_parked_model_can_be_scored():
    # Holdout seed 83, mixed flipped labels [12k,18k): at the flip's end the alarm came 25 events
    # after the onset, so the quarantine had to bring the old model back, 50 labeled events later.
    stream, parked = concept_returns_soon_after_a_grid_point()
    stream.run(300, error=0.95, replay=lambda snapshot, since: [0.0 if snapshot == parked else 1.0]
               * (stream.index - since + 1))
    alarm = stream.guard.alarms[-1]
    back = stream.decisions[2]
    assert alarm["at"] - alarm["onset"] < VERIFY_MIN  # fired early
    assert (back.action, back.restore, back.target) == ("resume", parked, "learning")  # no rollback
    assert back.at == alarm["held_until"] == alarm["onset"] + VERIFY_MIN - 1  # when 30 labeled events are in
    assert back.evidence["labels"]["events"] == VERIFY_MIN
    assert stream.guard.decision_counts.get("rollback", 0) == 1  # the first one only


@pytest.mark.parametrize("restore_point_error", [1.0, 0.3])
def test_a_held_concept_alarm_rolls_back_if_no_parked_model_predicts_the_events_since_its_onset(
        restore_point_error):
    stream, parked = concept_returns_soon_after_a_grid_point()
    replay = rise_for(10_000, stream, stream.index, in_ten=round(10 * restore_point_error))  # parked ones too
    stream.run(300, error=0.95, replay=replay)
    alarm = stream.guard.alarms[-1]
    rollback = stream.decisions[2]
    assert (rollback.action, rollback.evidence["alarm"]["held_until"]) == ("rollback", rollback.at)
    # the restore point's model could be asked once 30 labeled events were in: it does no better,
    # a real change; a rise as sure as one of every event rolls back then, a smaller one is asked
    # again, on the latter half of `persist_events` (100) more: still no better
    wait = 100 if restore_point_error < SURE_RISE else 0
    assert rollback.at == alarm["onset"] + VERIFY_MIN - 1 + wait
    assert rollback.evidence["alarm"]["verified"]["drift"] and "p_value" in rollback.evidence["alarm"]["verified"]
    assert ("persisted" in alarm) == (wait > 0) and alarm.get("persisted", {"drift": True})["drift"]


def test_a_concept_alarm_is_held_at_most_30_events_when_labels_are_sparse():
    stream, parked = concept_returns_soon_after_a_grid_point(persist_events=0)
    for _ in range(60):  # labels for one event in five from the onset on
        stream.run(1, error=0.95, replay=lambda snapshot, since: [1.0] * 10)
        stream.run(4, labels=False)
    alarm = stream.guard.alarms[-1]
    rollback = stream.decisions[2]
    assert rollback.action == "rollback" and alarm["held_until"] == rollback.at
    assert VERIFY_MIN <= rollback.at - alarm["at"] < VERIFY_MIN + 5  # the first labeled event after 30
    assert (rollback.at - alarm["onset"]) // 5 < VERIFY_MIN  # fewer labeled events than that since the onset


@pytest.mark.parametrize("restore_point", ["errs", "at level", "errs from the alarm on"])
def test_without_parked_models_a_too_early_concept_alarm_waits_unless_the_restore_point_shows_the_rise(
        restore_point):
    # Hyperplane / tree, stationary seed 3066: an alarm 27 labeled events after its onset, too few
    # to verify on, rolled back unverified (the restore point's model erred 0.143 on them against
    # the live model's 0.110 before; 0.167 on 30, not significantly more). Held until 30 labeled
    # events are in, it is verified: no drift. A restore point's model that already errs on the
    # events there are (a flip, a swap, a unit change) rolls back at once.
    stream = Stream(make(persist_events=0)).run(1520)
    late = 27 if restore_point == "errs from the alarm on" else 0  # the alarm comes 27 after the onset
    stream.run(300, error=0.95, replay=rise_for(10_000, stream, stream.index + late,
                                                in_ten=0 if restore_point == "at level" else 10))
    alarm = next(a for a in stream.guard.alarms if a["level"] == "drift")
    assert SHOWN_MIN <= alarm["at"] - alarm["onset"] + 1 < VERIFY_MIN  # fired early, on enough to score
    assert alarm["early"]["snapshot"] and alarm["early"]["drift"] == (restore_point == "errs")
    rollbacks = [d.at for d in stream.decisions if d.action == "rollback"]
    if restore_point == "errs":
        assert rollbacks[:1] == [alarm["at"]] and "held_until" not in alarm
    else:  # held until 30 labeled events are in, and verified on them
        assert alarm["held_until"] == alarm["onset"] + VERIFY_MIN - 1
        assert alarm["verified"]["drift"] == (restore_point != "at level")
        assert rollbacks[:1] == ([alarm["held_until"]] if alarm["verified"]["drift"] else [])


def rise_for(events: int, stream: Stream, start: int, in_ten: int = 3):
    """A replay: the restore point's model errs on `in_ten` events in 10 from `start` for `events`
    events (a cluster of hard events, or a change if it lasts), and on 1 in 20 otherwise, as before."""
    def replay(snapshot, since):
        return [1.0 if (start <= i < start + events and i % 10 < in_ten) or i % 20 == 0 else 0.0
                for i in range(since, stream.index + 1)]
    return replay


def test_a_concept_rise_that_does_not_persist_rolls_nothing_back():
    # A cluster of hard events in a stationary stream: the live model and its restore point's both
    # err more for 100 events. The alarm, verified on the events since its onset, waits 100
    # labeled events; on the latter 50 the restore point's model is back at its level.
    stream = Stream(make()).run(1500)
    replay = rise_for(100, stream, stream.index)
    stream.run(100, error=0.3, replay=replay)
    stream.run(400, error=0.05, replay=replay)
    (alarm,) = stream.guard.alarms
    assert alarm["verified"]["drift"] and alarm["at"] - alarm["onset"] >= VERIFY_MIN
    assert alarm["held_until"] == alarm["at"] + 100 and not alarm["persisted"]["drift"]
    assert stream.decisions == [] and stream.guard.mode is Mode.LEARNING


@pytest.mark.parametrize("classifier", [True, False], ids=["classifier", "regressor"])
def test_a_concept_rise_that_persists_rolls_back_after_the_wait(classifier):
    guard = make()
    guard.classifier = classifier  # a regressor's verdict is a ratio of mean errors, without a p-value
    stream = Stream(guard).run(1500)
    replay = rise_for(10_000, stream, stream.index)
    stream.run(400, error=0.3, replay=replay)
    alarm = next(a for a in stream.guard.alarms if a["level"] == "drift")
    rollback = stream.decisions[0]
    assert (rollback.action, rollback.at) == ("rollback", alarm["at"] + 100)
    assert alarm["persisted"]["drift"] and alarm["persisted"]["snapshot"] == rollback.evidence["restored"]
    if classifier:
        assert alarm["persisted"]["p_value"] < 0.05
    assert rollback.evidence["onset"] == alarm["onset"]  # the restore point is the one before the onset


def quiet_after_the_alarm(stream: Stream, quiet_every: int, quiet_events: int | None,
                          then_every: int | None = None, quiet_errors: int = 1, before_every: int = 20):
    """A replay: the restore point's model errs on 3 events in 10 from the start of the run on (a
    change), but on `quiet_errors` in `quiet_every` for `quiet_events` events from the latter half
    of the drift alarm's wait on (None: to the end), and on 1 in `then_every` after them if given (a
    cluster over). Before the run: 1 in `before_every`, as the live model."""
    start = stream.index

    def replay(snapshot, since):
        alarm = next((a for a in reversed(stream.guard.alarms) if a["level"] == "drift"), None)
        first = alarm["at"] + 51 if alarm else stream.index + 1
        last = first + quiet_events if quiet_events is not None else stream.index + 1

        def wrong(i: int) -> bool:
            if first <= i < last:
                return i % quiet_every < quiet_errors
            if i >= last and then_every is not None:
                return i % then_every == 0
            return i % 10 < 3 if i >= start else i % before_every == 0
        return [float(wrong(i)) for i in range(since, stream.index + 1)]
    return replay


def test_a_rise_neither_shown_nor_ruled_out_on_the_latter_half_of_the_wait_is_asked_again():
    # Drawn seed 3, hyperplane swapped x6, x1 / tree: the restore point's model erred 0.22 from the
    # onset to the alarm, 0.14 on the latter 50 events of the wait (0.096 before, p = 0.15), and the
    # guard learned an 8,000-event swap. Here 1 in 10 on those 50 (0.05 before: p = 0.10, a 95%
    # bound of 0.17), then 3 in 10 again: asked on the 150 events from the same point on, it rolls back.
    stream = Stream(make()).run(1500)
    stream.run(500, error=0.3, replay=quiet_after_the_alarm(stream, quiet_every=10, quiet_events=50))
    alarm = next(a for a in stream.guard.alarms if a["level"] == "drift")
    rollback = stream.decisions[0]
    assert (rollback.action, rollback.at, alarm["looks"]) == ("rollback", alarm["at"] + 200, 2)
    assert alarm["persisted"]["drift"] and alarm["persisted"]["recent_events"] == 150


def test_a_rise_persists_if_half_of_what_an_alarm_must_show_is_left():
    # Drawn seed 1, sine gradual change [11.9k,12.9k) / tree: 0.100 on the latter 50 events of the
    # wait against 0.038 before (p = 0.011), under the 0.08 rise an alarm must show: asked for it
    # whole, the guard learned the ramp; rolled back, it ended 2.60 points over no-guard. Here 0.12
    # on those 50 (p = 0.012, not yet the LOOK_P a persisting rise needs), then 0.125 on the 150
    # from the same point on: it rolls back after the second look.
    stream = Stream(make()).run(1500)
    stream.run(500, error=0.3, replay=quiet_after_the_alarm(stream, quiet_every=8, quiet_events=None))
    alarm = next(a for a in stream.guard.alarms if a["level"] == "drift")
    rollback = stream.decisions[0]
    assert (rollback.action, rollback.at, alarm["looks"]) == ("rollback", alarm["at"] + 200, 2)
    persisted = alarm["persisted"]
    assert 0.04 <= persisted["rise"] < 0.08 and persisted["p_value"] < LOOK_P and persisted["drift"]


def test_a_cluster_whose_tail_is_not_yet_ruled_out_is_asked_again_before_it_rolls_back():
    # Drawn seed 7, rbf stationary 200k / linear: a 193-event cluster of hard events left 0.30
    # against 0.202 on the latter 50 events of the wait (p = 0.042), and the guard rolled back where
    # nothing changed. Here 0.12 against 0.05 on those 50 (p = 0.012), then 1 in 20 again: asked on
    # the 150 events from the same point on, the rise is ruled out and nothing is rolled back.
    stream = Stream(make()).run(1500)
    stream.run(500, error=0.3, replay=quiet_after_the_alarm(stream, quiet_every=8, quiet_events=50,
                                                            then_every=20))
    alarm = next(a for a in stream.guard.alarms if a["level"] == "drift")
    assert alarm["looks"] == 2 and alarm["held_until"] == alarm["at"] + 200
    assert not alarm["persisted"]["drift"] and alarm["persisted"]["rise_ruled_out"]
    assert stream.guard.decision_counts.get("rollback", 0) == 0


@pytest.mark.parametrize("classifier, quiet_every, looks", [(True, 20, 1), (False, 17, PERSIST_LOOKS)],
                         ids=["ruled-out", "undecided"])
def test_a_rise_that_does_not_show_is_dropped_once_ruled_out_or_after_the_last_look(classifier, quiet_every,
                                                                                      looks):
    # From the latter half of the wait on, the restore point's model errs as before (1 in 20): the
    # rise is ruled out at the first look. A regressor's mean loss of 1 in 17 (0.059) is under the
    # 1.25 times 0.05 a rise needs, but with a 95% bound above it: dropped at the last look.
    guard = make()
    guard.classifier = classifier
    stream = Stream(guard).run(1500)
    stream.run(600, error=0.3, replay=quiet_after_the_alarm(stream, quiet_every, quiet_events=None))
    alarm = next(a for a in stream.guard.alarms if a["level"] == "drift")
    assert alarm.get("looks", 1) == looks and alarm["held_until"] == alarm["at"] + 100 * looks
    assert not alarm["persisted"]["drift"] and alarm["persisted"]["rise_ruled_out"] == (looks == 1)
    assert stream.guard.decision_counts.get("rollback", 0) == 0


@pytest.mark.parametrize("in_ten, waits", [(5, True), (6, False)])
def test_a_rise_of_half_the_events_rolls_back_without_waiting(in_ten, waits):
    # Holdout seed 103, sine swapped columns / linear: at the swap's end the restore point's model
    # erred on 93% of the events, through the whole wait. A rise of at least SURE_RISE (0.05 -> 0.6
    # here) is no cluster of hard events; 0.05 -> 0.5 still waits.
    stream = Stream(make()).run(1500)
    stream.run(400, error=0.3, replay=rise_for(10_000, stream, stream.index, in_ten=in_ten))
    alarm = next(a for a in stream.guard.alarms if a["level"] == "drift")
    rollback = stream.decisions[0]
    assert (alarm["verified"]["rise"] >= SURE_RISE) != waits
    assert (rollback.action, rollback.at) == ("rollback", alarm["at"] + (100 if waits else 0))
    assert ("persisted" in alarm) == waits


def changed_at(stream: Stream, start: int, changed: str):
    """A replay: from event `start` on, the models of the snapshots `changed` names err on 3 events
    in 10, the others on 1 in 20 as before. "model": the snapshots taken from `start` on (a tree
    that split there, its new leaves empty); "world": every snapshot (a real change); "young": every
    snapshot, and those before `start` on 3 in 10 before it too (a model not yet at the live
    model's level); "alike": those taken from `start` on err on 16 in 100, those before on 12 of
    the same 16 (a change both feel, the older model by less than an alarm's rise)."""
    def wrong(snapshot: str, i: int) -> bool:
        taken = int(snapshot[1:])
        if changed == "young" and taken < start:
            return i % 10 < 3
        if changed == "alike" and i >= start:
            return i * 37 % 100 < (16 if taken >= start else 12)  # spread over the hundred
        if i >= start and (changed != "model" or taken >= start):
            return i % 10 < 3
        return i % 20 == 0

    def replay(snapshot, since):
        return [float(wrong(snapshot, i)) for i in range(since, stream.index + 1)]
    return replay


@pytest.mark.parametrize("changed, rolls_back", [("model", False), ("world", True), ("young", True),
                                                  ("alike", True)])
def test_a_rise_the_snapshot_before_the_restore_point_does_not_show_is_the_model_s_own(changed, rolls_back):
    # Hyperplane / tree, seed 3004: the tree split just before the snapshot at event 2,000, the
    # onset was estimated at 2,005, and that snapshot, frozen, erred 0.24 since: the guard rolled
    # back to it where nothing changed. The snapshot before it erred 0.054 before the onset and
    # 0.109 since, against the live model's 0.058: the restore point's model changed, not the world.
    # Here the live model errs 3 in 10 for 200 events from the snapshot at 1,500 on, then its new
    # leaves have learned. A change of the world, an earlier model not at the live model's level
    # before the onset, or one that errs about as the restore point's since (drawn seed 1, sine
    # gradual change / tree: 0.116 and 0.122, the former under an alarm's rise) leaves the restore
    # point's verdict standing.
    stream = Stream(make()).run(1500)
    replay = changed_at(stream, stream.index, changed)
    stream.run(200, error=0.3, replay=replay)
    stream.run(300, error=0.3 if rolls_back else 0.05, replay=replay)
    alarm = next(a for a in stream.guard.alarms if a["level"] == "drift")
    verified = alarm["verified"]
    assert alarm["onset"] >= 1500 and stream.guard.last_good(alarm["onset"]) == "s001500"
    if rolls_back:
        assert verified["drift"] and verified["snapshot"] == "s001500" and "restore_point" not in verified
        assert [d.action for d in stream.decisions][:1] == ["rollback"]
    else:
        assert not verified["drift"] and verified["snapshot"] == "s001400"
        assert verified["restore_point"]["drift"] and verified["restore_point"]["snapshot"] == "s001500"
        assert verified["since_onset"]["recent_loss"] == pytest.approx(0.05, abs=0.01)
        assert verified["paired"]["p_value"] < 0.05
        assert stream.decisions == [] and stream.guard.mode is Mode.LEARNING


@pytest.mark.parametrize("world_changed", [False, True], ids=["model", "world"])
def test_a_restore_point_caught_just_after_its_model_changed_is_passed_over(world_changed):
    # Hyperplane / tree, stationary seed 2039: the tree of the snapshot at event 17,000 erred 0.226
    # on the 235 events before the onset, against the live model's 0.096 (it had just split); it
    # "confirmed" the rise of a cluster of hard events, and the guard rolled back to it where
    # nothing changed. Here the snapshot at 1,500 errs 3 in 10 from 1,500 on, the one at 1,400 as
    # the live model did (1 in 20) before the onset; the live model errs 3 in 10 from 1,560 on, for
    # 200 events (its own doing: the one at 1,400 errs as before) or for good (every model does: a
    # change of the world).
    stream = Stream(make()).run(1560)

    def replay(snapshot, since):
        def wrong(i):
            if snapshot == "s001500" and i >= 1500 or world_changed and i >= 1560:
                return i % 10 < 3
            return i % 20 == 0
        return [float(wrong(i)) for i in range(since, stream.index + 1)]

    stream.run(200, error=0.3, replay=replay)
    stream.run(300, error=0.3 if world_changed else 0.05, replay=replay)
    alarm = next(a for a in stream.guard.alarms if a["level"] == "drift")
    verified = alarm["verified"]
    assert stream.guard.last_good(alarm["onset"]) == "s001500"  # the newest snapshot before the onset
    assert verified["snapshot"] == "s001400" and verified["passed_over"]["snapshot"] == "s001500"
    assert verified["passed_over"]["before_onset"]["recent_loss"] > 0.2  # its events before the onset
    assert verified["passed_over"]["earlier_before_onset"]["recent_loss"] < 0.1
    assert verified["drift"] == world_changed
    rollbacks = [d for d in stream.decisions if d.action == "rollback"]
    if world_changed:  # the rise persists on s001400's model too: it is the restore point
        assert alarm["persisted"]["drift"] and alarm["persisted"]["snapshot"] == "s001400"
        assert rollbacks[0].restore == "s001400" and "the snapshot before s001500" in rollbacks[0].reason
        assert rollbacks[0].catch_up[0] == 1400  # it learns the events before the onset again
    else:
        assert rollbacks == [] and stream.guard.mode is Mode.LEARNING


def test_a_held_alarm_is_part_of_the_guard_state_and_any_decision_drops_it():
    import pickle

    stream, parked = concept_returns_soon_after_a_grid_point()
    for _ in range(40):
        stream.run(1, error=0.95, replay=lambda snapshot, since: [1.0])
        if stream.guard._held is not None:
            break
    restarted = pickle.loads(pickle.dumps(stream.guard))
    assert restarted._held is not None and restarted._held[0]["onset"] == stream.guard._held[1]
    stream.guard.pause(stream.index)
    assert stream.guard._held is None


def test_label_recognition_pairs_a_replay_of_the_kept_tail_with_the_latest_live_losses():
    # The loop keeps the latest labeled events only: a replay may cover fewer than the live losses.
    stream = Stream(make(probation=500)).run(1000)
    stream.run(300, error=0.6, shadow=lambda loss: {"candidate": 0.0})
    parked = stream.guard.parked[0].snapshot
    stream.run(1500)
    stream.run(300, error=0.6, replay=lambda snapshot, since: [0.0 if snapshot == parked else 1.0]
               * min(35, stream.index - since + 1))
    back = stream.decisions[2]
    assert (back.action, back.restore) == ("resume", parked) and back.evidence["labels"]["events"] == 35


@pytest.mark.parametrize("parked_error", [1.0, 1 / 5], ids=["no better", "better, but not at the old level"])
def test_a_parked_model_that_does_not_predict_the_events_since_the_onset_well_is_not_brought_back(parked_error):
    stream = Stream(make(probation=500)).run(1000)
    stream.run(300, error=0.6, shadow=lambda loss: {"candidate": 0.0})
    stream.run(1500)

    def replay(snapshot, since):  # the restore point errs on everything (a real change)
        n = stream.index - since + 1
        if snapshot not in {p.snapshot for p in stream.guard.parked}:
            return [1.0] * n
        return [1.0 if k % round(1 / parked_error) == 0 else 0.0 for k in range(n)]

    stream.run(300, error=0.6, replay=replay)
    assert stream.decisions[2].action == "rollback"  # a quarantine decides, as for any change


def harmless_shift_accepted() -> tuple[Stream, str]:
    """A shift of the inputs taken for harmless: the candidate went on, the restored model is parked.
    The probation after the promotion is over by the end: only a quarantine's contest can recall it."""
    stream = Stream(make(harmless_after=300, probation=500)).run(1000)
    stream.run(800, scale=3.0)
    rollback, promotion = stream.decisions
    assert promotion.action == "promote" and promotion.park == (caught_up(rollback, promotion),)
    stream.run(1000, scale=3.0)
    return stream, promotion.park[0]


def test_after_a_harmless_shift_the_return_of_the_old_inputs_rolls_nothing_back():
    # The live model went on from the parked one through the shift: it knows both regimes, and
    # learns on at the return, compared with the old regime's reference again; the parked model
    # predicts in shadow on probation.
    stream, parked = harmless_shift_accepted()
    old_reference = next(p.reference for p in stream.guard.parked if p.snapshot == parked)
    assert pickle.loads(pickle.dumps(stream.guard))._harmless_parked == parked  # part of the state
    same = {"shadow": lambda loss: {n: loss for n in stream.guard.challengers}}  # no model predicts better
    while len(stream.decisions) == 2 and stream.index < 3500:
        stream.run(1, **same)  # the old inputs are back
    back = stream.decisions[2]
    assert (back.action, back.source, back.target, back.restore) == ("resume", "learning", "learning", None)
    assert back.evidence["alarm"]["kind"] == "data" and back.evidence["parked"] == parked
    assert "learning goes on" in back.reason and back.evidence["alarm"] is stream.guard.alarms[-1]
    assert stream.guard.data.snapshot_reference() is old_reference
    assert stream.guard.challengers == [f"parked:{parked}"]
    stream.run(3500 - stream.index, **same)
    assert stream.decisions[3:] == [] and stream.guard.mode is Mode.LEARNING
    assert stream.guard.decision_counts["rollback"] == 1


def test_after_a_harmless_shift_and_another_decision_the_return_of_the_old_inputs_rolls_back():
    # Once another model is live (here an operator's rollback), nothing says it learned the old regime.
    stream, parked = harmless_shift_accepted()
    stream.guard.rollback(stream.index, "s001000", resume=True)
    stream.run(700, shadow=lambda loss: {n: loss for n in stream.guard.challengers})  # the old inputs are back
    again = stream.decisions[2]
    assert (again.action, again.target) == ("rollback", "quarantine") and again.evidence["alarm"]["kind"] == "data"


@pytest.mark.parametrize("fresh_errors, winner", [(4, "parked:s1"), (0, "fresh")])
def test_a_parked_model_that_wins_gives_way_only_to_a_newcomer_that_beats_it_head_to_head(fresh_errors, winner):
    # 48 events: the restored model errs on 43; the parked model on 6; the fresh model on 4 (a lower
    # mean, by two events: chance) or on none (six events apart, no event the other way: p = 0.03,
    # so the test at alpha 0.05 tells).
    contest = Contest(["parked:s1", "candidate", "fresh"], window=500, recent=20)
    for i in range(48):
        contest.add(restored=1.0 if i < 43 else 0.0, challengers={
            "parked:s1": 1.0 if i % 8 == 0 else 0.0, "candidate": 1.0,
            "fresh": 1.0 if i % 8 == 0 and i < 8 * fresh_errors else 0.0})
    name, evidence = contest.winner(alpha=0.05, margin=0.1)
    assert name == winner
    head_to_head = evidence["head_to_head"]
    assert (head_to_head["better"], head_to_head["worse"]) == (6 - fresh_errors, 0)  # fresh against parked
    other = {"newcomer": "fresh"} if winner == "parked:s1" else {"against": "parked:s1"}
    assert other.items() <= head_to_head.items()


def test_after_a_harmless_shift_the_parked_model_comes_back_by_winning_its_probation_at_the_return():
    stream, parked = harmless_shift_accepted()
    # The old inputs are back, and the model that learned through the shift errs more on them than
    # the parked one (not enough for a concept alarm, which would quarantine it).
    stream.run(600, error=0.12, shadow=lambda loss: {n: 0.0 if n.startswith("parked:") else loss
                                                     for n in stream.guard.challengers})
    goes_on, back = stream.decisions[2:]
    assert (goes_on.action, goes_on.restore, goes_on.evidence["parked"]) == ("resume", None, parked)
    assert (back.action, back.restore, back.source, back.target) == ("resume", parked, "learning", "learning")
    assert "beats the live model" in back.reason


def test_a_rise_the_model_of_the_restore_point_does_not_share_is_not_drift():
    stream = Stream(make()).run(1500)
    stream.run(300, error=0.6, replay=lambda snapshot, since: [0.0] * 60)  # the older model does fine
    assert stream.decisions == [] and stream.guard.mode is Mode.LEARNING
    alarm = [a for a in stream.guard.alarms if a["level"] == "drift"][0]
    assert alarm["verified"]["drift"] is False and "the live model changed" in alarm["verified"]["reason"]


def test_a_significant_rise_of_the_restore_point_smaller_than_an_alarms_is_not_drift():
    stream = Stream(make()).run(1500)  # error 0.05
    # The older model errs at 0.10 since the onset: significantly above 0.05 on 200 events, but the
    # world's part of the live model's rise to 0.6 is under min_increase (0.08).
    stream.run(300, error=0.6, replay=lambda snapshot, since: ([1.0] + [0.0] * 9) * 20)
    alarm = [a for a in stream.guard.alarms if a["level"] == "drift"][0]["verified"]
    assert alarm["drift"] is False and alarm["p_value"] < 0.05 and alarm["rise"] < alarm["min_increase"]
    assert not [d for d in stream.decisions if d.action == "rollback"]


def test_a_rise_the_model_of_the_restore_point_shares_is_drift():
    stream = Stream(make()).run(1500)
    stream.run(300, error=0.6, replay=lambda snapshot, since: [1.0, 0.0] * 30)
    assert stream.decisions[0].action == "rollback"
    assert stream.decisions[0].evidence["alarm"]["verified"]["drift"] is True


def test_a_rollback_that_ends_with_a_parked_regime_back_does_not_count_toward_the_storm_limit():
    stream = quarantined_by_concept(max_rollbacks=1, rollback_window=100_000)
    stream.run(200, error=0.6, shadow=lambda loss: {"candidate": 0.0})  # promoted: not counted
    parked = stream.guard.parked[0].snapshot
    stream.run(300, error=0.05)
    stream.run(300, error=0.6)  # the old regime: a rollback, then its parked model wins
    stream.run(200, error=0.6, shadow=lambda loss: {"candidate": loss, f"parked:{parked}": 0.0})
    assert stream.decisions[-1].restore == parked
    stream.run(1500, error=0.05)
    stream.run(300, error=0.6)  # a third alarm: still a rollback, not a storm pause
    assert stream.decisions[-1].action == "rollback" and stream.guard.mode is Mode.QUARANTINE


def test_data_drift_without_labels_stays_in_quarantine_until_the_inputs_return():
    stream = Stream(make()).run(1000)
    stream.run(300, scale=100.0, labels=False)
    assert stream.guard.mode is Mode.QUARANTINE and len(stream.decisions) == 1
    stream.run(300, labels=False)
    assert stream.guard.mode is Mode.LEARNING
    assert stream.decisions[-1].action == "resume" and "inputs are back" in stream.decisions[-1].reason


@pytest.mark.parametrize("policy, action, target", [("stay", "alert", "quarantine"), ("resume", "resume", "learning"),
                                                     ("promote", "promote", "learning")])
def test_at_the_quarantine_limit_the_policy_applies(policy, action, target):
    stream = quarantined_by_concept(policy=policy, max_quarantine=300)
    stream.run(400, error=0.6, shadow=lambda loss: {"candidate": loss})  # no evidence either way
    last = stream.decisions[-1]
    assert (last.action, last.target) == (action, target)
    if policy == "stay":
        assert last.alert and stream.guard.alert
        assert [d.action for d in stream.decisions].count("alert") == 1  # said once, not per event


# -- guardrails --------------------------------------------------------------------------------

def test_no_resolution_before_the_minimum_quarantine_length():
    # The candidate is plainly better after a few dozen events, but the guard waits for 100.
    stream = quarantined_by_concept(min_quarantine=100)
    labeled = stream.guard.quarantine.contest.labeled
    stream.run(99 - labeled, error=0.6, shadow=lambda loss: {"candidate": 0.0})
    assert stream.guard.mode is Mode.QUARANTINE
    stream.run(1, error=0.6, shadow=lambda loss: {"candidate": 0.0})
    assert stream.guard.mode is Mode.LEARNING and stream.decisions[-1].action == "promote"


def test_a_rollback_storm_pauses_and_alerts_instead_of_flapping():
    stream = Stream(make(max_rollbacks=2, rollback_window=100_000)).run(1500)
    for _ in range(3):
        stream.run(300, error=0.6, shadow=lambda loss: {"candidate": loss})
        if stream.guard.mode is Mode.QUARANTINE:
            stream.run(400, error=0.05, shadow=lambda loss: {"candidate": loss})
        stream.run(1200)
    actions = [d.action for d in stream.decisions]
    assert actions.count("rollback") == 2
    assert actions[-1] == "pause" and stream.decisions[-1].alert and stream.guard.mode is Mode.PAUSED
    assert "flapping" in stream.guard.alert


def test_an_alarm_with_no_restore_point_pauses_and_alerts():
    guard = Guard(GuardSettings(reference_size=200, data_window=100, check_every=10), classifier=True)
    stream = Stream(guard)
    stream.guard.restore_points.clear()
    stream.run(1000)
    guard.restore_points.clear()
    stream.run(300, scale=100.0)
    assert guard.mode is Mode.PAUSED and stream.decisions[-1].alert
    assert "no snapshot" in stream.decisions[-1].reason


def test_manual_always_wins_and_paused_is_never_left_automatically():
    stream = quarantined_by_concept()
    stream.decisions.append(stream.guard.pause(stream.index))
    stream.run(500, error=0.05, shadow=lambda loss: {"candidate": 0.0})
    stream.run(500, error=0.6, scale=100.0)
    assert stream.guard.mode is Mode.PAUSED
    assert [d.action for d in stream.decisions] == ["rollback", "pause"]
    # the candidate waits for the operator, who may promote it from paused
    promote = stream.guard.promote(stream.index)
    assert (promote.source, promote.target, promote.trigger) == ("paused", "learning", "manual")


def test_manual_commands_in_every_mode():
    guard = make()
    with pytest.raises(GuardError, match="already learning"):
        guard.resume(0)
    with pytest.raises(GuardError, match="no candidate"):
        guard.promote(0)
    d = guard.rollback(10, "s-initial", resume=True)
    assert (d.source, d.target, d.restore, d.trigger) == ("learning", "learning", "s-initial", "manual")
    d = guard.rollback(11, "s-initial")
    assert (d.source, d.target) == ("learning", "paused")
    d = guard.rollback(12, "s-initial")
    assert (d.source, d.target) == ("paused", "paused")
    d = guard.resume(13)
    assert (d.source, d.target) == ("paused", "learning")
    d = guard.pause(14)
    assert (d.source, d.target) == ("learning", "paused")
    assert guard.rollback_counts == {"manual": 3}
    assert guard.decision_counts == {"rollback": 3, "resume": 1, "pause": 1}


def test_retention_keeps_the_restore_points_an_alarm_may_need():
    guard = make(lookback=1000)
    for events in range(100, 5001, 100):
        guard.snapshot_taken(f"s{events:06d}", events)
    kept = guard.protected(5000)
    assert "s004000" in kept  # newest point older than the lookback: an onset at 4000 needs it
    assert all(f"s{e:06d}" in kept for e in range(4100, 5001, 100))
    assert "s003900" not in kept and "s-initial" not in kept


# -- properties --------------------------------------------------------------------------------

operation = st.one_of(
    st.tuples(st.just("events"), st.integers(1, 60), st.sampled_from([0.02, 0.3, 0.7]),
              st.sampled_from([1.0, 1000.0]), st.booleans(), st.sampled_from(["none", "better", "same"])),
    st.tuples(st.just("pause")), st.tuples(st.just("resume")), st.tuples(st.just("promote")),
    st.tuples(st.just("rollback"), st.booleans()),
)


@hyp_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, min_size=1, max_size=40), st.integers(0, 1000))
def test_paused_is_only_left_by_an_operator_and_quarantine_always_has_a_restore_point(ops, seed):
    guard = make(reference_size=100, data_window=50, check_every=5, min_quarantine=10, evidence_window=50,
                 lookback=500)
    stream = Stream(guard, seed=seed).run(400)
    shadows = {"none": None, "better": lambda loss: {n: 0.0 for n in guard.challengers},
               "same": lambda loss: {n: loss for n in guard.challengers}}
    for op in ops:
        before = guard.mode
        if op[0] == "events":
            _, n, error, scale, labels, shadow = op
            for _ in range(n):
                stream.run(1, error=error, scale=scale, labels=labels, shadow=shadows[shadow])
                if before is Mode.PAUSED:
                    assert guard.mode is Mode.PAUSED, "paused was left without an operator"
                _check_invariants(guard)
            continue
        try:
            if op[0] == "rollback":
                guard.rollback(stream.index, "s-initial", resume=op[1])
            else:
                getattr(guard, op[0])(stream.index)
        except (GuardError, IllegalTransition):
            assert guard.mode is before
        _check_invariants(guard)
    for decision in guard.decisions:
        if decision.source == "paused":
            assert decision.trigger == "manual"


def _check_invariants(guard: Guard) -> None:
    if guard.mode is Mode.QUARANTINE:
        assert guard.quarantine is not None and guard.quarantine.restored is not None
    if guard.mode is Mode.LEARNING:
        assert guard.quarantine is None


def test_a_guard_from_a_snapshot_of_the_older_shape_resumes():
    # Before drift/regimes.py, parked models and restore points were plain lists in the guard;
    # before drift/history.py, its losses were a plain deque; before Probation, a probation was
    # its bare contest; before recall by contest only, parked models had no `by_inputs`; before
    # held alarms, no `_held`; before the return from a harmless shift, no `_harmless_parked`.
    from collections import deque

    from drift.contest import Contest
    from drift.guard import Parked, RestorePoint

    state = dict(Guard(GuardSettings()).__dict__)
    old_parked = Parked("s0", None, 10)
    del old_parked.__dict__["by_inputs"]
    state["parked"] = [old_parked]
    state["restore_points"] = [RestorePoint("s1", 500, Mode.LEARNING)]
    del state["losses"]
    state["_losses"] = deque([(i, 0.25) for i in range(400, 600)], maxlen=2000)
    state["probation"] = Contest(["parked:s0"], window=200)
    state["probation"].add(0.0, {"parked:s0": 0.0})
    del state["_held"]  # before concept alarms were held
    del state["_harmless_parked"]
    guard = Guard.__new__(Guard)
    guard.__setstate__(state)  # what unpickling the snapshot does

    assert guard.last_good(600) == "s1" and guard.challengers == ["parked:s0"]
    assert [p.snapshot for p in guard.parked] == ["s0"] and guard.protected(600) == {"s0", "s1"}
    assert guard.parked[0].by_inputs and guard.probation.labeled == 1 and not guard.probation.over
    assert guard.losses.baseline(onset=600) == 0.25 and not hasattr(guard, "_losses") and guard._held is None
    assert guard._harmless_parked is None


def test_a_probation_from_a_snapshot_before_the_candidate_learned_on_after_an_incident_loads():
    import pickle

    from drift.regimes import Probation

    old = Probation([], 5000, rivals=["displaced"], recalled="s0")
    del old.__dict__["resumed"]  # the shape before 'incident over' kept the candidate in shadow
    probation = pickle.loads(pickle.dumps(old))
    assert probation.resumed is None and probation.rivals == ["displaced"] and probation.recalled == "s0"


def test_each_look_at_a_persisting_rise_asks_for_its_share_of_the_persistence_p_value():
    # Hyperplane / tree, stationary seed 5084: a rise undecided on the first two looks was shown on
    # the third at p = 0.007 and rolled back where nothing changed; three looks at PERSIST_P each
    # give a cluster up to three chances. Here the restore point's model errs 0.173 on the 150 events
    # of the second look against 0.10 before (p = 0.0039, under PERSIST_P but not LOOK_P): asked
    # again, 0.144 on 250 (p = 0.017), and nothing rolls back. At 1 in 6 the second look is
    # undecided (0.167, p = 0.0076) and the third shows the rise (0.16, p = 0.0021, under LOOK_P):
    # it rolls back.
    for (every, errors), rolls_back in [((54, 9), False), ((30, 5), True)]:
        stream = Stream(make(), seed=3).run(1500, error=0.1)
        stream.run(600, error=0.3, replay=quiet_after_the_alarm(stream, every, quiet_events=None,
                                                                quiet_errors=errors, before_every=10))
        alarm = next(a for a in stream.guard.alarms if a["level"] == "drift")
        persisted = alarm["persisted"]
        assert alarm["looks"] == PERSIST_LOOKS and alarm["held_until"] == alarm["at"] + 100 * PERSIST_LOOKS
        assert persisted["drift"] == rolls_back and (persisted["p_value"] < LOOK_P) == rolls_back
        assert [d.action for d in stream.decisions][:1] == (["rollback"] if rolls_back else [])
