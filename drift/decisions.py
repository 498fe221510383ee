"""The guard's states, the table of legal transitions, and the decision record of each transition.

>>> check_transition(Mode.LEARNING, Mode.QUARANTINE, "rollback", "auto")
>>> check_transition(Mode.PAUSED, Mode.LEARNING, "resume", "auto")
Traceback (most recent call last):
...
drift.decisions.IllegalTransition: paused -> learning by resume (auto) is not allowed: only an operator leaves paused
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from enum import Enum


class Mode(str, Enum):
    """What the live model does: learn, sit in quarantine beside a candidate, or wait for an operator."""

    LEARNING = "learning"
    QUARANTINE = "quarantine"
    PAUSED = "paused"


class IllegalTransition(ValueError):
    """A transition the guard's table does not allow (e.g. leaving `paused` automatically)."""


# (from, to) -> the actions that may make that move.
TRANSITIONS: dict[tuple[Mode, Mode], frozenset[str]] = {
    (Mode.LEARNING, Mode.QUARANTINE): frozenset({"rollback"}),
    (Mode.LEARNING, Mode.PAUSED): frozenset({"pause", "rollback"}),
    # manual rollback with --resume; a parked model of an earlier regime recalled while learning;
    # the model such a recall displaced, which went on learning in shadow, promoted back
    (Mode.LEARNING, Mode.LEARNING): frozenset({"rollback", "resume", "promote"}),
    (Mode.QUARANTINE, Mode.LEARNING): frozenset({"resume", "promote", "rollback"}),
    (Mode.QUARANTINE, Mode.PAUSED): frozenset({"pause", "rollback"}),
    (Mode.QUARANTINE, Mode.QUARANTINE): frozenset({"alert"}),  # quarantine limit reached: stay and alert
    (Mode.PAUSED, Mode.LEARNING): frozenset({"resume", "promote", "rollback"}),
    (Mode.PAUSED, Mode.PAUSED): frozenset({"rollback"}),
}

# Transitions only an operator may make: (from, to, action); None stands for any action.
MANUAL_ONLY: frozenset[tuple[Mode, Mode, str | None]] = frozenset(
    {(Mode.PAUSED, Mode.LEARNING, None), (Mode.PAUSED, Mode.PAUSED, None), (Mode.LEARNING, Mode.LEARNING, "rollback")}
)

ACTIONS = ("rollback", "resume", "promote", "pause", "alert")
TRIGGERS = ("auto", "manual")


def check_transition(source: Mode, target: Mode, action: str, trigger: str) -> None:
    """Raise IllegalTransition unless the table allows `action` to move `source` to `target`."""
    if trigger not in TRIGGERS:
        raise IllegalTransition(f"trigger must be one of {TRIGGERS}, got {trigger!r}")
    allowed = TRANSITIONS.get((source, target), frozenset())
    if action not in allowed:
        raise IllegalTransition(
            f"{source.value} -> {target.value} by {action} ({trigger}) is not allowed"
            + (f"; allowed: {sorted(allowed)}" if allowed else "")
        )
    if trigger == "auto" and ({(source, target, None), (source, target, action)} & MANUAL_ONLY):
        reason = "only an operator leaves paused" if source is Mode.PAUSED else "only an operator does that"
        raise IllegalTransition(f"{source.value} -> {target.value} by {action} ({trigger}) is not allowed: {reason}")


@dataclass(frozen=True)
class Decision:
    """One transition of the guard, with why and on what evidence; the loop carries it out.

    `restore` names the snapshot whose model becomes live; `candidate` says what happens to the
    shadow candidates: "start" (the candidate, a copy of the restored model, and, if configured, a
    fresh untrained model), "promote" (`challenger` becomes live), "drop", "keep" (the candidate
    learns on in shadow, the fresh model goes), "park" (dropped from shadow, but `challenger` is
    written to a snapshot that `Guard.candidate_parked` keeps), or "displace" (the live model a
    recall replaces goes on learning in shadow as "displaced").
    `challenger` is "candidate" (the copy), "fresh" or "displaced".
    `park` names snapshots to keep as models of an earlier regime (they may win a later contest).
    `catch_up` = (first, end): after the swap, the live model learns the kept labeled events with
    index in [first, end) - known-good events its snapshot had not learned yet.
    `park_catch_up` = (first, end): the model parked as `park[0]` learns the kept labeled events
    with index in [first, end) - the events of its regime after its snapshot - and is parked as the
    snapshot the loop writes of it (`Guard.parked_caught_up`).
    `shadow_catch_up` = (first, end): the shadow models a rollback starts learn the kept labeled
    events with index in [first, end) - those of the new regime (or incident) since its onset, so
    that the candidate and the fresh model learn every event of it, as a model without a guard did.
    """

    at: int
    action: str
    trigger: str
    source: str
    target: str
    reason: str
    evidence: dict = field(default_factory=dict)
    restore: str | None = None
    candidate: str | None = None
    challenger: str = "candidate"
    park: tuple[str, ...] = ()
    catch_up: tuple[int, int] | None = None
    shadow_catch_up: tuple[int, int] | None = None
    park_catch_up: tuple[int, int] | None = None
    alert: bool = False
    time: float = field(default_factory=time.time)

    def to_dict(self) -> dict:
        row = asdict(self)
        row["park"] = list(self.park)
        row["catch_up"] = list(self.catch_up) if self.catch_up else None
        row["shadow_catch_up"] = list(self.shadow_catch_up) if self.shadow_catch_up else None
        row["park_catch_up"] = list(self.park_catch_up) if self.park_catch_up else None
        # the backtest contract names the snapshot a decision restored as `snapshot`
        row["snapshot"] = self.restore
        return row
