"""How often do the guard's paired contests declare a winner between two equally good models?

    python -m benchmarks.contest_false_wins               # 200 runs per row (about 5 minutes)
    options: --runs 200  --seed 0

A contest's test (`drift/contest.py`: the sequential test of `drift/sequential.py`, and a margin of
mean loss on the window and on its latest events) runs again at every labeled event. Each row feeds
one contest of the guard's default settings with two models whose losses come from the same law,
for as many labeled events as that contest can last, and counts the runs in which a winner was
declared: every such win is false. The nominal rate is the settings' `alpha` (0.01). The laws:

- 0/1 losses (a classifier's errors): each event the same loss with probability `agreement`,
  otherwise two independent draws at `error`;
- absolute errors (a regressor's): |e| of two normal errors with correlation 0.5.

The contests:

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


def _zero_one(error: float, agreement: float):
    def pair(rng: random.Random) -> tuple[float, float]:
        live = float(rng.random() < error)
        return live, live if rng.random() < agreement else float(rng.random() < error)
    return f"0/1, error {error:g}, agreement {agreement:g}", pair


def _absolute(correlation: float):
    def pair(rng: random.Random) -> tuple[float, float]:
        shared = rng.gauss(0, 1)
        own = math.sqrt(1 - correlation * correlation)
        return (abs(correlation * shared + own * rng.gauss(0, 1)),
                abs(correlation * shared + own * rng.gauss(0, 1)))
    return f"|normal|, correlation {correlation:g}", pair


LAWS = [_zero_one(0.1, 0.0), _zero_one(0.3, 0.5), _absolute(0.5)]


def quarantine_wins(rng: random.Random, s: GuardSettings, events: int, pair) -> bool:
    contest = Contest(["candidate"], window=s.evidence_window)
    for _ in range(events):
        restored, candidate = pair(rng)
        contest.add(restored, {"candidate": candidate})
        if contest.labeled >= s.min_quarantine and contest.winner(s.alpha, s.margin)[0] is not None:
            return True
    return False


def probation_wins(rng: random.Random, s: GuardSettings, rival: bool, pair) -> bool:
    name = "displaced" if rival else "parked:s1"
    probation = (Probation([], s.probation, rivals=[name], rival_window=s.evidence_window) if rival
                 else Probation([name], s.probation, window=min(s.evidence_window, PROBATION_WINDOW)))
    for _ in range(s.probation):
        live, other = pair(rng)
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
        (f"quarantine, {1000:,} labeled", lambda rng, pair: quarantine_wins(rng, s, 1000, pair)),
        (f"quarantine, {s.max_quarantine:,} labeled", lambda rng, pair: quarantine_wins(rng, s, s.max_quarantine, pair)),
        (f"probation rival, {s.probation:,}", lambda rng, pair: probation_wins(rng, s, True, pair)),
        (f"probation parked, {s.probation:,}", lambda rng, pair: probation_wins(rng, s, False, pair)),
    ]
    rows, started = [], time.perf_counter()
    for label, wins in contests:
        for law, pair in LAWS:
            rng = random.Random(args.seed)
            k = sum(wins(rng, pair) for _ in range(args.runs))
            lo, hi = wilson(k, args.runs)
            rows.append([label, law, f"{k}/{args.runs}", f"{k / args.runs:.1%}", f"{lo:.1%}-{hi:.1%}", f"{s.alpha:g}"])
    print(table(["contest", "losses", "false wins", "rate", "95% interval", "alpha"], rows))
    print(f"\n{args.runs} runs per row, seed {args.seed}, {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
