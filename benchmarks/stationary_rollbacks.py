"""How often does the guard roll back on a stream where nothing changes?

    python -m benchmarks.stationary_rollbacks          # 100 seeds x 30,000 events per row (11-16 minutes)
    options: --seeds 100  --first 2000  --events 30000  --models linear,tree  --bases hyperplane,rbf  --workers 2

Each row runs the guard (default settings, snapshots every 500 events, as `guard_quality`) through
the backtest on `--seeds` stationary streams of one generator (`stream.scenarios`, scenario
"stationary", seeds `--first` on), and counts the streams with at least one rollback: every
rollback there is a false one. `guard_quality` asks for zero on one 200,000-event stream per seed;
this puts a rate on it. The interval is Wilson's 95% interval of the rate of streams.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor

from benchmarks._harness import table
from benchmarks._quality import FAMILIES, make_case, run_case
from benchmarks.contest_false_wins import wilson


def one_stream(base: str, family: str, events: int, seed: int) -> tuple[int, int, int | None]:
    """(alarms, rollbacks, event of the first rollback or None) of the guard arm of `guard_quality`
    on one stationary stream."""
    case = make_case("stationary", "stationary", events, seed, base=base)
    guard = run_case(case, family, skip=("no-guard", "river-drc"))["guard"]
    rollbacks = [d["at"] for d in guard["decisions"] if d["action"] == "rollback"]
    return len(guard["alarms"]), len(rollbacks), (rollbacks[0] if rollbacks else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--first", type=int, default=2000)
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--models", default="linear,tree")
    parser.add_argument("--bases", default="hyperplane,rbf")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    seeds = range(args.first, args.first + args.seeds)
    rows, started = [], time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        for base in args.bases.split(","):
            for family in args.models.split(","):
                runs = list(pool.map(one_stream, *zip(*[(base, family, args.events, s) for s in seeds])))
                hit = [(first, seed) for seed, (_, rollbacks, first) in zip(seeds, runs) if rollbacks]
                lo, hi = wilson(len(hit), len(runs))
                rows.append([base, FAMILIES[family]["classification"], f"{len(hit)}/{len(runs)}",
                             f"{len(hit) / len(runs):.1%}", f"{lo:.1%}-{hi:.1%}",
                             str(sum(r[1] for r in runs)), str(sum(r[0] for r in runs)),
                             " ".join(f"{first:,} ({seed})" for first, seed in sorted(hit)) or "-"])
    print(table(["stream", "model", "with a rollback", "rate", "95% interval", "rollbacks", "alarms",
                 "first rollback at (seed)"], rows))
    print(f"\nseeds {seeds.start}-{seeds.stop - 1}, {args.events:,} events each, "
          f"{time.perf_counter() - started:.0f} s on {args.workers} workers")


if __name__ == "__main__":
    main()
