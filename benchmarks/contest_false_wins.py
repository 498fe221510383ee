"""How often do the guard's paired contests declare a winner between two equally good models?

    python -m benchmarks.contest_false_wins               # 200 runs per row (about 10 minutes)
    options: --runs 200  --seed 0

A contest's test (exact McNemar on a sliding window, and a margin of mean loss on the window and on
its latest events: `drift/contest.py`) runs again at every labeled event. Each row feeds one contest
of the guard's default settings with two models whose 0/1 losses come from the same law (each
event: the same loss with probability `agreement`, otherwise two independent draws at `error`),
for as many labeled events as that contest can last, and counts the runs in which a winner was
declared: every such win is false. The nominal rate is the settings' `alpha` (0.01).

- quarantine: `Contest.winner` at `alpha` on `evidence_window` events, from `min_quarantine`
  labeled events on (the first question of `Quarantine.verdict`), for 1,000 labeled events and for
  `max_quarantine`;
- probation, rival and parked: `Probation.add` as the guard calls it, for `probation` events.

The interval is Wilson's 95% interval of the rate.
"""

from __future__ import annotations

import argparse
import math
import random
import time

from benchmarks._harness import table
from drift.contest import Contest
from drift.regimes import PROBATION_WINDOW, Probation
from drift.settings import GuardSettings

LAWS = [(0.1, 0.0), (0.3, 0.5)]  # (error, agreement)


def _pair(rng: random.Random, error: float, agreement: float) -> tuple[float, float]:
    live = float(rng.random() < error)
    other = live if rng.random() < agreement else float(rng.random() < error)
    return live, other


def quarantine_wins(rng: random.Random, s: GuardSettings, events: int, error: float, agreement: float) -> bool:
    contest = Contest(["candidate"], window=s.evidence_window)
    for _ in range(events):
        restored, candidate = _pair(rng, error, agreement)
        contest.add(restored, {"candidate": candidate})
        if contest.labeled >= s.min_quarantine and contest.winner(s.alpha, s.margin)[0] is not None:
            return True
    return False


def probation_wins(rng: random.Random, s: GuardSettings, rival: bool, error: float, agreement: float) -> bool:
    name = "displaced" if rival else "parked:s1"
    probation = (Probation([], s.probation, rivals=[name], rival_window=s.evidence_window) if rival
                 else Probation([name], s.probation, window=min(s.evidence_window, PROBATION_WINDOW)))
    for _ in range(s.probation):
        live, other = _pair(rng, error, agreement)
        winner, _ = probation.add(live, {name: other}, alpha=s.alpha, margin=s.margin, min_events=s.min_quarantine)
        if winner is not None:
            return True
    return False


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = k / n
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - half) / (1 + z * z / n)), (centre + half) / (1 + z * z / n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    s = GuardSettings()
    contests = [
        (f"quarantine, {1000:,} labeled", lambda rng, e, a: quarantine_wins(rng, s, 1000, e, a)),
        (f"quarantine, {s.max_quarantine:,} labeled", lambda rng, e, a: quarantine_wins(rng, s, s.max_quarantine, e, a)),
        (f"probation rival, {s.probation:,}", lambda rng, e, a: probation_wins(rng, s, True, e, a)),
        (f"probation parked, {s.probation:,}", lambda rng, e, a: probation_wins(rng, s, False, e, a)),
    ]
    rows, started = [], time.perf_counter()
    for label, wins in contests:
        for error, agreement in LAWS:
            rng = random.Random(args.seed)
            k = sum(wins(rng, error, agreement) for _ in range(args.runs))
            lo, hi = wilson(k, args.runs)
            rows.append([label, f"{error:g}", f"{agreement:g}", f"{k}/{args.runs}", f"{k / args.runs:.1%}",
                         f"{lo:.1%}-{hi:.1%}", f"{s.alpha:g}"])
    print(table(["contest", "error", "agreement", "false wins", "rate", "95% interval", "alpha"], rows))
    print(f"\n{args.runs} runs per row, seed {args.seed}, {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
