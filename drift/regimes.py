"""What the guard can go back to: restore points, and models of earlier regimes.

- A *restore point* is a snapshot the loop wrote while learning. A rollback restores the newest
  one taken before the estimated onset of a change: it has learned nothing since.
- A *parked* model is the model of an earlier regime (the restored model, when a candidate was
  promoted over it), kept with the input reference of its regime. It predicts in shadow in later
  contests, and comes back at once when the inputs since an onset are those of its regime, unless
  it was parked because a shift of the inputs did it no harm: then only a contest brings it back
  (the model that learned through a harmless shift may well be the better one). A candidate that
  learned a concept the guard then left (an "incident over" after a long concept quarantine) is
  parked too, without a reference: only a contest brings it back.
- A concept alarm also brings back a parked model that predicts the labeled events since its onset
  significantly better than the live model did (`recognise_by_labels`): a contest held once.
- After a promotion, the parked models predict in shadow for a while (`Probation`): when an old
  regime comes back without any alarm (labels flipped back: the error *falls*), its model wins.
  The quarantine's runner-up (the one of candidate and fresh model not promoted) learns on beside
  them: if it predicts the new regime significantly better once it has adapted, it goes on.
  After a parked model is recalled while learning, the live model it replaced learns on in shadow
  for a while ("displaced", a probation too): it learned through what the recalled model missed,
  and if it predicts the regime significantly better once it has relearned it, it goes on.
  After an incident is over and the restored model resumes, the candidate learns on in shadow the
  same way: it learned through the incident, which sometimes taught more than it harmed.

>>> points = RestorePoints(lookback=1000)
>>> for events in (500, 1000, 1500):
...     points.add(f"s{events}", events, Mode.LEARNING)
>>> points.before(1200).snapshot
's1000'
"""

from __future__ import annotations

from dataclasses import dataclass

from drift.contest import Contest, at_baseline
from drift.data import DataDriftDetector
from drift.decisions import Mode
from drift.history import VERIFY_MIN, Replay
from drift.matching import FAR_MATCH_EVENTS, MATCH_MIN_EVENTS, RangeStreak
from drift.reference import Reference
from drift.settings import GuardSettings

PROBATION_WINDOW = 200  # labeled events of paired evidence in a probation contest


@dataclass
class RestorePoint:
    snapshot: str
    events: int  # events consumed when it was taken: it has learned events [0, events)
    mode: Mode


class RestorePoints:
    """The snapshots an onset up to `lookback` events back may need, oldest first."""

    def __init__(self, lookback: int) -> None:
        self.lookback = lookback
        self.points: list[RestorePoint] = []

    def add(self, snapshot: str, events: int, mode: Mode) -> None:
        """Points older than `lookback` events are forgotten, except the newest of them: an onset
        can lie at most that far back, and the snapshot before it must stay reachable."""
        self.points.append(RestorePoint(snapshot, events, mode))
        horizon = events - self.lookback
        old = [p for p in self.points if p.events < horizon and p.mode is Mode.LEARNING]
        self.points = old[-1:] + [p for p in self.points if p.events >= horizon]

    def before(self, index: int) -> RestorePoint | None:
        """The newest point taken while learning that has learned nothing from event `index` on."""
        for point in reversed(self.points):
            if point.mode is Mode.LEARNING and point.events <= index:
                return point
        return None

    def named(self, snapshot: str) -> RestorePoint | None:
        """The point of that snapshot, if it is still kept."""
        return next((p for p in self.points if p.snapshot == snapshot), None)

    def needed(self, now: int) -> set[str]:
        """The snapshots a rollback from event `now` on may restore: retention must keep them."""
        keep = {p.snapshot for p in self.points if p.mode is Mode.LEARNING and p.events > now - self.lookback}
        oldest_useful = self.before(now - self.lookback)
        if oldest_useful is not None:
            keep.add(oldest_useful.snapshot)
        return keep

    def clear(self) -> None:
        self.points.clear()


@dataclass
class Parked:
    """A model of an earlier regime, kept (pinned) in case that regime comes back."""

    snapshot: str
    reference: Reference | None  # the data detector's reference for that regime
    parked_at: int
    by_inputs: bool = True  # its regime's inputs alone bring it back (else only a contest does)


class ParkedModels:
    """At most `most` parked models, the newest last."""

    def __init__(self, most: int) -> None:
        self.most = most
        self.models: list[Parked] = []
        self._streaks: dict[str, RangeStreak] = {}  # per parked snapshot: `note`

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_streaks": {}}  # per event, not part of a snapshot

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update({"_streaks": {}, **state})

    def __iter__(self):
        return iter(self.models)

    def __len__(self) -> int:
        return len(self.models)

    def __getitem__(self, i: int) -> Parked:
        return self.models[i]

    @property
    def challengers(self) -> list[str]:
        """Their names as shadow models: "parked:<snapshot>"."""
        return [f"parked:{p.snapshot}" for p in self.models]

    def park(self, snapshot: str, reference: Reference | None, at: int, *, by_inputs: bool = True) -> None:
        parked = Parked(snapshot, reference, at, by_inputs)
        self.models = [p for p in self.models if p.snapshot != snapshot] + [parked]
        del self.models[: -self.most]
        self._streaks = {p.snapshot: self._streaks[p.snapshot] for p in self.models if p.snapshot in self._streaks}

    def rename(self, snapshot: str, new: str) -> None:
        """The model parked as `snapshot` is now kept in snapshot `new` (caught up)."""
        for parked in self.models:
            if parked.snapshot == snapshot:
                parked.snapshot = new
        if snapshot in self._streaks:
            self._streaks[new] = self._streaks.pop(snapshot)

    @property
    def by_inputs(self) -> list[Parked]:
        """Those whose regime's inputs alone bring them back (they have a reference), newest first."""
        return [p for p in reversed(self.models) if p.reference is not None and p.by_inputs]

    def note(self, x: dict) -> None:
        """Per valid event: extend or end, for each model its regime's inputs bring back, the run
        of events near its range or far outside it (`RangeStreak`): `back_near`."""
        for parked in self.models:
            if parked.reference is not None and parked.by_inputs:
                streak = self._streaks.get(parked.snapshot)
                if streak is None or streak.reference is not parked.reference:
                    streak = self._streaks[parked.snapshot] = RangeStreak(parked.reference)
                streak.add(x)

    def back_near(self, events: int) -> bool:
        """Have the latest `events` valid events, and no more, lain near the range of a parked
        regime whose inputs bring its model back? (Whether the events before lay far outside it,
        as `near_run` asks, is for `recognise_far` to tell.)"""
        return any(streak.near == events for streak in self._streaks.values())

    def near_latest(self) -> str | None:
        """The newest model (its shadow name) whose regime's range the latest valid event lay near
        (`note`), among those its regime's inputs bring back."""
        for parked in reversed(self.models):
            streak = self._streaks.get(parked.snapshot)
            if streak is not None and streak.near:
                return f"parked:{parked.snapshot}"
        return None

    def take(self, snapshot: str) -> Parked:
        """Unpark the model of `snapshot` (it becomes live)."""
        parked = next(p for p in self.models if p.snapshot == snapshot)
        self.models.remove(parked)
        self._streaks.pop(snapshot, None)
        return parked

    def recognise(self, data: DataDriftDetector, since: int, *, alarm_level: bool = False) -> tuple[str, dict] | None:
        """The parked model whose regime the inputs since `since` come from, if they do not come
        from the current reference's: its snapshot and the evidence (`DataDriftDetector.matches`).

        With `alarm_level` (no alarm has fired: the guard asks on its own) they must also depart
        from the current reference as far as an alarm asks (`DataDriftDetector.departs`). None
        while a new reference is collected (after a promotion): only a run tells then
        (`recognise_far`), because 40 events rarely tell a moderate shift from none."""
        current, candidates = data.snapshot_reference(), self.by_inputs
        if current is None or not candidates or data.matches(current, since)[0]:
            return None
        if alarm_level and not data.departs(current, since)[0]:
            return None
        return self._matching(data, since, candidates)

    def returned_to(self, data: DataDriftDetector, since: int, snapshot: str) -> tuple[Reference, dict] | None:
        """Do the inputs since `since` come from the regime of the model parked as `snapshot`
        (whether or not its inputs alone may bring it back)? Its reference and the evidence; None:
        no, or no such model with a reference."""
        parked = [p for p in self.models if p.snapshot == snapshot and p.reference is not None]
        known = self._matching(data, since, parked)
        return (parked[0].reference, known[1]) if known is not None else None

    def recognise_far(self, data: DataDriftDetector) -> tuple[int, str, dict] | None:
        """Without an alarm, sooner than `recognise`: at least `FAR_MATCH_EVENTS` latest inputs in
        a row lie far outside the current reference's range (`DataDriftDetector.far_run`; while a
        new one is collected, the range of its early events: a stuck sensor's regime ends), or back
        near a parked regime's range after the current regime's events lay far outside it
        (`near_run`; also while a new reference is collected), and match that parked regime.
        Where that run begins, the model's snapshot and the evidence; None: no such run, or no
        parked regime matches it."""
        current, candidates = data.snapshot_reference(), self.by_inputs
        if not candidates:
            return None
        far_from = "far_outside_current" if current is not None else "far_outside_collected"
        current = current or data.early_reference()
        ended = data.far_run(current, FAR_MATCH_EVENTS) if current is not None else None
        for parked in candidates:
            since = ended if ended is not None else data.near_run(parked.reference, FAR_MATCH_EVENTS)
            if since is None:
                continue
            known = self._matching(data, since, [parked], min_events=FAR_MATCH_EVENTS)
            if known is not None:
                run = far_from if ended is not None else "back_near_parked"
                return since, known[0], {**known[1], "run": run}
        return None

    def recognise_restart(self, data: DataDriftDetector) -> tuple[int, str, dict] | None:
        """While a new reference is collected (after a promotion), and it restarted because its
        inputs changed (`DataDriftDetector.restarted_at`: an incident that ended while it was
        collected, say): do the inputs since the restart match a parked regime? Where they begin,
        the model's snapshot and the evidence; None: no restart, or no parked regime matches."""
        since = data.restarted_at
        if since is None:
            return None
        known = self._matching(data, since, self.by_inputs)
        return (since, known[0], {**known[1], "restarted_at": since}) if known is not None else None

    @staticmethod
    def _matching(data: DataDriftDetector, since: int, candidates: list[Parked],
                  min_events: int = MATCH_MIN_EVENTS) -> tuple[str, dict] | None:
        for parked in candidates:
            # An onset estimated a few events early lets the other regime's last events in.
            match, evidence = data.matches(parked.reference, data.first_alike(parked.reference, since), min_events)
            if match:
                return parked.snapshot, {"inputs": evidence}
        return None

    def recognise_by_labels(self, live: list[tuple[int, float]], replay: Replay, baseline: float | None,
                            classifier: bool, alpha: float, margin: float) -> tuple[str, dict] | None:
        """The parked model whose regime the labeled events since an onset come from, by its losses.

        `live` holds (index, loss) of the live model on those events; `replay(snapshot, since)`
        scores a snapshot's model on the latest of them it keeps (the loop keeps 1,000), which
        pair with the end of `live`. A parked model must win the quarantine contest's test there,
        once (significantly and by `margin`; alpha split between the parked models), and predict
        them at the live model's pre-onset level (`baseline`): being less bad than a model a change
        has hit does not make an old regime's model right. Its snapshot and the evidence; None:
        none does.
        """
        if len(live) < VERIFY_MIN or not self.models:
            return None
        best = None
        for parked in self.models:
            losses = replay(parked.snapshot, live[0][0])
            if losses is None or not VERIFY_MIN <= len(losses) <= len(live):
                continue  # no paired verdict
            name = f"parked:{parked.snapshot}"
            contest = Contest([name], window=len(losses), recent=len(losses), sequential=False)
            for (_, loss), theirs in zip(live[-len(losses):], losses):
                contest.add(loss, {name: theirs})
            winner, evidence = contest.winner(alpha / len(self.models), margin)
            normal, level = at_baseline(losses, baseline, classifier)
            if winner is None or not normal:
                continue
            evidence["at_baseline"] = level
            if best is None or evidence["challenger_loss"] < best[1]["challenger_loss"]:
                best = parked.snapshot, evidence
        return best


class Probation:
    """A while of shadow models against the live one, for `length` labeled events, each group on
    its own contest.

    - After a promotion: the parked models (`parked`, on a short window: evidence from before an
      old regime returned must age out fast), and the quarantine's runner-up (`rivals`: the one
      of candidate and fresh model not promoted, which learns on: the first to win a change is
      not always the better one for long).
    - After a recall while learning: the displaced model (`rivals`) against the recalled one
      (`recalled` is its snapshot).
    - After an incident is over: the candidate, which learned through it, against the restored
      model that resumed (`resumed` is its restore point).

    Rivals are judged on a window as long as a quarantine's: their edge, if any, is small and lasting.
    """

    def __init__(self, parked: list[str], length: int, window: int = PROBATION_WINDOW, *,
                 rivals: list[str] = (), rival_window: int = 500, recalled: str | None = None,
                 resumed: str | None = None) -> None:
        self.contests = [Contest(list(names), window=size)
                         for names, size in ((parked, window), (rivals, rival_window)) if names]
        self.length = length
        self.recalled = recalled
        self.resumed = resumed

    @classmethod
    def after(cls, settings: GuardSettings, *, parked: list[str] = (), rivals: list[str] = (),
              recalled: str | None = None, resumed: str | None = None) -> Probation:
        """The probation the guard starts after a switch: `settings.probation` labeled events,
        parked models on a short window (at most `PROBATION_WINDOW`), rivals on a quarantine's."""
        return cls(list(parked), settings.probation, window=min(settings.evidence_window, PROBATION_WINDOW),
                   rivals=rivals, rival_window=settings.evidence_window, recalled=recalled, resumed=resumed)

    def __setstate__(self, state: dict) -> None:
        if "contest" in state:  # before rivals: one contest
            state["contests"] = [state.pop("contest")]
        state.setdefault("resumed", None)
        self.__dict__.update(state)

    @property
    def challengers(self) -> list[str]:
        return [name for contest in self.contests for name in contest.challengers]

    @property
    def rivals(self) -> list[str]:
        return [name for name in self.challengers if not name.startswith("parked:")]

    @property
    def labeled(self) -> int:
        return self.contests[0].labeled if self.contests else 0

    @property
    def over(self) -> bool:
        return self.labeled >= self.length

    def without_rivals(self) -> Probation | None:
        """The probation of the parked models alone (a rival won), if there are any."""
        self.contests = [c for c in self.contests if all(n.startswith("parked:") for n in c.challengers)]
        return self if self.contests else None

    def add(self, loss: float, shadow: dict[str, float], *, alpha: float, margin: float,
            min_events: int) -> tuple[str | None, dict]:
        """One labeled event: the challenger that now beats the live one ("parked:<snapshot>", or a
        rival: "displaced", "candidate" or "fresh"), and the evidence (None: none does).

        The test runs again at every labeled event, for `length` events: it is the contests'
        sequential test (`drift/sequential.py`), whose `alpha` holds however often it is read.
        """
        for contest in self.contests:
            contest.add(loss, shadow)
        if self.labeled < min_events:
            return None, {}
        for contest in self.contests:
            name, evidence = contest.winner(alpha, margin)
            if name is not None:
                return name, evidence
        return None, {}
