"""When a concept alarm acts: at once, held for labels, or held for its rise to persist.

Part of `Guard` (`drift/guard.py`), as a mixin: these methods read and change the guard's state
(`_held`: the alarm held, its onset and the event it came at). A concept alarm that fires is
recorded, then:

- with fewer than `VERIFY_MIN` labeled events since its onset, it is held until there are that
  many: neither the restore point's model nor a parked one can be scored on fewer; unless no parked
  models exist and the restore point's model already shows the rise on the events there are
  (`_too_early`);
- scored on the restore point's model (`LossHistory.verify`, in `_verified`): if that model does
  as well since the onset as before, the live model changed, not the world, and learning goes on;
  so too if it errs more but the snapshot before it does not, before the onset or since, and errs
  less than it since (`LossHistory.earlier_unmoved`): the restore point holds a model that had
  just changed. If it errs more before the onset too and the snapshot before it does not, that one
  is the restore point, asked instead (`_changed_just_before`);
- if that model errs more too, the alarm waits `persist_events` labeled events for the rise to
  persist, unless the rise is `SURE_RISE` or more (`_rise_to_confirm`), and waits again (up to
  `PERSIST_LOOKS` waits) while those events neither show the rise (at p < `LOOK_P` each look) nor
  rule it out.
"""

from __future__ import annotations

from drift.concept import ConceptSignal
from drift.history import PERSIST_LOOKS, SHOWN_MIN, VERIFY_MIN, Replay
from drift.regimes import RestorePoint

# Classifiers: a rise of the restore point's error rate since an onset this large is no cluster of
# hard events (`_rise_to_confirm`): the model errs on half the events it got right before.
SURE_RISE = 0.5


class AlarmConfirmation:
    """The guard's gate for concept alarms (see the module doc); `Guard` inherits it."""

    def _concept_alarm(self, index: int, signal: ConceptSignal | None,
                       replay: Replay | None) -> tuple[dict | None, int | None]:
        """The concept alarm to act on now, and its onset: this event's drift signal, or one held
        until now (None: neither). Every signal is recorded; one that fires while another is held
        is only recorded.

        An alarm with fewer than `VERIFY_MIN` labeled events since its onset may be held until
        there are that many (or `VERIFY_MIN` events have passed): see `_too_early`.

        An alarm `_on_alarm` held for its rise to persist (`_rise_to_confirm`: it carries the
        restore point's verdict, "verified") is released after `persist_events` labeled events,
        with the verdict on the latter half of them ("persisted"). If that verdict is no drift but
        the losses do not rule out the rise either, it is held `persist_events` more and asked on
        all the events from the same point on, up to `PERSIST_LOOKS` looks ("looks": drawn seed 3,
        hyperplane swapped x6, x1 [14k,22k) / tree: the restore point's model erred 0.22 from the
        onset to the alarm, 0.14 on the latter 50 events of the wait against 0.096 before, p =
        0.15, and the guard learned the 8,000-event swap, 4.10% under the oracle after it)."""
        if signal is not None:
            alarm = signal.to_dict()
            self._record_alarm(alarm)
            if signal.level != "drift" or self._held is not None:
                return None, None
            if (replay is not None and self.losses.labeled_since(signal.onset) < VERIFY_MIN
                    and self._too_early(alarm, signal.onset, replay)):
                self._held = (alarm, signal.onset, index)
                return None, None
            return alarm, signal.onset
        if self._held is not None:
            alarm, onset, at = self._held
            persisting = "verified" in alarm  # held by `_rise_to_confirm`, not for want of labels
            persist = self.settings.persist_events
            since, wait = (at + 1, persist * alarm.get("looks", 1)) if persisting else (onset, VERIFY_MIN)
            if self.losses.labeled_since(since) < wait and index - at < wait:
                return None, None
            if persisting and replay is not None:  # asked from the latter half of the wait on: past a cluster's tail
                verdict = self.losses.verify(onset, alarm["verified"]["snapshot"], replay, self.classifier,
                                             self.settings.min_increase, since=since + persist // 2)
                looks = alarm.get("looks", 1)
                if not verdict["drift"] and not verdict.get("rise_ruled_out", True) and looks < PERSIST_LOOKS:
                    alarm["looks"] = looks + 1  # undecided: wait `persist_events` more
                    return None, None
                alarm["persisted"] = verdict
            self._held = None
            alarm["held_until"] = index
            return alarm, onset
        return None, None

    def _too_early(self, alarm: dict, onset: int, replay: Replay) -> bool:
        """Should this alarm, fewer than `VERIFY_MIN` labeled events after its onset, wait until
        there are that many?

        While parked models exist, yes: neither the model of the restore point
        (`LossHistory.verify`) nor a parked one (`_known_regime`) can be scored on fewer, and a
        quarantine takes `min_quarantine` labeled events to bring a parked model back (holdout
        seed 83, mixed flipped labels [12k,18k): at the end of the flip the alarm came 25 events
        after the onset, and the old model was back 50 events after that).

        Without them, only if the restore point's model does not already show the rise on the
        events there are (at least `SHOWN_MIN`; that verdict is kept as the alarm's "early"): an
        alarm left unverified rolls back where nothing changed (hyperplane / tree, stationary seeds
        3066 and 2013: alarms 27 and 25 labeled events after their onsets; on 30, the restore
        point's model erred 0.167 against 0.110 before, and 0.067 against 0.070: no drift), but
        holding every such alarm held incidents the restore point's model shows at once: a flip, a
        swap, a unit change (7759b3d, reverted: up to 38 events more learned of them)."""
        if self.parked:
            return True
        point = self.restore_points.before(onset)
        if point is None:  # nothing to score: `_on_alarm` pauses at once
            return False
        alarm["early"] = self.losses.verify(onset, point.snapshot, replay, self.classifier,
                                            self.settings.min_increase, fewest=SHOWN_MIN)
        return not (alarm["early"]["drift"] and "snapshot" in alarm["early"])

    def _verified(self, onset: int, replay: Replay) -> dict:
        """The verdict on a concept alarm's rise: the restore point's (`LossHistory.verify`; its
        "snapshot" is the restore point the alarm's later looks and its rollback take), unless that
        model errs more since the onset and

        - errs more before it too, on the events it never learned, while the snapshot before it
          does not (`LossHistory.level_before`): then it holds a model caught just after it changed,
          and the snapshot before it is the restore point, asked instead (its verdict names the one
          passed over, "passed_over"; hyperplane / tree, stationary seed 2039: the tree of event
          17,000 erred 0.226 on the 235 events before the onset, the live model 0.096, and the
          alarm rolled back to it where nothing changed);
        - or the snapshot before it does not err more, before the onset or since, erring less than
          it event by event (`LossHistory.earlier_unmoved`; hyperplane / tree, seeds 3004, 3056,
          3083: the tree split just before the snapshot at event 2,000 or 1,000, its new leaves
          empty, the onset was estimated right after it, and the guard rolled back to the split
          tree where nothing changed, then promoted the candidate). That verdict is no drift, and
          names the restore point's too."""
        s = self.settings
        point = self.restore_points.before(onset)
        verdict = self.losses.verify(onset, point.snapshot if point else None, replay, self.classifier,
                                     s.min_increase)
        earlier = self.restore_points.before(point.events - 1) if point is not None and verdict["drift"] else None
        if earlier is None or "snapshot" not in verdict:  # no verdict from the restore point: the alarm stands
            return verdict
        passed_over = self._changed_just_before(onset, verdict["recent_events"], point, earlier, replay)
        if passed_over is not None:
            return {**self.losses.verify(onset, earlier.snapshot, replay, self.classifier, s.min_increase),
                    "passed_over": {**passed_over, "verdict": verdict}}
        unmoved = self.losses.earlier_unmoved(onset, point.snapshot, earlier.snapshot, earlier.events, replay,
                                              self.classifier, s.min_increase)
        return verdict if unmoved is None else {**unmoved, "restore_point": verdict}

    def _changed_just_before(self, onset: int, since: int, point: RestorePoint, earlier: RestorePoint,
                             replay: Replay) -> dict | None:
        """The evidence that `point`'s model errs above the live model's pre-onset level on the
        events before the onset it never learned, and `earlier`'s does not; None if not shown.
        `since`: the labeled events kept from the onset on (the restore point's verdict counts them)."""
        s = self.settings
        level = self.losses.level_before(onset, since, point.snapshot, point.events, replay, self.classifier,
                                         s.min_increase)
        if level is None or level[0]:
            return None
        earlier_level = self.losses.level_before(onset, since, earlier.snapshot, earlier.events, replay,
                                                 self.classifier, s.min_increase)
        if earlier_level is None or not earlier_level[0]:
            return None
        return {"snapshot": point.snapshot, "before_onset": level[1], "earlier_before_onset": earlier_level[1]}

    def _rise_to_confirm(self, alarm: dict, replay: Replay | None) -> bool:
        """Should this concept alarm wait `persist_events` labeled events before it rolls back, to
        see whether the restore point's model still errs above its pre-onset level on them?

        Only an alarm the restore point's model confirmed (it erred more since the onset too) and
        not yet asked: in a stationary stream a cluster of hard events raises the error of every
        model for a few dozen events (hyperplane, seed 2018: the tree of event 2,500, fixed, errs
        0.177 on events 2,621 to 2,699 and at most 0.078 elsewhere), and a young model frozen
        through it then loses to the candidate that learns on: a rollback and a promotion where
        nothing changed (`benchmarks/stationary_rollbacks.py`). A real change persists.

        A rise of at least `SURE_RISE` does not wait: no cluster in a stationary stream makes a
        model err on half the events it got right before, and a regime's end does (holdout seed
        103, sine swapped columns [12k,18k) / linear: at the swap's end the model of the swapped
        regime erred on 93% of the events, for the 100 events of the wait, 1.61% under the
        oracle)."""
        verified = alarm.get("verified", {})
        return (alarm.get("kind") == "concept" and replay is not None and self.settings.persist_events > 0
                and "persisted" not in alarm and verified.get("drift") and "snapshot" in verified  # a verdict
                and verified.get("rise", 0.0) < SURE_RISE)
