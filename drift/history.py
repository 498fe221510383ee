"""The live model's losses while it learns: its pre-alarm error level, and whether a concept
alarm's rise is the world's doing or the model's own.

>>> history = LossHistory(lookback=1000)
>>> for i in range(600):
...     history.add(i, 1.0 if i % 10 == 0 else 0.0)
>>> history.baseline(onset=500)
0.1
"""

from __future__ import annotations

from collections import deque
from typing import Callable

from drift.contest import BASELINE_P, BASELINE_RATIO, at_baseline
from drift.stats import mcnemar_p, mean_below

BASELINE_EVENTS = 500  # labeled events before an onset that give the pre-alarm error level
VERIFY_MIN = 30  # fewest labeled events since the onset an older model is scored on
# Fewest on which the restore point's model may already show a too-early alarm's rise, so that the
# alarm need not wait for `VERIFY_MIN` (`AlarmConfirmation._too_early`); on fewer it cannot.
SHOWN_MIN = 10
# A classifier's rise persists only if the restore point's error rate on the latter half of the
# wait is above its pre-onset level at this p-value (one-sided), over all the looks together, not a
# first verdict's BASELINE_P: drawn seed 7, rbf stationary 200k / linear, a 193-event cluster of
# hard events erring 0.357 against 0.205 left 0.30 against 0.202 on those 50 events (p = 0.042),
# and the guard rolled back where nothing changed. Between a look's p-value (`LOOK_P`) and
# BASELINE_P the rise is neither shown nor ruled out: more events are asked
# (`AlarmConfirmation._concept_alarm`).
PERSIST_P = 0.01
# A concept alarm held for its rise to persist is asked again after `persist_events` more labeled
# events, up to this many times in all, while the restore point's losses neither show the rise nor
# rule it out (`AlarmConfirmation._concept_alarm`).
PERSIST_LOOKS = 3
# Each look asks at this p-value, so that a rise where nothing changed is shown on one of them with
# a chance of at most `PERSIST_P` in all (Bonferroni): at `PERSIST_P` each, hyperplane / tree,
# stationary seed 5084, was undecided on the first two looks (0.14 on 50 events, 0.127 on 150,
# against 0.088 before) and showed the rise on the third (0.132 on 250, p = 0.007): a rollback where
# nothing changed. The p-values quoted here were the normal approximation's, which understates the
# tail when few errors are expected; `rate_above_p` is the exact binomial tail since (seed 6097: 0.12
# on 150 against 0.062 was "shown" at 0.0016; exactly, 0.0056, and the third look ruled it out).
LOOK_P = PERSIST_P / PERSIST_LOOKS

# replay(snapshot, since): a snapshot's model's losses on the latest labeled events from `since` on
Replay = Callable[[str, int], "list[float] | None"]


class LossHistory:
    """(index, loss) of the latest labeled events learned, enough for an onset `lookback` back."""

    def __init__(self, lookback: int) -> None:
        self.losses: deque[tuple[int, float]] = deque(maxlen=lookback + BASELINE_EVENTS)

    def add(self, index: int, loss: float) -> None:
        self.losses.append((index, loss))

    def clear(self) -> None:
        self.losses.clear()

    def labeled_since(self, onset: int) -> int:
        """How many of the labeled events kept are from `onset` on."""
        n = 0
        for i, _ in reversed(self.losses):
            if i < onset:
                break
            n += 1
        return n

    def baseline(self, onset: int) -> float | None:
        """Mean loss over the (up to) `BASELINE_EVENTS` labeled events before `onset`."""
        losses = [loss for i, loss in self.losses if i < onset][-BASELINE_EVENTS:]
        return sum(losses) / len(losses) if losses else None

    def verify(self, onset: int, restore: str | None, replay: Replay, classifier: bool,
               min_increase: float, since: int | None = None, fewest: int = VERIFY_MIN) -> dict:
        """Did the world change at `onset`, or only the live model? Ask the model of the restore point.

        If it predicts the events since the onset at the live model's pre-onset error level, the
        inputs still map to labels as before: the rise is the live model's own doing (a tree's new
        leaves start empty, say), which no rollback to an older state of the same learner cures
        for good. Not drift: the guard keeps learning. So too if its error rose by less than the
        rise an alarm must show (`min_increase`, classifiers): what changed materially is the live
        model. Without a verdict (too few events since the onset, no restore point), the alarm
        stands. With `since`, the events from there on are asked instead of all those since the
        onset (whether a rise persists), against the same pre-onset level: a classifier's rise
        persists if half of `min_increase` is left (a cluster of hard events leaves none), at
        p < `LOOK_P` (one look of up to `PERSIST_LOOKS`). A model is scored on no fewer than `fewest`
        labeled events.

        A "no drift" verdict on whether a rise persists also says whether the losses rule out a
        rise an alarm must show (`rise_ruled_out`): a mean loss below the baseline plus
        `min_increase` (classifiers), or below `BASELINE_RATIO` times it (regressors), with 95%
        confidence (`mean_below`). If not, more events may yet show the rise
        (`AlarmConfirmation._concept_alarm`).
        """
        losses = replay(restore, onset if since is None else since) if restore is not None else None
        if not losses or len(losses) < fewest:
            return {"drift": True, "reason": "not verified: too few labeled events since the onset"}
        baseline = self.baseline(onset)
        same, evidence = at_level(losses, baseline, classifier, min_increase if since is None else min_increase / 2,
                                  p_limit=BASELINE_P if since is None else LOOK_P)
        if same and since is not None and baseline is not None:
            evidence["rise_ruled_out"] = mean_below(
                losses, baseline + min_increase if classifier else baseline * BASELINE_RATIO)
        return {**evidence, "snapshot": restore, "drift": not same,
                "reason": "the model of the restore point does no better since the onset" if not same else
                          "the model of the restore point predicts the events since the onset at (or less "
                          "than an alarm's rise above) the pre-onset error level: the live model changed, "
                          "not the world"}

    def level_before(self, onset: int, since: int, snapshot: str, taken: int, replay: Replay, classifier: bool,
                     min_increase: float) -> tuple[bool, dict] | None:
        """Does `snapshot`'s model (taken at event `taken`) predict the labeled events it never
        learned before `onset` (at most `BASELINE_EVENTS` of them; `since` labeled events are kept
        from the onset on) at the live model's pre-onset level (`verify`'s test)? None if there are
        fewer than `VERIFY_MIN` such events."""
        before, _ = unseen_around(replay, snapshot, taken, onset, since)
        if len(before) < VERIFY_MIN:
            return None
        return at_level(before, self.baseline(onset), classifier, min_increase)

    def earlier_unmoved(self, onset: int, restore: str, earlier: str, taken: int, replay: Replay,
                        classifier: bool, min_increase: float) -> dict | None:
        """The model of the restore point `restore` errs more since `onset` (`verify`): is it the
        world, or that model? Ask `earlier`, the snapshot taken before it at event `taken`.

        The rise is the model's own if the earlier model predicts the events it never learned
        before the onset (at most `BASELINE_EVENTS` of them) and those since the onset both at the
        live model's pre-onset level (`verify`'s test), and errs less than the restore point's on
        those since the onset, event by event (more events where only the restore point's model
        errs, or errs more, than the reverse: a sign test at p < `BASELINE_P`). Inputs still map to
        labels as before: the restore point holds a model that had just changed, and the live model
        with it (hyperplane / tree, seed 3004: the snapshot at event 2,000 was taken just after the
        tree's first split, two empty leaves; frozen, it erred 0.244 on the 119 events since the
        onset at 2,005, the one at 1,500 0.054 before the onset and 0.109 since, against the live
        model's 0.058). A change of the world does not spare a model 500 events older: both err
        alike (drawn seed 1, sine gradual change / tree: 0.122 and 0.116 since the onset, in the
        ramp). Then the verdict is no drift; None if there is none: fewer than `VERIFY_MIN` events
        on either side, no replay, or one of the three does not hold.
        """
        restored = replay(restore, onset)
        if not restored or len(restored) < VERIFY_MIN:
            return None
        unseen, since = unseen_around(replay, earlier, taken, onset, len(restored))  # the same events since
        if len(unseen) < VERIFY_MIN:
            return None
        baseline = self.baseline(onset)
        before_same, before = at_level(unseen, baseline, classifier, min_increase)
        since_same, after = at_level(since, baseline, classifier, min_increase)
        worse = sum(r > e for r, e in zip(restored, since))  # the restore point's model errs more
        better = sum(r < e for r, e in zip(restored, since))
        paired = {"restore_point_worse": worse, "restore_point_better": better, "p_value": mcnemar_p(worse, better)}
        if not (before_same and since_same and worse > better and paired["p_value"] < BASELINE_P):
            return None
        return {"drift": False, "snapshot": earlier, "before_onset": before, "since_onset": after, "paired": paired,
                "reason": f"the model of the snapshot before the restore point ({earlier}) predicts the events "
                          "before and since the onset at the live model's pre-onset level, and better than the "
                          "restore point's since: that model changed with the live one, not the world"}


def unseen_around(replay: Replay, snapshot: str, taken: int, onset: int, since: int) -> tuple[list[float], list[float]]:
    """`snapshot`'s model's losses (it was taken at event `taken`, before `onset`) on the labeled
    events it never learned before the onset (at most `BASELINE_EVENTS` of them), and on the
    `since` labeled events kept from the onset on; one replay. Both empty without one."""
    everything = replay(snapshot, max(taken, onset - BASELINE_EVENTS)) or []
    cut = max(len(everything) - since, 0)
    return everything[:cut], everything[cut:]


def at_level(losses: list[float], baseline: float | None, classifier: bool, least: float,
             p_limit: float = BASELINE_P) -> tuple[bool, dict]:
    """Are these losses at the pre-onset `baseline` (`at_baseline`), or, for a classifier, above it
    by less than `least`, the rise an alarm must show?"""
    same, evidence = at_baseline(losses, baseline, classifier, p_limit=p_limit)
    if not same and classifier and evidence.get("recent_loss") is not None:
        rise = evidence["recent_loss"] - evidence["baseline"]
        same = rise < least
        evidence.update(rise=rise, min_increase=least)
    return same, evidence
