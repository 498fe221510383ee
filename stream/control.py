"""Carrying out the guard's decisions and the operator's commands, on the loop's thread.

The guard (in `drift/`) decides; this module does: it writes the pre-rollback snapshot, loads the
restored model from its snapshot, starts, promotes or drops the candidate, writes the rollback or
promotion snapshot, and appends the decision to the journal (`decisions.jsonl` beside the
snapshots). A rollback never rewinds the stream: the new snapshot holds the restored model with the
current offsets, and its metadata says `restored_from`.
"""

from __future__ import annotations

import copy
import json
import logging

from drift.decisions import Decision
from drift.guard import GuardError
from stream.errors import RiverguardError, SnapshotError
from stream.scoring import Score

log = logging.getLogger(__name__)

JOURNAL = "decisions.jsonl"


class CommandError(RiverguardError):
    """An operator command that cannot be carried out now (the message says why)."""

    exit_code = 4


class Control:
    """Executes decisions for one runner; registers the operator commands on its loop."""

    def __init__(self, runner) -> None:
        self.runner = runner
        self.loop = runner.loop
        self.store = runner.store
        self.journal_path = self.store.dir / JOURNAL
        self.loop.execute = self.execute
        self.loop.load_model = self._load_model
        commands = self.loop.commands
        commands.on("snapshot", lambda: runner.snapshot("manual").to_dict())
        commands.on("pause", self.pause)
        commands.on("resume", self.resume)
        commands.on("promote", self.promote)
        commands.on("rollback", self.rollback)
        commands.on("pin", self.pin)

    # -- operator commands -------------------------------------------------------------------

    def pause(self) -> dict:
        return self._manual(lambda guard, index: guard.pause(index))

    def resume(self) -> dict:
        return self._manual(lambda guard, index: guard.resume(index))

    def promote(self) -> dict:
        return self._manual(lambda guard, index: guard.promote(index))

    def rollback(self, to: str | None = None, last_good: bool = False, resume: bool = False) -> dict:
        """Restore a snapshot's model as live; learning pauses unless `resume`."""
        if to is None and not last_good:
            raise CommandError("rollback needs a snapshot id (to) or last_good")
        target = to or self.last_good()
        if target is None:
            raise CommandError("there is no snapshot taken while learning to roll back to")
        model = self._load_model(target)  # refuse before the guard changes state
        return self._manual(lambda g, index: g.rollback(index, target, resume=resume), preloaded={target: model})

    def pin(self, snapshot: str, pinned: bool = True) -> dict:
        try:
            self.store.pin(snapshot, pinned)
        except SnapshotError as exc:
            raise CommandError(str(exc)) from None
        return {"snapshot": snapshot, "pinned": pinned}

    def last_good(self) -> str | None:
        """In quarantine, the snapshot the guard restored; otherwise the newest taken while learning."""
        guard = self.loop.guard
        if guard.quarantine is not None and guard.quarantine.restored:
            return guard.quarantine.restored
        return guard.last_good(self.loop.counters.events)

    def _manual(self, decide, preloaded: dict | None = None) -> dict:
        try:
            decision = decide(self.loop.guard, self.loop.counters.events)
        except (GuardError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        self._carry_out(decision, preloaded or {})
        return decision.to_dict()

    # -- decisions ---------------------------------------------------------------------------

    def execute(self, decisions: list[Decision]) -> None:
        for decision in decisions:
            self._carry_out(decision, {})

    def _carry_out(self, decision: Decision, preloaded: dict) -> None:
        loop, runner = self.loop, self.runner
        snapshots: dict[str, str] = {}
        if decision.action == "rollback":
            snapshots["pre_rollback"] = runner.snapshot("pre-rollback").id
        displaced = loop.model
        if decision.restore:
            try:
                model = (preloaded[decision.restore] if decision.restore in preloaded
                         else self._load_model(decision.restore))
            except CommandError as exc:
                # The guard stays where it decided (frozen, so nothing bad is learned); say so loudly.
                log.error("could not restore %s: %s; the live model stays as it is", decision.restore, exc)
                snapshots["restore_failed"] = str(exc)
                loop.guard.restore_failed()
            else:
                loop.model = model
                snapshots["restored"] = decision.restore
        if decision.catch_up:
            decision.evidence["caught_up"] = loop.catch_up(*decision.catch_up)
        if decision.candidate == "start":
            loop.shadow = {"candidate": copy.deepcopy(loop.model)}  # a fresh model joins in _sync_shadows
            loop.candidate_score = Score(loop.score.name, loop.score.window)
        elif decision.candidate == "promote":
            loop.model = loop.shadow.pop(self._challenger(decision))
        elif decision.candidate == "park":
            meta = runner.snapshot("candidate", model=loop.shadow.pop(self._challenger(decision)))
            loop.guard.candidate_parked(meta.id, decision.at)
            snapshots["parked_candidate"] = meta.id
        elif decision.candidate == "drop":
            loop.shadow.pop("candidate", None)
        elif decision.candidate == "displace" and loop.model is not displaced:  # (not if the restore failed)
            loop.shadow["displaced"] = displaced  # it learns on in shadow (a probation)
        self._sync_shadows()
        if decision.park_catch_up and decision.park:
            snapshots["parked"] = self._park_caught_up(decision)
        if decision.candidate == "start" and decision.shadow_catch_up:
            decision.evidence["shadows_caught_up"] = {
                name: loop.catch_up(*decision.shadow_catch_up, model=loop.shadow[name])
                for name in ("candidate", "fresh") if name in loop.shadow}
        reason = "promotion" if decision.action == "promote" else ("rollback" if decision.restore else None)
        if reason is not None:
            snapshots[reason] = runner.snapshot(reason, restored_from=decision.restore).id
        decision.evidence["snapshots"] = snapshots
        self._journal(decision)
        level = logging.WARNING if decision.trigger == "auto" else logging.INFO
        log.log(level, "guard %s (%s): %s -> %s: %s", decision.action, decision.trigger,
                decision.source, decision.target, decision.reason)

    def _park_caught_up(self, decision: Decision) -> str:
        """The model a decision parks, caught up on the events of its regime it had not learned
        (`Decision.park_catch_up`), written to a snapshot of its own; the guard parks that one.
        If its snapshot cannot be loaded, the guard keeps the one it named."""
        replaced = decision.park[0]
        try:
            model = self._load_model(replaced)
        except CommandError as exc:
            log.error("parked model %s is not caught up: %s", replaced, exc)
            return replaced
        decision.evidence["parked_caught_up"] = self.loop.catch_up(*decision.park_catch_up, model=model)
        meta = self.runner.snapshot("parked", model=model)
        self.loop.guard.parked_caught_up(replaced, meta.id)
        return meta.id

    def _challenger(self, decision: Decision) -> str:
        """The shadow model a decision promotes or parks; the candidate if it names a fresh model
        that could not be made (see `_sync_shadows`)."""
        return decision.challenger if decision.challenger in self.loop.shadow else "candidate"

    def _sync_shadows(self) -> None:
        """Shadow models are exactly the guard's challengers: parked models are loaded, a fresh one
        is an untrained clone of the live model (River's `clone`), others go."""
        loop = self.loop
        wanted = loop.guard.challengers
        shadow = {name: model for name, model in loop.shadow.items() if name in wanted}
        if "fresh" in wanted and "fresh" not in shadow:
            try:
                shadow["fresh"] = loop.model.clone()
            except Exception as exc:  # noqa: BLE001 - a factory model without River's clone
                log.error("no fresh model (%r): the candidate contests alone", exc)
        for name in wanted:
            if name.startswith("parked:") and name not in shadow:
                try:
                    shadow[name] = self._load_model(name.split(":", 1)[1])
                except CommandError as exc:
                    log.error("parked model %s is unavailable and sits this contest out: %s", name, exc)
        loop.shadow = shadow

    def _load_model(self, snapshot: str):
        try:
            return self.store.load(snapshot).state["model"]
        except SnapshotError as exc:
            raise CommandError(f"cannot roll back to {snapshot}: {exc}") from None

    def _journal(self, decision: Decision) -> None:
        with open(self.journal_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(decision.to_dict(), default=str) + "\n")



def rollback_offline(store, target: str, *, resume: bool = False) -> tuple[object, Decision]:
    """Roll back while the service is stopped: a new snapshot with the target's model and the
    newest snapshot's offsets, counters and pending labels; the next start continues from it."""
    current = store.latest_valid(resumable_only=True)
    if current is None:
        raise CommandError(f"no valid snapshot in {store.dir} to continue from")
    model = store.load(target).state["model"]
    state = current.state
    guard = state["guard"]
    events = state["counters"].events
    try:
        decision = guard.rollback(events, target, resume=resume, reason=f"rolled back to {target} offline")
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    state.update(model=model, shadow={})
    meta = store.write(
        state,
        reason="rollback",
        events=events,
        parent=current.meta.id,
        metric=current.meta.metric,
        model_spec=current.meta.model_spec,
        offsets=current.meta.offsets,
        restored_from=target,
        mode=guard.mode.value,
        protect=guard.protected(events) | {target},
    )
    decision.evidence["snapshots"] = {"restored": target, "rollback": meta.id, "continued_from": current.meta.id}
    with open(store.dir / JOURNAL, "a", encoding="utf-8") as f:
        f.write(json.dumps(decision.to_dict(), default=str) + "\n")
    return meta, decision
