"""How the guard brings back the model of an earlier regime, and the shadow models that may take over after a switch.

Part of `Guard` (`drift/guard.py`), as a mixin: these methods read and change the guard's state and
decide through its `_decide`. Here because they form one concept, the regimes the guard has left:

- A parked model comes back when its regime's inputs do: at an alarm whose inputs since the onset
  match its reference, at any data check in quarantine, and, while learning, at a data check whose
  latest inputs match it and depart from the current ones as far as an alarm asks
  (`_regime_returns`); or when its regime's labels do: a concept alarm on labeled events it predicts
  significantly better than the live model did (`_known_regime`), or a contest it wins (in
  quarantine, or in the probation after a promotion). A model parked at a harmless shift comes
  back only by a contest: at its inputs' return the live model, which went on from it, learns on
  (`_back_from_harmless`).
- Events far outside the current range and near a parked model's regime, in a run not yet long
  enough to be asked about (10 events), are predicted by that model in the live model's place
  (`stand_in`; the loop asks for regressors): a stand-in changes what is served, not what is
  decided.
- Models that learn on in shadow while learning (`Probation`'s rivals): the model a recall
  displaced, the runner-up of a promotion (the one of candidate and fresh model not promoted), and
  the candidate after an incident is over (it learned through the incident). If one beats the live
  model significantly, it goes on (`_rival_wins`).

Parked models, restore points and probations are kept in `drift/regimes.py`.
"""

from __future__ import annotations

from drift.decisions import Decision, Mode
from drift.history import Replay
from drift.matching import FAR_MATCH_EVENTS, MATCH_MIN_EVENTS
from drift.quarantine import SHADOW_NAMES
from drift.regimes import Probation


class RegimeRecall:
    """The guard's decisions about earlier regimes (see the module doc); `Guard` inherits them."""

    def _on_probation(self, index: int, loss: float, shadow: dict[str, float] | None) -> list[Decision]:
        probation, s = self.probation, self.settings
        if probation is None:
            return []
        if probation.over:
            self.probation = None
            return []
        name, evidence = probation.add(loss, shadow or {}, alpha=s.alpha, margin=s.margin,
                                       min_events=s.min_quarantine)
        if name in probation.rivals:
            return [self._rival_wins(index, name, evidence)]
        return [self._recall(index, name.split(":", 1)[1], evidence)] if name else []

    def _rival_wins(self, index: int, name: str, evidence: dict) -> Decision:
        """A model that learned on in shadow now beats the live one: it goes on. The live model
        lost on the current regime: it is not parked (the parked models' probation goes on).

        - "displaced", after a recall: it learned through what the recalled model missed (no-guard's
          edge, where pausing cost more than the incident did);
        - "candidate" or "fresh", after a promotion: the quarantine's runner-up, slower to show
          its worth than the one promoted (a fresh tree may overtake a candidate whose leaves
          settled on the old concept; a candidate that has adapted may beat a fresh model with
          what it knew);
        - "candidate", after an incident is over: it learned through the incident, where the
          restored model was frozen (no-guard's edge again: missing features left the others to
          learn)."""
        probation = self.probation
        if name == "displaced":
            reason = (f"the model that {probation.recalled}'s recall displaced, which went on learning in shadow, "
                      "beats it")
        elif probation.resumed is not None:
            reason = (f"the candidate, which learned through the incident and went on learning in shadow, beats "
                      f"the restored model ({probation.resumed}) that resumed")
        else:
            reason = (f"{SHADOW_NAMES[name]}, which went on learning in shadow after the promotion, beats the "
                      "promoted model")
        self.probation = probation.without_rivals()
        decision = self._decide(index, "promote", "auto", Mode.LEARNING, reason + ": it goes on", evidence,
                                candidate="promote", challenger=name)
        self._reset_detectors()
        return decision

    def _recall(self, index: int, snapshot: str, evidence: dict) -> Decision:
        """While learning, a parked model beats the live one: its regime is back; swap them."""
        return self._bring_back(index, snapshot, evidence, replaced=self.last_good(index),
                                reason=f"a model of an earlier regime ({snapshot}) beats the live model: that regime is back")

    def _regime_returns(self, index: int, quiet: bool = False, far_only: bool = False) -> list[Decision]:
        """While learning, at a data check: do the latest inputs come from a parked model's regime,
        and depart from the current one as far as an alarm asks (or, on fewer events, make a run
        that tells: `ParkedModels.recognise_far`; or, while the current regime's reference is
        collected, differ from the ones collected before them: `recognise_restart`)? Then that
        model comes back now, without waiting for an alarm (whose window of `data_window` events
        must fill, on two checks). While the data checks are `quiet` (the window still holds
        another regime's events) only a run or a restart tells; between checks (`far_only`, when
        a run far outside the current range, or near a parked one, is `FAR_MATCH_EVENTS` long)
        only a run."""
        if not self.parked.by_inputs:
            return []
        far = self.parked.recognise_far(self.data)
        if far is None and far_only:
            return []
        restart = self.parked.recognise_restart(self.data) if far is None else None
        if far is not None:
            since, snapshot, evidence = far
            why = {"far_outside_current": "lie far outside the current one's range",
                   "far_outside_collected": "lie far outside the range of the events collected for the current one",
                   "back_near_parked": "are back near its range, where the current one's lay far outside it",
                   }[evidence["run"]]
        elif restart is not None:
            since, snapshot, evidence = restart
            why = "differ from the ones collected before them for the new regime's reference"
        elif quiet:
            return []
        else:
            since = self.data.latest(MATCH_MIN_EVENTS)
            known = self.parked.recognise(self.data, since, alarm_level=True) if since is not None else None
            if known is None:
                return []
            snapshot, evidence = known
            why = "depart from the current one as far as an alarm asks"
        return [self._bring_back(index, snapshot, {"onset": since, **evidence}, replaced=self.last_good(since),
                                 reason=f"the inputs since event {since} come from the regime of {snapshot}, and "
                                        f"{why}: that regime is back", catch_up=(since, index + 1))]

    def stand_in(self) -> str | None:
        """The parked model that predicts the latest event in the live model's place (its shadow
        name), if any (`_stand_in_now`, asked before any decision on that event)."""
        return self._standing_in

    def _stand_in_now(self) -> str | None:
        """The parked model that predicts the latest event in the live model's place, if any: the
        event lies far outside the current range and near that model's regime, in a run of at
        most `FAR_MATCH_EVENTS` (at its 10th event the guard asks whether that regime is back, and
        a recall takes effect after the event). Nothing else changes: the live model's own loss is
        the guard's evidence, and it learns as usual. The loop asks for regressors only
        (`Loop._stand_in`).

        Until then the live model extrapolates, and a regressor's guesses far outside what it saw
        can be wild (drawn seed 7, mv x10 x10000 [10.1k,11.1k) / linear: the model promoted in the
        incident predicted the 10 events after it, up to the recall, with absolute errors from 48
        to 9,139 as it learned them, and MAE 18.95 over the next 10,000 events against the
        oracle's 14.57). The model of the regime those inputs come from is the better guess."""
        if not 0 < self.data.far_streak <= FAR_MATCH_EVENTS:
            return None
        return self.parked.near_latest()

    def _back_from_harmless(self, index: int, alarm: dict, onset: int) -> Decision | None:
        """Is this data alarm the inputs' return to the regime before a harmless shift, while the
        live model is still the one that went on through the shift? It went on from the restored
        model, which had learned that regime: it knows both, and learning goes on (a "resume" from
        learning to learning, restoring nothing), compared with that regime's reference again. The
        model parked at the shift predicts in shadow on probation, and comes back if it predicts
        the returned regime significantly better (the shift was a long incident after all), in
        place of any probation under way (the runner-up of the shift's quarantine learned only the
        shifted inputs); the concept detector still watches the live model's errors.

        Before, the return rolled back and froze the live model in a quarantine. On the holdout
        runs of seeds 71 to 97 that happened 30 times (offset shifts, stuck and zeroed sensors,
        missing features that came back), and 25 of those quarantines ended "harmless" again,
        1,000 labeled events later, with the model frozen all along: the model without a guard
        learned on, and did better after the incident (agrawal age +30 [12k,18k) / linear, seed
        97: 0.9850 against 0.9854)."""
        snapshot = self._harmless_parked
        if snapshot is None or alarm.get("kind") == "concept" or alarm.get("statistic") == "invalid_rate":
            return None
        returned = self.parked.returned_to(self.data, onset, snapshot)
        if returned is None:
            return None
        reference, evidence = returned
        self.data.use_reference(reference)
        self._data_quiet_until = index + self.settings.data_window
        self.probation = Probation.after(self.settings, parked=self.parked.challengers)
        reason = (f"{alarm['detector']} alarm: the inputs since the onset at event {onset} are back to the regime "
                  f"of {snapshot}, parked at a harmless shift; the live model went on from it through the shift "
                  "and knows both: learning goes on, the parked model on probation")
        return self._decide(index, "resume", "auto", Mode.LEARNING, reason,
                            {"alarm": alarm, "onset": onset, "parked": snapshot, **evidence})

    def _known_regime(self, onset: int, replay: Replay | None) -> tuple[str, dict, str] | None:
        """A parked model whose regime the events since `onset` come from: by their inputs, or (on a
        concept alarm, with `replay`) by their labels. Its snapshot, the evidence, and why."""
        if not self.parked:
            return None
        if self.data is not None:
            known = self.parked.recognise(self.data, onset)
            if known is not None:
                return *known, f"the inputs since the onset at event {onset} come from the regime of {known[0]}"
        if replay is not None:
            live = [(i, loss) for i, loss in self.losses.losses if i >= onset]
            known = self.parked.recognise_by_labels(live, replay, self.losses.baseline(onset), self.classifier,
                                                    self.settings.alpha, self.settings.margin)
            if known is not None:
                return known[0], {"labels": known[1]}, (f"the model of {known[0]} predicts the labeled events since "
                                                        f"the onset at event {onset} better than the live model")
        return None

    def _bring_back(self, index: int, snapshot: str, evidence: dict, *, replaced: str | None,
                    reason: str, catch_up: tuple[int, int] | None = None) -> Decision:
        """A parked model of an earlier regime wins: make it live again, and park the one it beat.

        It catches up on the events in `catch_up` after the last one far outside its regime."""
        parked = self.parked.take(snapshot)
        learning = self.mode is Mode.LEARNING  # the live model learned: it goes on in shadow
        park, park_catch_up = (), None
        if replaced is not None:
            park = (replaced,)
            if learning and catch_up is not None:
                park_catch_up = self._parked_catch_up(replaced, until=catch_up[0])
            self.parked.park(replaced, self._reference(), index)
        if catch_up is not None and self.data is not None and parked.reference is not None:
            catch_up = (self.data.first_alike(parked.reference, catch_up[0]), catch_up[1])
        if self.data is not None and parked.reference is not None:
            self.data.use_reference(parked.reference)
            self._data_quiet_until = index + self.settings.data_window
        if self.quarantine is not None:
            self._not_flapping(self.quarantine)
        self.quarantine = None
        self.probation = None
        if learning:
            self.probation = Probation.after(self.settings, rivals=["displaced"], recalled=snapshot)
        decision = self._decide(index, "resume", "auto", Mode.LEARNING, reason, evidence, restore=snapshot,
                                candidate="displace" if learning else "drop", park=park, catch_up=catch_up,
                                park_catch_up=park_catch_up)
        self._reset_detectors()
        return decision

    def _parked_catch_up(self, replaced: str, until: int) -> tuple[int, int] | None:
        """While learning, a recall parks the live model's regime by its last restore point before
        the return at `until`: the events between them are that regime's, and the parked model
        learns them (`Decision.park_catch_up`), the ones the live model learned when they came, up to
        the first with a number far outside its range (the return's onset is an estimate)."""
        point = self.restore_points.before(until)
        if point is None or point.snapshot != replaced:
            return None
        first, end = self._before_onset(max(point.events, self._learning_since), until)
        return (first, end) if first < end else None

    def parked_caught_up(self, replaced: str, snapshot: str) -> None:
        """The loop wrote the model parked as `replaced`, caught up, to `snapshot`: park that one."""
        self.parked.rename(replaced, snapshot)
