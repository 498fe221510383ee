"""The guard-quality harness's paired test of guard against no-guard (the table's `p` column), and the
contest false-wins and stationary-rollbacks benchmarks."""

from __future__ import annotations

import random

from benchmarks._quality import paired
from drift.stats import mcnemar_p


def test_accuracy_is_compared_by_mcnemar_on_the_events_only_one_model_got_wrong():
    guard = {i: 1.0 if i % 10 == 0 else 0.0 for i in range(1000)}  # wrong on 100
    plain = {i: 1.0 if i % 10 == 5 or i % 50 == 0 else 0.0 for i in range(1000)}  # 120, 20 shared
    result = paired(guard, plain, "classification")
    assert (result["better"], result["worse"]) == (100, 80)
    assert result["p_value"] == mcnemar_p(100, 80)


def test_mae_is_compared_by_its_mean_not_by_which_model_errs_less_more_often():
    rng = random.Random(2)
    plain = {i: rng.uniform(1, 2) for i in range(5000)}
    # The guard errs a little less on most events and much more on a few: the same mean error.
    guard = {i: e - 0.1 if i % 10 else e + 0.9 for i, e in plain.items()}
    result = paired(guard, plain, "regression")
    assert result["better"] == 4500 and result["p_value"] > 0.5  # a sign test would say p < 1e-300
    worse = paired({i: e + 0.05 for i, e in plain.items()}, plain, "regression")
    assert worse["worse"] == 5000 and worse["p_value"] < 1e-6


def test_the_contest_false_wins_benchmark_counts_wins_between_equal_models_and_a_clear_edge_is_one():
    import benchmarks.contest_false_wins as bench
    from drift.settings import GuardSettings

    s = GuardSettings()
    # Every loss equal: no discordant pair, never a win.
    _, same = bench._zero_one(0.1, agreement=1.0)
    assert not bench.quarantine_wins(random.Random(1), s, 1000, same)
    assert bench.wilson(0, 200)[0] == 0.0 and 0.0 < bench.wilson(10, 200)[0] < 0.05 < bench.wilson(10, 200)[1]
    # With a real edge (the other model never errs, or errs half as much) the same contests declare
    # it: a win is what is counted.
    def edge(rng):
        return float(rng.random() < 0.3), 0.0

    def half(rng):
        return abs(rng.gauss(0, 1)), abs(rng.gauss(0, 0.5))

    for pair in (edge, half):
        assert bench.quarantine_wins(random.Random(1), s, 1000, pair)
        assert bench.probation_wins(random.Random(1), s, True, pair)
        assert bench.probation_wins(random.Random(1), s, False, pair)


def test_the_stationary_rollbacks_benchmark_counts_alarms_and_rollbacks_per_stream():
    # Seed 2018's hyperplane holds a cluster of hard events (2,621 to 2,699): the tree's alarm there
    # is counted, and no rollback, since the guard waits for a rise to persist (test_backtest.py).
    from benchmarks.stationary_rollbacks import one_stream

    assert one_stream("hyperplane", "tree", 3000, 2018) == (1, 0, None)
    assert one_stream("hyperplane", "linear", 3000, 2018) == (0, 0, None)


def test_the_guard_quality_summary_sorts_misses_without_changing_the_verdicts():
    from benchmarks.guard_quality import _misses

    line = _misses([
        (["no-guard (oracle too)"], {"vs_no_guard": {"p_value": 0.3}}, "incident"),  # both kinds
        (["no-guard (oracle too)"], {"vs_no_guard": {"p_value": 0.001}}, "incident"),  # oracle too only
        (["no-guard"], {"vs_no_guard": {"p_value": 0.8}}, "incident"),  # within chance only
        (["no-guard", "oracle"], {"vs_no_guard": {"p_value": 0.8}}, "incident"),  # also >1% under the oracle
        (["no-guard"], {"vs_no_guard": {"p_value": 0.8}}, "change"),  # a real change's bar allows 1 point
    ])
    assert line == ('The 5 misses: 2 "oracle too" (the oracle is under no-guard as well), '
                    "2 only under no-guard and within chance of it (p >= 0.05), 2 neither.")


def test_drawn_cases_are_valid_repeatable_and_cover_every_incident_of_the_design():
    from benchmarks.cases import drawn_cases
    from stream.scenarios import describe

    kinds = set()
    for seed in range(60):  # make_case refuses a spec that does not fit its base
        cases = drawn_cases(seed, quick=True)
        assert len(cases) == 21 and len({c.key for c in cases}) == 21
        for case in cases:
            kinds |= {inc.kind for inc in describe(case.scenario, case.n, case.seed, **case.params)}
            assert case.kind == "stationary" or case.after[1] <= case.n
    assert kinds == {"unit_change", "offset_shift", "stuck_sensor", "zeroed_sensor", "swapped_columns",
                     "missing_features", "flipped_labels", "abrupt_change", "gradual_change", "recurring_change"}
    assert [c.params for c in drawn_cases(3)] == [c.params for c in drawn_cases(3)]
    assert [c.params for c in drawn_cases(3)] != [c.params for c in drawn_cases(4)]
