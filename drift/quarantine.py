"""A quarantine, and what its evidence says: the guard turns the verdict into a decision.

In order (`Quarantine.verdict`), once `min_quarantine` labeled events are in:
- a challenger wins the contest: "candidate" or "fresh" (the world changed), or "parked:<snapshot>"
  (an earlier regime is back);
- the inputs are at the reference (or, after a concept alarm, hold no number far outside its range)
  and the restored model's error is back at its pre-alarm level: "over", the incident is over;
- the inputs moved and stay moved, yet after `harmless_after` labeled events the errors did not
  rise over the whole evidence window: "harmless", the shift does no harm;
- `max_quarantine` labeled events without any of these: "limit", once; the policy applies.
"""

from __future__ import annotations

from dataclasses import dataclass

from drift.contest import Contest
from drift.settings import GuardSettings


@dataclass
class Quarantine:
    started: int
    onset: int
    kind: str  # "concept", "data" or "schema"
    trigger: dict
    restored: str | None
    baseline: float | None
    contest: Contest
    events: int = 0
    limit_reached: bool = False
    inputs_moved: bool = False  # the inputs left the reference during this quarantine
    back_since: int | None = None  # the check that found them back at the reference (and since)

    def inputs_checked(self, back: bool, index: int) -> None:
        """A data check at event `index` ran: note whether the inputs are `back` at the reference."""
        if not back:
            self.inputs_moved = True
            self.back_since = None
        elif self.inputs_moved:
            # The paired evidence so far was gathered on inputs that are gone: the question now is
            # how the models do on these.
            self.inputs_moved = False
            self.back_since = index
            self.contest.restart()

    def verdict(self, settings: GuardSettings, inputs_back: bool, classifier: bool,
                inputs_far: bool = False) -> tuple[str | None, dict]:
        """What the evidence says now (see the module doc), and the evidence; None: nothing yet.

        `inputs_far`: the latest inputs hold a number far outside the reference's range. A concept
        alarm's quarantine ends without the inputs back at the reference (its incident is in the
        labels), but not while such numbers flow: a restored model that predicts them well enough
        would learn them on resuming, and a x100 unit change ruins a linear model."""
        s, contest = settings, self.contest
        if contest.labeled < s.min_quarantine:
            return None, {}
        name, evidence = contest.winner(s.alpha, s.margin)
        if name is not None:
            return name, evidence
        if inputs_back or (self.kind == "concept" and not inputs_far):
            recovered, evidence = contest.restored_recovered(self.baseline, classifier)
            if recovered:
                return "over", evidence
        elif contest.labeled >= s.harmless_after:
            # Judged on the whole window: a small rise counts too.
            harmless, evidence = contest.restored_recovered(self.baseline, classifier, recent=contest.window)
            if harmless:
                return "harmless", evidence
        if contest.labeled >= s.max_quarantine and not self.limit_reached:
            self.limit_reached = True
            return "limit", evidence
        return None, evidence
