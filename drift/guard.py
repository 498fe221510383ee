"""The drift guard: watches inputs and errors, and decides when to quarantine, resume or promote.

The guard is pure: it receives numbers and feature dicts and returns `Decision`s; the loop in
`stream/` carries them out (restores a model from a snapshot, starts or promotes the candidate).

- `learning`: the live model learns. An alarm (concept drift on its errors, or data drift on its
  inputs) estimates when the change began and decides a *rollback* to the last snapshot taken before
  then, entering `quarantine`. Two checks come first: a concept alarm is verified on the model of
  that snapshot (`replay`: if it still predicts the events since the onset as well as before, the
  live model changed, not the world, and learning goes on, as it does when the snapshot before it
  predicts the events before and since the onset at the live model's old level, and better than
  the restore point's since; a restore point whose model errs more before the onset too, while the
  snapshot before it does not, is passed over for that one; if it errs more too, the alarm waits
  for the rise to persist: `_verified` and `_rise_to_confirm`, in `drift/confirm.py`), and an
  alarm (of either kind) whose inputs since the onset match a parked model's regime brings that
  model back at once (in quarantine, every data check asks the same), as does a concept alarm on
  labeled events a parked model predicts significantly better than the live one did, and at the
  old error level (a concept alarm with too few labeled events since its onset for these scores
  waits for them, while parked models exist or until the restore point's model shows the rise:
  `_too_early`). A data alarm at the return of the inputs from before a harmless shift, while the
  live model is the one that went on through it, rolls nothing back: learning goes on
  (`_back_from_harmless`).
- `quarantine`: the restored model is live and frozen; a candidate (a copy that keeps learning), a
  fresh model (untrained at the rollback; it learns too) and parked models of earlier regimes
  predict in shadow. The evidence on the same labeled events gives a verdict
  (`drift/quarantine.py`): promote the candidate or the fresh model (the world changed), bring
  back a parked model (a known regime came back), resume (the incident is over; after a long
  concept quarantine the better of candidate and fresh model is parked: it learned a concept that
  may recur), accept the inputs (the shift is harmless), or apply the policy at the limit
  (default: stay and alert). After an automatic promotion the runner-up of candidate and fresh model
  learns on in shadow for `probation` labeled events, and goes on if it proves better; so does the
  model a recall while learning displaced, and the candidate after an incident is over (unless
  parked), which learned through it. Decisions name the kept labeled events the new live model
  learns (`catch_up`): those between its snapshot and the onset, those since the onset that a
  recalled model's regime showed in (inputs that matched it, or a contest it won), or, when a data
  incident is over, those since the inputs were found back. Restore points and parked models are
  kept in `drift/regimes.py`.
- `paused`: an operator's stop. The guard never leaves it by itself.
"""

from __future__ import annotations

from collections import deque

from drift.concept import ConceptDetector
from drift.confirm import AlarmConfirmation
from drift.contest import Contest
from drift.data import DataDriftDetector
from drift.decisions import Decision, IllegalTransition, Mode, check_transition
from drift.history import LossHistory, Replay
from drift.matching import FAR_MATCH_EVENTS
from drift.quarantine import SHADOW_NAMES, Quarantine, QuarantineResolution
from drift.recall import RegimeRecall
from drift.regimes import (  # noqa: F401 - Parked, RestorePoint: see __setstate__
    Parked, ParkedModels, Probation, RestorePoint, RestorePoints)
from drift.settings import POLICIES, GuardSettings



class GuardError(ValueError):
    """A command the guard cannot carry out in its current state (e.g. promote with no candidate)."""


class Guard(AlarmConfirmation, QuarantineResolution, RegimeRecall):
    """The state machine; the loop calls `observe_*` per event and the command methods on demand.

    Three parts are in files of their own: when a concept alarm acts (`drift/confirm.py`), how a
    quarantine's verdict becomes a decision (`drift/quarantine.py`), and the decisions about
    earlier regimes: recalls, and models that learn on in shadow after a switch
    (`drift/recall.py`)."""

    def __init__(self, settings: GuardSettings | None = None, *, classifier: bool = True,
                 history: int | None = 1000) -> None:
        self.settings = s = settings or GuardSettings()
        self.classifier = classifier
        self.mode = Mode.LEARNING
        self.concept = None
        self.data = None
        if s.enabled:
            self.concept = ConceptDetector(
                s.detector,
                task="classification" if classifier else "regression",
                params=dict(s.detector_params),
                min_increase=s.min_increase,
                min_ratio=s.min_ratio,
            )
            if s.data_drift:
                self.data = DataDriftDetector(
                    reference_size=s.reference_size,
                    window=s.data_window,
                    check_every=s.check_every,
                    psi_threshold=s.psi_threshold,
                )
        self.quarantine: Quarantine | None = None
        self.probation: Probation | None = None  # after a promotion (drift/regimes.py)
        self.parked = ParkedModels(s.parked_max)
        self.restore_points = RestorePoints(s.lookback)
        # The newest `history` decisions and alarms (None: all, as a backtest reports them).
        self.decisions: deque[Decision] = deque(maxlen=history)
        self.alarms: deque[dict] = deque(maxlen=history)
        self.alert: str | None = None
        # Totals for metrics: (detector, kind) -> alarms; action -> decisions; trigger -> rollbacks.
        self.alarm_counts: dict[tuple[str, str], int] = {}
        self.decision_counts: dict[str, int] = {}
        self.rollback_counts: dict[str, int] = {}
        self._auto_rollbacks: deque[int] = deque()
        self.losses = LossHistory(s.lookback)  # while learning: the baseline, and alarm verification
        # After the data reference changes, the recent window still holds the other regime's
        # inputs: data alarms wait until it has filled with events compared on the new terms (a
        # run of events that tells a regime's return does not: `ParkedModels.recognise_far`).
        self._data_quiet_until = -1
        self._checks_seen = 0
        self._learning_since = 0
        self._held: tuple[dict, int, int] | None = None  # (alarm, onset, index): `_concept_alarm`
        # The model parked when the live one went on through a harmless shift of the inputs, until
        # another decision: `_back_from_harmless`.
        self._harmless_parked: str | None = None
        self._standing_in: str | None = None  # per event: `stand_in`

    def __setstate__(self, state: dict) -> None:
        # Snapshots written before drift/regimes.py hold plain lists of `drift.guard.Parked` and
        # `drift.guard.RestorePoint` (hence their import here): wrap them.
        if isinstance(state.get("parked"), list):
            parked, state["parked"] = state["parked"], ParkedModels(state["settings"].parked_max)
            state["parked"].models = parked
        if "_losses" in state:  # before drift/history.py: a plain deque of (index, loss)
            state["losses"] = LossHistory(state["settings"].lookback)
            state["losses"].losses.extend(state.pop("_losses"))
        if isinstance(state.get("probation"), Contest):  # before Probation: its bare contest
            probation = state["probation"]
            state["probation"] = Probation(probation.challengers, state["settings"].probation, probation.window)
            state["probation"].contests = [probation]
        if isinstance(state.get("restore_points"), list):
            points, state["restore_points"] = state["restore_points"], RestorePoints(state["settings"].lookback)
            state["restore_points"].points = points
        state.setdefault("_held", None)
        state.setdefault("_harmless_parked", None)
        state.setdefault("_standing_in", None)
        self.__dict__.update(state)

    # -- what the loop asks per event --------------------------------------------------------

    @property
    def learning(self) -> bool:
        return self.mode is Mode.LEARNING

    @property
    def challengers(self) -> list[str]:
        """Shadow models the loop must keep and score: "candidate", "fresh" and "parked:<snapshot>".
        An operator's pause in quarantine keeps them (not learning): the operator may promote one."""
        if self.mode in (Mode.QUARANTINE, Mode.PAUSED) and self.quarantine is not None:
            return self.quarantine.contest.challengers
        if self.mode is Mode.LEARNING and self.probation is not None:
            return self.probation.challengers
        return []

    def holds_out(self, x: dict, scaled: bool = True) -> bool:
        """Should the live model, while learning, not learn this labeled event? Yes if a number in
        it lies absurdly far outside the inputs' reference (`InputMatching.absurd`): one event is
        not a shift, and if such numbers go on, the data alarm quarantines and the candidate learns
        them. Yes too, for a model that standard-scales its inputs (`scaled`), if it moves a
        feature constant in the reference in a run not yet long enough to ask about
        (`InputMatching.in_short_far_run`). A model without a scaler learns it: Hoeffding trees
        lost 0.15 to 0.32 point on four hold-out and drawn rows without the distinction."""
        if self.data is None:
            return False
        return self.data.absurd(x) is not None or (scaled and self.data.in_short_far_run(x))

    def observe_features(self, index: int, x: dict) -> list[Decision]:
        if self.data is None or self.mode is Mode.PAUSED:
            self._standing_in = None
            return []
        if self.parked:
            self.parked.note(x)
        alarms = self.data.update(index, x)
        # Before any decision on this event (a recall takes the parked model out of `parked`).
        self._standing_in = self._stand_in_now() if self.parked else None
        return self._after_data(index, alarms)

    def observe_invalid(self, index: int) -> list[Decision]:
        if self.data is None or self.mode is Mode.PAUSED:
            return []
        return self._after_data(index, self.data.update_invalid(index))

    def _after_data(self, index: int, alarms: list) -> list[Decision]:
        if index < self._data_quiet_until:
            alarms = []
        rows = [alarm.to_dict() for alarm in alarms]
        for row in rows:
            self._record_alarm(row)
        checked, self._checks_seen = self.data.checks != self._checks_seen, self.data.checks
        if self.mode is Mode.LEARNING:
            if alarms:
                return self._on_alarm(index, rows[0], onset=min(a.onset for a in alarms))
            if checked:
                return self._regime_returns(index, quiet=index < self._data_quiet_until)
            # A run far outside the current range, or back near a parked one, is asked about as
            # soon as it is long enough (`recognise_far`), not at the next check.
            run = self.data.far_streak == FAR_MATCH_EVENTS or self.parked.back_near(FAR_MATCH_EVENTS)
            return self._regime_returns(index, far_only=True) if run else []
        q = self.quarantine
        if q is None:
            return []
        q.events += 1
        if not checked:
            return []
        # After a concept alarm too: a parked regime's inputs may be back with its labels.
        known = self._known_regime(q.onset, replay=None)
        if known is not None:
            snapshot, evidence, why = known
            return [self._bring_back(index, snapshot, evidence, replaced=q.restored_model,
                                     reason=f"{why}: that regime is back", catch_up=(q.onset, index + 1))]
        back = self.data.in_reference()
        if q.inputs_checked(back, index):
            q.back_from = self._window_alike(index)
        # Without labels, the inputs decide: back to the reference ends a data-drift quarantine.
        if q.kind != "concept" and q.contest.labeled == 0 and q.events >= self.settings.min_quarantine and back:
            return [self._leave(index, "resume", "the inputs are back to the reference (no labels needed)",
                                {"psi": self.data.last_psi()})]
        return []

    def observe_label(self, index: int, loss: float, shadow: dict[str, float] | None = None,
                      replay: Replay | None = None) -> list[Decision]:
        """The live model's loss on a labeled event (and the shadow models' losses on it).

        `replay(snapshot, since)`, if given, scores a snapshot's model on the latest labeled events
        from index `since` on: before a concept alarm rolls back, the model of the restore point
        is asked how it does since the onset.
        """
        if self.mode is Mode.LEARNING:
            self.losses.add(index, loss)
            if self.concept is None:
                return []
            alarm, onset = self._concept_alarm(index, self.concept.update(index, loss), replay)
            if alarm is not None:
                if replay is not None and "verified" not in alarm:
                    alarm["verified"] = self._verified(onset, replay)
                if alarm.get("verified", {}).get("drift", True) and alarm.get("persisted", {}).get("drift", True):
                    return self._on_alarm(index, alarm, onset=onset, replay=replay)
            return self._on_probation(index, loss, shadow)
        if self.mode is Mode.QUARANTINE and self.quarantine is not None:
            self.quarantine.contest.add(loss, shadow or {})
            return self._resolve(index)
        return []

    # -- snapshots ---------------------------------------------------------------------------

    def snapshot_taken(self, snapshot: str, events: int) -> None:
        """Every snapshot the loop writes is a possible restore point (if taken while learning);
        one taken in quarantine holds the restored model as caught up, to park it by."""
        self.restore_points.add(snapshot, events, self.mode)
        q = self.quarantine
        if self.mode is Mode.QUARANTINE and q is not None and not q.restore_failed:
            q.frozen = snapshot

    def restore_failed(self) -> None:
        """The loop could not load the model a rollback restored: the live model in this
        quarantine's snapshots is not that one, so it is parked by its restore point (which fails
        to load again, loudly, rather than a model of the incident coming back as the old one)."""
        if self.quarantine is not None:
            self.quarantine.restore_failed, self.quarantine.frozen = True, None

    def last_good(self, before: int) -> str | None:
        """The newest snapshot taken while learning that has learned nothing from event `before` on."""
        point = self.restore_points.before(before)
        return point.snapshot if point is not None else None

    def candidate_parked(self, snapshot: str, index: int) -> None:
        """The loop wrote the candidate a decision parks to `snapshot`: keep it as the model of the
        concept it learned. Without an input reference: only a contest on labels recalls it."""
        self.parked.park(snapshot, None, index)

    def protected(self, now: int) -> set[str]:
        """Snapshots retention must keep: possible restore points, the restored one, parked ones."""
        keep = {p.snapshot for p in self.parked} | self.restore_points.needed(now)
        if self.quarantine is not None:
            keep |= {self.quarantine.restored, self.quarantine.frozen} - {None}
        return keep

    # -- operator commands (manual always wins) ----------------------------------------------

    def pause(self, index: int, reason: str = "paused by an operator") -> Decision:
        if self.mode is Mode.PAUSED:
            raise GuardError("already paused")
        return self._decide(index, "pause", "manual", Mode.PAUSED, reason, {})

    def resume(self, index: int, reason: str = "resumed by an operator") -> Decision:
        if self.mode is Mode.LEARNING:
            raise GuardError("already learning")
        return self._leave(index, "resume", reason, {}, trigger="manual")

    def promote(self, index: int, reason: str | None = None) -> Decision:
        """Promote the candidate (or the fresh model, if its loss in quarantine is lower)."""
        if self.quarantine is None:
            raise GuardError("there is no candidate to promote (the guard is not in quarantine)")
        best = self._best_candidate()
        return self._promote(index, reason or f"{SHADOW_NAMES[best]} promoted by an operator", {},
                             trigger="manual", challenger=best)

    def rollback(self, index: int, snapshot: str, *, resume: bool = False, reason: str | None = None) -> Decision:
        target = Mode.LEARNING if resume else Mode.PAUSED
        self.quarantine = None
        self.probation = None
        decision = self._decide(
            index, "rollback", "manual", target, reason or f"rolled back to {snapshot} by an operator",
            {"target": snapshot}, restore=snapshot, candidate="drop",
        )
        self._reset_detectors()
        return decision

    # -- decisions ---------------------------------------------------------------------------

    def _on_alarm(self, index: int, alarm: dict, onset: int, replay: Replay | None = None) -> list[Decision]:
        s = self.settings
        known = self._known_regime(onset, replay)
        if known is not None:
            snapshot, evidence, why = known
            return [self._bring_back(
                index, snapshot, {"alarm": alarm, "onset": onset, **evidence}, replaced=self.last_good(onset),
                reason=f"{alarm['detector']} alarm, and {why}: that regime is back", catch_up=(onset, index + 1))]
        back = self._back_from_harmless(index, alarm, onset)
        if back is not None:
            return [back]
        if self._rise_to_confirm(alarm, replay):
            self._held = (alarm, onset, index)  # see `_concept_alarm`
            return []
        self.probation = None
        while self._auto_rollbacks and self._auto_rollbacks[0] <= index - s.rollback_window:
            self._auto_rollbacks.popleft()
        if len(self._auto_rollbacks) >= s.max_rollbacks:
            reason = (f"{len(self._auto_rollbacks)} automatic rollbacks in the last {s.rollback_window} events: "
                      "pausing instead of flapping; an operator must decide")
            decision = self._decide(index, "pause", "auto", Mode.PAUSED, reason, {"alarm": alarm}, alert=True)
            self.alert = reason
            return [decision]
        verified = alarm.get("verified", {})  # its restore point, if `_verified` passed over the newest
        point = self.restore_points.named(verified["snapshot"]) if "snapshot" in verified else None
        point = point or self.restore_points.before(onset)
        restore = point.snapshot if point is not None else None
        if restore is None:
            reason = (f"{alarm['detector']} alarm, but no snapshot taken while learning precedes the onset at "
                      f"event {onset}: pausing instead of quarantining without a restore point")
            self.alert = reason
            return [self._decide(index, "pause", "auto", Mode.PAUSED, reason, {"alarm": alarm, "onset": onset},
                                 alert=True)]
        baseline = self.losses.baseline(onset)
        # On a tie the first wins: a parked model (it knows a regime well), then the candidate.
        challengers = self.parked.challengers + ["candidate"] + (["fresh"] if s.fresh_candidate else [])
        self.quarantine = Quarantine(
            started=index, onset=onset, kind=alarm.get("kind", "concept"), trigger=alarm, restored=restore,
            baseline=baseline, contest=Contest(challengers, window=s.evidence_window),
        )
        self._auto_rollbacks.append(index)
        value = alarm.get("value", alarm.get("after"))
        which = (f"the last snapshot before the estimated onset at event {onset}" if "passed_over" not in verified
                 else f"the snapshot before {verified['passed_over']['snapshot']}, the last before the estimated "
                      f"onset at event {onset}, whose model had just changed")
        reason = (f"{alarm['detector']} alarm ({alarm['statistic']}={value:.4g}); rolled back to {restore}, "
                  f"{which}; candidate learning in shadow")
        evidence = {"alarm": alarm, "onset": onset, "baseline_loss": baseline, "restored": restore}
        # The events between the snapshot and the onset came before the change: the restored model
        # (and so the candidate, its copy) learns them again, as if the snapshot were taken there.
        # Only those learned when they came: none from before the latest return to learning. The
        # candidate (its copy) and the fresh model learn the rest up to now: the new regime's events.
        first = max(point.events, self._learning_since)
        catch_up = self._before_onset(first, self._regime_start(alarm, onset))
        return [self._decide(index, "rollback", "auto", Mode.QUARANTINE, reason, evidence,
                             restore=restore, candidate="start", catch_up=catch_up,
                             shadow_catch_up=(max(catch_up[1], first), index + 1))]

    def _regime_start(self, alarm: dict, onset: int) -> int:
        """The onset, or, after a data alarm, where the inputs show the new regime began for sure
        (`DataDriftDetector.regime_start`: a stuck sensor's regime). A concept alarm's onset says
        nothing of where the inputs changed."""
        if self.data is None or alarm.get("kind", "concept") == "concept":
            return onset
        return self.data.regime_start(onset)

    def _before_onset(self, first: int, onset: int) -> tuple[int, int]:
        """The catch-up of a restored model: [first, onset), ending before the first event far
        outside the current inputs' range (an onset estimated late must not teach the incident)."""
        reference = self._reference()
        outside = [i for i in self.data.far_outside(reference, first) if i < onset] if reference else []
        return (first, min(outside)) if outside else (first, onset)

    def _promote(self, index: int, reason: str, evidence: dict, trigger: str = "auto",
                 challenger: str = "candidate", recall_by_inputs: bool = True) -> Decision:
        q = self.quarantine
        park = ()
        if q.restored is not None:
            # As caught up: its catch-up stopped before any event far outside the inputs' range.
            park = (q.restored_model,)
            self.parked.park(q.restored_model, self._reference(), index, by_inputs=recall_by_inputs)
        self._not_flapping(q)
        self.quarantine = None
        decision = self._decide(index, "promote", trigger, Mode.LEARNING, reason, evidence,
                                candidate="promote", challenger=challenger, park=park)
        # The runner-up learns on in shadow (not after an operator's choice): it may yet be the better one.
        rivals = [] if trigger == "manual" else [
            name for name in q.contest.challengers if name in SHADOW_NAMES and name != challenger]
        if self.parked or rivals:
            self.probation = Probation.after(self.settings, parked=self.parked.challengers, rivals=rivals)
        if self.data is not None:
            self._new_input_reference(index, q)
        self._reset_detectors()
        return decision

    def _new_input_reference(self, index: int, q: Quarantine) -> None:
        """The inputs' reference for the regime `q` ends in: collected anew, starting with the inputs
        kept since a data alarm (they are the new regime's; a concept alarm says nothing of where the
        inputs changed: `DataDriftDetector.reset_reference`). Data alarms wait until the window holds
        the new regime's events."""
        self.data.reset_reference(since=q.started if q.kind != "concept" else None)
        self._data_quiet_until = index + self.settings.data_window

    def _leave(self, index: int, action: str, reason: str, evidence: dict, trigger: str = "auto",
               candidate: str = "drop", challenger: str = "candidate",
               catch_up: tuple[int, int] | None = None) -> Decision:
        self.quarantine = None
        decision = self._decide(index, action, trigger, Mode.LEARNING, reason, evidence, candidate=candidate,
                                challenger=challenger, catch_up=catch_up)
        self._reset_detectors()
        return decision

    def _not_flapping(self, q: Quarantine) -> None:
        """A rollback that ended in adopting a regime (a promoted candidate, accepted inputs, or a
        parked model of a regime that came back) was the guard adapting, not flapping: it does not
        count toward the rollback-storm limit. Rollbacks that end with the restored model resumed
        (or never end) do."""
        if q.started in self._auto_rollbacks:
            self._auto_rollbacks.remove(q.started)

    def _reference(self):
        """The input reference of the current regime, to park with its model (None: not watched)."""
        return self.data.snapshot_reference() if self.data is not None else None

    def _reset_detectors(self) -> None:
        if self.concept is not None:
            self.concept.reset()
        self.losses.clear()

    def _decide(self, index: int, action: str, trigger: str, target: Mode, reason: str, evidence: dict,
                **plan) -> Decision:
        check_transition(self.mode, target, action, trigger)
        self._held = None  # an alarm held is moot after any transition
        self._harmless_parked = None  # and the live model may be another
        if target is Mode.LEARNING and (self.mode is not Mode.LEARNING or plan.get("restore")):
            self._learning_since = index  # the live model learns (again) from here on
        decision = Decision(at=index, action=action, trigger=trigger, source=self.mode.value, target=target.value,
                            reason=reason, evidence=evidence, **plan)
        self.mode = target
        if target is Mode.LEARNING:
            self.alert = None
        self.decisions.append(decision)
        self.decision_counts[action] = self.decision_counts.get(action, 0) + 1
        if action == "rollback":
            self.rollback_counts[trigger] = self.rollback_counts.get(trigger, 0) + 1
        return decision

    def _record_alarm(self, alarm: dict) -> None:
        self.alarms.append(alarm)
        key = (alarm["detector"], alarm["kind"])
        self.alarm_counts[key] = self.alarm_counts.get(key, 0) + 1


__all__ = ["Guard", "GuardSettings", "GuardError", "IllegalTransition", "Mode", "Decision", "POLICIES"]
