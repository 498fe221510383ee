"""Scoring (accuracy / MAE, running and rolling) and the pending-label store (TTL on the stream's
clock, bounded size, counted drops); both must pickle into a snapshot and resume exactly."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.pending import PendingStore
from stream.scoring import LabelRange, Score

# -- scoring -----------------------------------------------------------------------------------


def test_accuracy_counts_correct_predictions():
    score = Score("accuracy")

    losses = [score.update(y, p) for y, p in [(1, 1), (0, 1), ("cat", "cat"), (True, True)]]

    assert losses == [0.0, 1.0, 0.0, 0.0]
    assert score.value == pytest.approx(0.75)
    assert score.count == 4


def test_mae_averages_absolute_errors():
    score = Score("mae")

    assert score.update(3.0, 2.5) == 0.5
    assert score.update(-1.0, 1.0) == 2.0
    assert score.value == pytest.approx(1.25)


def test_mae_of_a_missing_prediction_is_the_size_of_the_label():
    # An untrained regressor may predict None; that is an error of |y|, not a crash.
    assert Score("mae").update(-4.0, None) == 4.0


def test_no_value_before_the_first_label():
    score = Score("accuracy")

    assert score.value is None
    assert score.rolling is None


def test_rolling_covers_only_the_last_window_of_labels():
    score = Score("accuracy", window=3)
    for y, p in [(1, 0), (1, 0), (1, 1), (1, 1), (1, 1)]:  # two misses, then three hits
        score.update(y, p)

    assert score.rolling == 1.0          # last three were right
    assert score.value == pytest.approx(0.6)  # over all five


def test_rolling_mae():
    score = Score("mae", window=2)
    for y, p in [(10.0, 0.0), (1.0, 0.0), (3.0, 0.0)]:
        score.update(y, p)

    assert score.rolling == pytest.approx(2.0)
    assert score.value == pytest.approx(14 / 3)


@settings(max_examples=60, deadline=None, database=None)
@given(
    window=st.integers(1, 20),
    pairs=st.lists(st.tuples(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6)), min_size=1, max_size=80),
)
def test_rolling_mae_equals_the_mean_of_the_last_window_errors(window, pairs):
    score = Score("mae", window=window)
    for y, p in pairs:
        score.update(y, p)

    recent = [abs(y - p) for y, p in pairs][-window:]
    assert score.rolling == pytest.approx(sum(recent) / len(recent))


def test_for_model_picks_accuracy_or_mae():
    assert Score.for_model(True).name == "accuracy"
    assert Score.for_model(False, window=5).name == "mae"
    assert Score.for_model(False, window=5).window == 5


def test_unknown_metric_is_refused():
    with pytest.raises(ValueError, match="f1"):
        Score("f1")


def test_score_pickles_and_resumes_exactly():
    score = Score("accuracy", window=4)
    for i in range(10):
        score.update(i % 3 == 0, True)
    restored = pickle.loads(pickle.dumps(score))

    for i in range(10, 20):
        assert restored.update(i % 2 == 0, True) == score.update(i % 2 == 0, True)
    assert (restored.value, restored.rolling, restored.count) == (score.value, score.rolling, score.count)


# -- a regressor's label range ---------------------------------------------------------------


def test_no_label_is_refused_before_a_hundred_labels():
    labels = LabelRange()

    assert all(labels.admits(y) for y in [1.0, 2.0] * 49 + [1e9])
    assert labels.bounds is None


def test_a_target_that_is_usually_zero_still_admits_its_rare_values():
    # 1st and 99th percentiles both 0: the bounds come from the whole range of the latest labels.
    labels = LabelRange()
    for i in range(1000):
        labels.admits(40.0 if i % 200 == 199 else 0.0)

    assert labels.admits(300.0) and labels.admits(3000.0)
    assert not labels.admits(1e6)


def test_labels_of_one_value_have_no_bounds():
    labels = LabelRange()
    for _ in range(1000):
        labels.admits(7.0)

    assert labels.bounds is None and labels.admits(1e6)


def test_a_few_glitches_among_the_latest_labels_do_not_widen_the_bounds():
    labels = LabelRange()
    for i in range(1000):
        labels.admits(1e9 if i % 200 == 0 else float(i % 30))  # five glitches

    assert labels.bounds == (-2900.0, 2929.0)


# -- pending labels ----------------------------------------------------------------------------


def test_pop_returns_features_and_prediction_once():
    store = PendingStore()
    store.put("a", {"f": 1.0}, 1, ts=10.0)

    assert store.pop("a") == ({"f": 1.0}, 1)
    assert store.pop("a") is None
    assert len(store) == 0


def test_ttl_is_measured_on_the_stream_clock_not_the_wall_clock():
    store = PendingStore(ttl_seconds=10)
    store.put("old", {}, 0, ts=1_000.0)   # a stream from long ago: wall clock would expire it at once
    store.put("mid", {}, 0, ts=1_005.0)

    assert len(store) == 2 and store.expired == 0

    store.put("new", {}, 0, ts=1_012.0)   # "old" is now 12 s old on the stream's clock

    assert store.pop("old") is None
    assert store.pop("mid") == ({}, 0)
    assert store.expired == 1


def test_an_entry_exactly_ttl_old_is_kept():
    store = PendingStore(ttl_seconds=10)
    store.put("a", {}, 0, ts=100.0)
    store.put("b", {}, 0, ts=110.0)

    assert store.pop("a") is not None


def test_the_stream_clock_never_goes_backwards():
    store = PendingStore(ttl_seconds=10)
    store.put("a", {}, 0, ts=100.0)
    store.put("late", {}, 0, ts=50.0)   # out of order: stamped with the stream clock (100)
    store.put("b", {}, 0, ts=109.0)

    assert store.pop("late") is not None
    assert store.expired == 0


def test_eviction_at_max_size_drops_the_oldest_and_counts_it():
    store = PendingStore(max_size=3, ttl_seconds=1e9)
    for i in range(5):
        store.put(f"e{i}", {"i": i}, i, ts=float(i))

    assert len(store) == 3
    assert store.evicted == 2
    assert store.expired == 0
    assert store.pop("e0") is None and store.pop("e1") is None
    assert store.pop("e4") == ({"i": 4}, 4)


def test_putting_an_id_again_replaces_it_without_counting_a_drop():
    store = PendingStore(max_size=2, ttl_seconds=1e9)
    store.put("a", {"v": 1}, 1, ts=1.0)
    store.put("a", {"v": 2}, 2, ts=2.0)

    assert len(store) == 1
    assert store.pop("a") == ({"v": 2}, 2)
    assert (store.evicted, store.expired) == (0, 0)


@settings(max_examples=50, deadline=None, database=None)
@given(
    max_size=st.integers(1, 10),
    ops=st.lists(st.tuples(st.integers(0, 30), st.floats(0, 1000)), max_size=60),
)
def test_size_never_exceeds_max_and_every_drop_is_counted(max_size, ops):
    store = PendingStore(max_size=max_size, ttl_seconds=50)
    distinct_puts = 0
    for key, ts in ops:
        if store.pop(str(key)) is not None:
            distinct_puts -= 1
        store.put(str(key), {}, None, ts=ts)
        distinct_puts += 1
        assert len(store) <= max_size

    assert len(store) + store.evicted + store.expired == distinct_puts


def test_pending_store_pickles_and_resumes_with_the_same_expiries():
    live = PendingStore(max_size=5, ttl_seconds=10)
    for i in range(8):
        live.put(f"e{i}", {"i": i}, i, ts=float(i))
    restored = pickle.loads(pickle.dumps(live))

    for store in (live, restored):
        store.put("late", {}, 0, ts=15.0)
        store.put("later", {}, 0, ts=18.0)

    assert (restored.evicted, restored.expired, len(restored)) == (live.evicted, live.expired, len(live))
    for i in range(8):
        assert restored.pop(f"e{i}") == live.pop(f"e{i}")
    assert restored.pop("later") == live.pop("later") == ({}, 0)


def test_an_event_without_ts_does_not_expire_a_historical_streams_pending_labels():
    store = PendingStore(ttl_seconds=3600)
    store.put("a", {"f": 1.0}, 1, ts=1_600_000_000.0)   # a replay of 2020 data
    store.put("b", {"f": 2.0}, 0, ts=None)              # one producer forgot ts

    assert store.pop("a") == ({"f": 1.0}, 1)
    assert store.expired == 0
