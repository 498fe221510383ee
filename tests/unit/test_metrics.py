"""Metrics: the loop's lock-free step histograms read exactly like prometheus_client's Histogram."""

from __future__ import annotations

import re
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from stream.metrics import _LAG_BUCKETS, _STEP_BUCKETS, Metrics, StepHistogram

STEP_HISTOGRAMS = (
    "riverguard_predict_duration_seconds",
    "riverguard_learn_duration_seconds",
    "riverguard_end_to_end_lag_seconds",
)


def _without_created(text: bytes) -> str:
    """Exposition text with the creation timestamps (the only values that may differ) blanked."""
    return re.sub(r"(_created(\{\})?) \S+", r"\1 T", text.decode())


def _pair(buckets=_STEP_BUCKETS):
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    reference = Histogram("rg_demo_seconds", "Demo.", buckets=buckets, registry=theirs)
    step = StepHistogram("rg_demo_seconds", "Demo.", buckets, ours)
    return (theirs, reference), (ours, step)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1e3, allow_nan=False), max_size=60))
def test_exposition_is_identical_to_prometheus_histogram(values):
    (theirs, reference), (ours, step) = _pair(_LAG_BUCKETS)
    for value in values:
        reference.observe(value)
        step.observe(value)

    assert _without_created(generate_latest(ours)) == _without_created(generate_latest(theirs))
    assert _without_created(generate_openmetrics(ours)) == _without_created(generate_openmetrics(theirs))


def test_a_value_on_a_bound_counts_in_that_bucket():
    registry = CollectorRegistry()
    h = StepHistogram("rg_demo_seconds", "Demo.", (0.001, 0.01), registry)
    h.observe(0.001)
    h.observe(0.0010001)

    assert registry.get_sample_value("rg_demo_seconds_bucket", {"le": "0.001"}) == 1.0
    assert registry.get_sample_value("rg_demo_seconds_bucket", {"le": "0.01"}) == 2.0


def test_the_service_metrics_keep_their_names_as_histograms():
    registry = CollectorRegistry()
    m = Metrics(registry)
    m.predict_seconds.observe(2e-5)
    m.learn_seconds.observe(3e-5)
    m.learn_seconds.observe(4e-5)
    m.e2e_lag.observe(0.2)

    types = {family.name: family.type for family in registry.collect()}
    assert all(types[name] == "histogram" for name in STEP_HISTOGRAMS)
    counts = [registry.get_sample_value(f"{name}_count") for name in STEP_HISTOGRAMS]
    assert counts == [1.0, 2.0, 1.0]
    assert registry.get_sample_value("riverguard_learn_duration_seconds_sum") == pytest.approx(7e-5)
    assert registry.get_sample_value("riverguard_end_to_end_lag_seconds_bucket", {"le": "0.25"}) == 1.0


@pytest.mark.parametrize("name", ["", "9lives_seconds", "has space", "dash-ed"])
def test_invalid_names_are_refused_at_construction(name):
    with pytest.raises(ValueError, match="invalid metric name"):
        StepHistogram(name, "Demo.", (1.0,), CollectorRegistry())


@pytest.mark.parametrize("buckets", [(), (1.0, 0.5), (0.5, 0.5), (0.5, float("inf"))])
def test_buckets_must_be_finite_distinct_and_ascending(buckets):
    with pytest.raises(ValueError, match="buckets"):
        StepHistogram("rg_demo_seconds", "Demo.", buckets, CollectorRegistry())


def test_a_name_taken_on_the_registry_is_refused():
    registry = CollectorRegistry()
    Histogram("rg_demo_seconds", "Demo.", registry=registry)

    with pytest.raises(ValueError, match="Duplicated"):
        StepHistogram("rg_demo_seconds", "Demo.", (1.0,), registry)


def test_scrapes_during_observation_are_consistent_and_never_go_backwards():
    """The loop thread observes while another thread scrapes: buckets and _count always agree,
    nothing decreases, and _sum is off by at most the one observation in flight."""
    registry = CollectorRegistry()
    h = StepHistogram("rg_demo_seconds", "Demo.", (1.0, 2.0), registry)
    n, done = 200_000, threading.Event()

    def observe():
        for _ in range(n):
            h.observe(1.5)  # every value equal: a torn _sum shows as _sum != 1.5 * _count
        done.set()

    writer = threading.Thread(target=observe)
    writer.start()
    last, scrapes = 0.0, 0
    while not done.is_set() or scrapes == 0:
        samples = {s.name + s.labels.get("le", ""): s.value for f in registry.collect() for s in f.samples}
        count = samples["rg_demo_seconds_count"]
        assert samples["rg_demo_seconds_bucket+Inf"] == samples["rg_demo_seconds_bucket2.0"] == count
        assert samples["rg_demo_seconds_bucket1.0"] == 0.0
        assert count >= last
        assert abs(samples["rg_demo_seconds_sum"] - 1.5 * count) <= 1.5
        last, scrapes = count, scrapes + 1
    writer.join()

    assert registry.get_sample_value("rg_demo_seconds_count") == n
    assert registry.get_sample_value("rg_demo_seconds_sum") == 1.5 * n


def test_stand_in_predictions_are_exported_as_the_loop_counts_them():
    from stream.loop import Loop, MemorySink
    from stream.metrics import Exporter
    from stream.models import build_model

    registry = CollectorRegistry()
    exporter = Exporter(Metrics(registry))
    loop = Loop(build_model(preset="linear_regression"), sink=MemorySink())
    for stood_in in (10, 10, 12):  # the loop's counter, at three exports
        loop.counters.stood_in = stood_in
        exporter.export(loop)
    assert registry.get_sample_value("riverguard_stand_in_predictions_total") == 12
