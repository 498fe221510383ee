"""The guard-quality harness's paired test of guard against no-guard (the table's `p` column)."""

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
