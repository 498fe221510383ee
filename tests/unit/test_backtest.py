"""Backtest: the service's loop offline over a file, and the JSON report of the DESIGN.md contract."""

from __future__ import annotations

import json
import random
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from river import linear_model

from stream.backtest import FileSource, backtest
from stream.cli import main
from stream.config import Config
from stream.scenarios import generate
from stream.snapshots import SUFFIX, read_meta_unverified

DESIGN_KEYS = {"events", "labeled", "invalid", "metric", "windows", "alarms", "decisions", "rollbacks", "learned"}
# Keys the report carries beyond DESIGN.md; listed so that any change to the contract is deliberate.
EXTRA_KEYS = {"invalid_by_reason", "model", "guard", "seconds", "outliers", "stood_in"}
DESIGN_WINDOW_KEYS = {"start", "end", "metric", "mode"}
EXTRA_WINDOW_KEYS = {"labeled", "modes"}


def classification_events(n: int, seed: int = 3, invalid_every: int = 50) -> list[bytes]:
    """n feature events (one in three labeled later, by a label event), plus some invalid lines."""
    rng = random.Random(seed)
    out: list[bytes] = []
    due: dict[int, list[bytes]] = {}
    for i in range(n):
        out.extend(due.pop(i, []))
        if invalid_every and i % invalid_every == 7:
            out.append(b'{"x": {"a": NaN}, "y": true}')
        x = {"a": rng.gauss(0, 1), "b": rng.uniform(-1, 1)}
        y = x["a"] - x["b"] > 0
        if i % 3 == 0:
            out.append(orjson.dumps({"id": f"e{i}", "ts": 1000.0 + i, "x": x}))
            due.setdefault(i + 5, []).append(orjson.dumps({"id": f"e{i}", "y": y}))
        else:
            out.append(orjson.dumps({"id": f"e{i}", "ts": 1000.0 + i, "x": x, "y": y}))
    for i in sorted(due):
        out.extend(due[i])
    return out


def regression_events(n: int, seed: int = 4) -> list[bytes]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        x = {"a": rng.gauss(0, 1), "b": rng.uniform(-1, 1)}
        rows.append(orjson.dumps({"id": f"r{i}", "x": x, "y": 2 * x["a"] - x["b"] + rng.gauss(0, 0.1)}))
    return rows


def config(**sections) -> Config:
    return Config.build(sections, env={})


@pytest.fixture(scope="module")
def events() -> list[bytes]:
    return classification_events(2000)


@pytest.fixture(scope="module")
def report(events) -> dict:
    return backtest(events, config(model={"preset": "logistic_regression"}, snapshots={"every_events": 400}), window=500)


# -- the report ------------------------------------------------------------------------------------


def test_report_has_the_design_keys_and_no_unplanned_ones(report):
    assert DESIGN_KEYS <= set(report)
    assert set(report) == DESIGN_KEYS | EXTRA_KEYS
    assert set(report["metric"]) == {"name", "value"}
    for window in report["windows"]:
        assert DESIGN_WINDOW_KEYS <= set(window)
        assert set(window) == DESIGN_WINDOW_KEYS | EXTRA_WINDOW_KEYS
    json.dumps(report)  # writable as JSON as it is


def test_report_counts_events_labels_and_invalid_lines(report, events):
    invalid_lines = sum(1 for e in events if b"NaN" in e)
    label_events = sum(1 for e in events if b'"x"' not in e)

    assert report["events"] == len(events)
    assert report["invalid"] == invalid_lines
    assert report["invalid_by_reason"] == {"non_finite": invalid_lines}
    assert report["labeled"] == 2000                     # every feature event got its label
    assert label_events == 2000 // 3 + 1
    assert report["learned"] == report["labeled"]        # no guard yet: everything is learned
    assert (report["alarms"], report["decisions"], report["rollbacks"]) == ([], [], 0)


def test_report_metric_is_accuracy_for_a_classifier_and_it_learned(report):
    assert report["metric"]["name"] == "accuracy"
    assert 0.85 < report["metric"]["value"] <= 1.0


def test_windows_split_the_file_by_event_index(report, events):
    windows = report["windows"]

    assert [(w["start"], w["end"]) for w in windows] == [
        (start, min(start + 500, len(events))) for start in range(0, len(events), 500)
    ]
    assert all(w["mode"] == "learning" for w in windows)
    assert sum(w["labeled"] for w in windows) == report["labeled"]


def test_window_metrics_add_up_to_the_overall_metric(report):
    windows = report["windows"]
    weighted = sum(w["metric"] * w["labeled"] for w in windows) / sum(w["labeled"] for w in windows)

    assert weighted == pytest.approx(report["metric"]["value"])
    assert windows[0]["metric"] < windows[-1]["metric"]   # a learner gets better


def test_a_window_of_one_thousand_is_the_default():
    events = classification_events(900, invalid_every=0)   # 900 feature events + 300 label events

    result = backtest(events, config())

    assert len(events) == 1200
    assert [(w["start"], w["end"]) for w in result["windows"]] == [(0, 1000), (1000, 1200)]


def test_a_regression_model_is_scored_by_mae():
    result = backtest(regression_events(1200), config(model={"preset": "linear_regression"}), window=400)

    assert result["metric"]["name"] == "mae"
    assert 0 < result["metric"]["value"] < 1.0
    assert [(w["start"], w["end"]) for w in result["windows"]] == [(0, 400), (400, 800), (800, 1200)]
    assert result["windows"][-1]["metric"] < 0.2          # late windows: close to the noise level
    assert result["learned"] == result["labeled"] == 1200


def test_the_same_file_gives_the_same_report(events):
    cfg = config(model={"preset": "hoeffding_tree"})
    first = backtest(events, cfg, window=700)
    second = backtest(events, cfg, window=700)

    first.pop("seconds"), second.pop("seconds")
    assert first == second


def test_no_guard_is_recorded_in_the_report(events):
    assert backtest(events[:50], config(), guard=False)["guard"] is False
    assert backtest(events[:50], config(guard={"enabled": False}))["guard"] is False


def test_an_empty_file_gives_an_empty_report():
    result = backtest([], config())

    assert (result["events"], result["labeled"], result["windows"]) == (0, 0, [])
    assert result["metric"] == {"name": "accuracy", "value": None}


def test_labels_arriving_after_the_configured_ttl_are_not_learned():
    events = [
        orjson.dumps({"id": "late", "ts": 0.0, "x": {"a": 1.0}}),
        orjson.dumps({"id": "other", "ts": 60.0, "x": {"a": 2.0}}),   # one minute later on the stream
        orjson.dumps({"id": "late", "y": True}),
    ]

    result = backtest(events, config(labels={"ttl_seconds": 30}))

    assert result["labeled"] == 0
    assert result["invalid_by_reason"] == {"unknown_id": 1}


def test_file_source_offsets_are_positions_and_seek_skips_ahead():
    source = FileSource([b"a", b"b", b"c", b"d", b"e"], batch=2)
    source.seek({("file", 0): 3})

    assert [(r.offset, r.value) for r in source.poll(0)] == [(3, b"d"), (4, b"e")]
    assert source.poll(0) is None


# -- the command line ------------------------------------------------------------------------------


def write_inputs(tmp_path, events, toml: str):
    data = tmp_path / "events.jsonl"
    data.write_bytes(b"\n".join(events) + b"\n")
    cfg = tmp_path / "riverguard.toml"
    cfg.write_text(toml)
    return data, cfg


def test_cli_backtest_writes_the_report(tmp_path, events):
    data, cfg = write_inputs(tmp_path, events, '[model]\npreset = "logistic_regression"\n[snapshots]\nevery_events = 500\n')
    out = tmp_path / "report.json"

    result = CliRunner().invoke(
        main, ["backtest", str(data), "--config", str(cfg), "--report", str(out), "--window", "500"]
    )

    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert DESIGN_KEYS <= set(report)
    assert report["events"] == len(events)
    assert [w["start"] for w in report["windows"]] == list(range(0, len(events), 500))
    assert str(out) in result.output and f"{len(events)} events" in result.output


def test_cli_backtest_reads_csv_with_a_target_column(tmp_path):
    rng = random.Random(9)
    lines = ["a,b,label"]
    for _ in range(300):
        a, b = rng.gauss(0, 1), rng.gauss(0, 1)
        lines.append(f"{a:.4f},{b:.4f},{2 * a + b:.4f}")
    data = tmp_path / "events.csv"
    data.write_text("\n".join(lines) + "\n")
    cfg = tmp_path / "rg.toml"
    cfg.write_text('[model]\npreset = "linear_regression"\n')
    out = tmp_path / "report.json"

    result = CliRunner().invoke(
        main, ["backtest", str(data), "--config", str(cfg), "--report", str(out), "--target", "label"]
    )

    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["metric"]["name"] == "mae"
    assert report["labeled"] == report["events"] == 300


def test_cli_backtest_with_a_bad_config_exits_2_naming_key_and_file(tmp_path, events):
    data, cfg = write_inputs(tmp_path, events[:10], "[snapshots]\nevery_events = 0\n")
    out = tmp_path / "report.json"

    result = CliRunner().invoke(main, ["backtest", str(data), "--config", str(cfg), "--report", str(out)])

    assert result.exit_code == 2
    assert "every_events" in result.output and str(cfg) in result.output
    assert not out.exists()


def taken_in_quarantine(directory, snapshot: str, rollback: dict, end: dict) -> bool:
    """Was `snapshot` taken in the quarantine that `rollback` began and decision `end` ended? Its
    live model is the one the rollback restored, as caught up, frozen there."""
    meta = read_meta_unverified(Path(directory) / f"{snapshot}{SUFFIX}")
    return meta.mode == "quarantine" and rollback["at"] < meta.events <= end["at"] + 1


def test_a_harmless_shift_of_an_unused_feature_is_accepted_and_learning_goes_on(tmp_path):
    rng = random.Random(8)
    events = []
    for i in range(6000):
        x = {"a": rng.gauss(0, 1), "b": rng.uniform(-1, 1), "c": rng.gauss(0, 1) * (3 if i >= 3000 else 1)}
        events.append(orjson.dumps({"id": f"h{i}", "x": x, "y": x["a"] - x["b"] > 0}))
    result = backtest(events, config(model={"preset": "logistic_regression"}, snapshots={"every_events": 500}),
                      window=500, snapshot_dir=tmp_path)

    rollback, accepted = result["decisions"]
    assert rollback["action"] == "rollback" and rollback["evidence"]["alarm"]["detector"] == "data:c"
    assert accepted["target"] == "learning" and "the inputs moved but" in accepted["reason"]
    # the candidate goes on; the restored model is parked, as caught up
    assert accepted["action"] == "promote" and len(accepted["park"]) == 1
    assert taken_in_quarantine(tmp_path, accepted["park"][0], rollback, accepted)
    assert [w["mode"] for w in result["windows"]][-2:] == ["learning", "learning"]
    assert result["windows"][-1]["metric"] > 0.95


def c_shifted(n: int, shifted: range) -> list[bytes]:
    """y = a - b + 0.2 c > 0, with c three times as spread in `shifted`: a shift of the inputs
    that does not hurt a linear model."""
    rng = random.Random(8)
    events = []
    for i in range(n):
        x = {"a": rng.gauss(0, 1), "b": rng.uniform(-1, 1), "c": rng.gauss(0, 1) * (3 if i in shifted else 1)}
        events.append(orjson.dumps({"id": f"h{i}", "x": x, "y": x["a"] - x["b"] + 0.2 * x["c"] > 0}))
    return events


def with_and_without_guard(events: list[bytes], shadows: dict | None = None, **guard) -> tuple[dict, bool]:
    """The guarded run's report, and whether its final model predicts exactly as the final model
    of a run without the guard (a different object). `shadows` gets the names of the guarded
    run's shadow models after each event."""
    live, unguarded = {}, {}

    def on_event(index, loop):
        live.update(model=loop.model)
        if shadows is not None:
            shadows[index] = sorted(loop.shadow)

    result = backtest(events, config(model={"preset": "logistic_regression"}, snapshots={"every_events": 500},
                                     guard=guard), window=500, on_event=on_event)
    backtest(events, config(model={"preset": "logistic_regression"}), guard=False, window=500,
             on_event=lambda index, loop: unguarded.update(model=loop.model))
    assert live["model"] is not unguarded["model"]
    probes = [orjson.loads(event)["x"] for event in events[::97]]
    same = [live["model"].predict_proba_one(x) for x in probes] == \
        [unguarded["model"].predict_proba_one(x) for x in probes]  # exactly, not approximately
    return result, same


def test_a_harmless_shift_accepted_leaves_the_model_a_run_without_the_guard_would_have():
    """The candidate learns the events between the onset and the alarm too (the rollback's
    `shadow_catch_up`): promoted, it has learned every event, in order, like a model never
    rolled back."""
    result, same = with_and_without_guard(c_shifted(4000, range(2000, 4000)))

    rollback, accepted = result["decisions"]
    first, end = rollback["shadow_catch_up"]
    assert first <= rollback["evidence"]["onset"] < rollback["at"] == end - 1
    assert rollback["evidence"]["shadows_caught_up"] == {"candidate": end - first, "fresh": end - first}
    assert accepted["action"] == "promote" and accepted["challenger"] == "candidate"
    assert same


def test_the_return_from_a_harmless_shift_rolls_nothing_back_and_learning_goes_on():
    """After the harmless shift of `c` the candidate went on; at the old inputs' return it knows
    them (it went on from the restored model), so it learns on: one rollback in all, and at the
    end the model a run without the guard would have. The model parked at the shift predicts in
    shadow from the return on (the probation after the shift ended before it)."""
    shadows = {}
    result, same = with_and_without_guard(c_shifted(7000, range(2000, 5000)), shadows, probation=1000)

    rollback, accepted, goes_on = result["decisions"]
    assert (rollback["action"], accepted["action"]) == ("rollback", "promote") and rollback["at"] < 3500
    assert (goes_on["action"], goes_on["source"], goes_on["target"]) == ("resume", "learning", "learning")
    assert goes_on["snapshot"] is None and 5000 < goes_on["at"] < 5300
    assert goes_on["evidence"]["alarm"]["detector"] == "data:c" and goes_on["evidence"]["parked"] == accepted["park"][0]
    assert [w["mode"] for w in result["windows"]][-5:] == ["learning"] * 5
    assert shadows[goes_on["at"] - 1] == [] and shadows[goes_on["at"] + 1] == [f"parked:{accepted['park'][0]}"]
    assert same


def noisy_twice(n: int = 9000) -> list[bytes]:
    """y = a > 0, except labels at random in [3000, 4500) and [6000, 7500)."""
    rng = random.Random(5)
    events = []
    for i in range(n):
        x = {"a": rng.gauss(0, 1), "b": rng.gauss(0, 1)}
        noise = 3000 <= i < 4500 or 6000 <= i < 7500
        events.append(orjson.dumps({"id": f"r{i}", "x": x, "y": rng.random() < 0.5 if noise else x["a"] > 0}))
    return events


def test_a_candidate_that_sat_out_a_long_incident_is_parked_in_its_own_snapshot_and_contests_its_return():
    events = noisy_twice()
    challengers: dict[tuple, int] = {}

    def watch(index, loop):
        challengers.setdefault(tuple(loop.guard.challengers), index)

    result = backtest(events, config(model={"preset": "logistic_regression"}, snapshots={"every_events": 500}),
                      window=500, on_event=watch)

    first, over = result["decisions"][:2]
    assert (first["action"], over["action"], over["candidate"]) == ("rollback", "resume", "park")
    parked = over["evidence"]["snapshots"]["parked_candidate"]
    second = result["decisions"][2]
    assert second["action"] == "rollback" and second["snapshot"] != parked  # never a restore point
    assert challengers.get((f"parked:{parked}", "candidate", "fresh")) == second["at"] + 1  # it contests the return


class NoClone(linear_model.LogisticRegression):
    """A model whose `clone` fails, as a factory's home-made model might."""

    def clone(self, *args, **kwargs):
        raise TypeError("this model cannot be cloned")


def test_a_model_that_cannot_be_cloned_gets_no_fresh_challenger_and_the_guard_still_decides():
    shadows = set()
    result = backtest(noisy_twice(6000), config(snapshots={"every_events": 500}), window=500,
                      model=NoClone(), on_event=lambda index, loop: shadows.update(loop.shadow))
    assert [d["action"] for d in result["decisions"]][:2] == ["rollback", "resume"]
    assert "candidate" in shadows and "fresh" not in shadows


def test_on_labeled_gets_the_loss_of_every_labeled_event_the_windows_are_made_of(events):
    losses: dict[int, float] = {}
    report = backtest(events, config(), guard=False, window=500, on_labeled=losses.__setitem__)
    assert len(losses) == report["labeled"] and set(losses.values()) <= {0.0, 1.0}
    for w in report["windows"]:
        inside = [loss for i, loss in losses.items() if w["start"] <= i < w["end"]]
        assert len(inside) == w["labeled"] and w["metric"] == pytest.approx(1 - sum(inside) / len(inside))


def test_labels_flipped_back_after_the_probation_bring_the_parked_model_back_at_the_alarm(tmp_path):
    # The loop's own replay (snapshots on disk, the kept labeled events) decides: no quarantine.
    rng = random.Random(5)
    events = []
    for i in range(15000):
        x = {"a": rng.gauss(0, 1), "b": rng.uniform(-1, 1)}
        flipped = 6000 <= i < 13000  # long enough for the probation after the promotion to end
        events.append(orjson.dumps({"id": f"e{i}", "x": x, "y": (x["a"] - x["b"] > 0) != flipped}))
    report = backtest(events, config(snapshots={"every_events": 500, "keep": 100}), window=1000,
                      snapshot_dir=tmp_path)  # keep: the snapshot brought back is read afterwards
    rollback, promotion, back = report["decisions"]
    assert (rollback["action"], promotion["action"], back["action"]) == ("rollback", "promote", "resume")
    # the restored model as caught up on the events between its restore point and the onset
    assert back["restore"] == promotion["park"][0] and 13000 < back["at"] < 13050
    assert taken_in_quarantine(tmp_path, back["restore"], rollback, promotion)
    assert "predicts the labeled events since the onset" in back["reason"]
    assert back["evidence"]["labels"]["worse"] <= 2 and back["catch_up"][0] >= 12990
    assert report["rollbacks"] == 1


def test_a_model_parked_at_a_recall_while_learning_keeps_its_regimes_last_events_and_comes_back_with_them(
        tmp_path):
    # A, then B (a x100 unit change), then A again, then B again: at A's return the live model of B
    # is parked by its last restore point, caught up on B's events after it; B's return recalls that.
    rng = random.Random(11)
    events = []
    for i in range(10000):
        x = {"a": rng.gauss(0, 1), "b": rng.uniform(-1, 1)}
        y = x["a"] - x["b"] > 0
        if 2000 <= i < 5250 or i >= 8000:
            x["a"] *= 100  # regime B
        events.append(orjson.dumps({"id": f"e{i}", "x": x, "y": y}))
    report = backtest(events, config(snapshots={"every_events": 500, "keep": 100}), window=1000,
                      snapshot_dir=tmp_path)
    recalls = [d for d in report["decisions"] if d["action"] == "resume" and d["source"] == "learning"]
    a_back = next(d for d in recalls if 5250 <= d["at"] < 5400)
    restore_point = read_meta_unverified(tmp_path / f"{a_back['park'][0]}{SUFFIX}")
    assert (restore_point.reason, restore_point.mode) == ("periodic", "learning")
    first, end = a_back["park_catch_up"]
    # B's events from its last restore point to A's return: learned by B's live model when they came
    assert first == restore_point.events < end == a_back["evidence"]["onset"] and end >= 5240
    assert a_back["evidence"]["parked_caught_up"] == end - first
    parked = a_back["evidence"]["snapshots"]["parked"]
    assert read_meta_unverified(tmp_path / f"{parked}{SUFFIX}").reason == "parked"
    b_back = next(d for d in recalls if d["at"] >= 8000)
    assert b_back["restore"] == parked and b_back["at"] < 8100  # B's model as caught up comes back


def test_a_recalled_model_that_no_longer_fits_its_regime_gives_way_to_the_model_it_displaced(tmp_path):
    # Regime A's inputs come back, so A's parked model is recalled, but the labels follow the concept
    # learned meanwhile: the live model the recall displaced learned on in shadow, and goes on.
    rng = random.Random(7)
    events = []
    for i in range(9000):
        x = {"a": rng.gauss(0, 1), "b": rng.uniform(-1, 1)}
        if 2000 <= i < 5000:
            x["a"] *= 100  # regime B: a unit change, and a new concept
        y = x["a"] > 0 if i < 2000 else x["b"] > 0
        events.append(orjson.dumps({"id": f"e{i}", "x": x, "y": y}))
    shadows: dict[int, tuple] = {}
    report = backtest(events, config(snapshots={"every_events": 500, "keep": 100}), window=1000,
                      snapshot_dir=tmp_path, on_event=lambda index, loop: shadows.update({index: tuple(loop.shadow)}))
    rollback, promotion, recall, displaced = report["decisions"]
    assert (rollback["action"], promotion["action"]) == ("rollback", "promote") and promotion["at"] < 2300
    assert (recall["action"], recall["restore"], recall["candidate"]) == ("resume", promotion["park"][0], "displace")
    assert taken_in_quarantine(tmp_path, recall["restore"], rollback, promotion)
    assert 5000 < recall["at"] < 5070 and shadows[recall["at"] + 1] == ("displaced",)
    assert (displaced["action"], displaced["source"], displaced["target"], displaced["challenger"]) == (
        "promote", "learning", "learning", "displaced")
    assert displaced["at"] - recall["at"] < 200 and shadows[displaced["at"] + 1] == ()
    assert report["windows"][-1]["metric"] > 0.95 and report["rollbacks"] == 1


def test_after_an_incident_is_over_the_candidate_learns_on_in_shadow_for_the_probation(tmp_path):
    # Feature c goes missing for 400 events: neither the candidate nor the fresh model beats the
    # restored model, and c's return ends the incident. The candidate, which learned through it,
    # learns on in shadow beside the resumed model for the probation (1,000 labeled events), then goes.
    rng = random.Random(5)
    events = []
    for i in range(6000):
        x = {"a": rng.gauss(0, 1), "b": rng.uniform(-1, 1), "c": rng.gauss(0, 1)}
        y = x["a"] - x["b"] > 0
        if 3000 <= i < 3400:
            del x["c"]
        events.append(orjson.dumps({"id": f"e{i}", "x": x, "y": y}))
    seen: dict[int, tuple] = {}

    def watch(index, loop):
        candidate = loop.shadow.get("candidate")
        seen[index] = (tuple(loop.shadow), candidate and dict(candidate["LogisticRegression"].weights))

    report = backtest(events, config(guard={"probation": 1000}), window=1000, snapshot_dir=tmp_path, on_event=watch)
    rollback, over = report["decisions"]
    assert rollback["evidence"]["alarm"]["kind"] == "schema" and over["reason"].startswith("incident over")
    assert (over["action"], over["candidate"]) == ("resume", "keep") and 3400 < over["at"] < 4000
    shadows, weights = seen[over["at"] + 1]
    assert shadows == ("candidate",)  # the fresh model goes
    assert seen[over["at"] + 500][1] != weights  # it learns
    assert seen[over["at"] + 1100][0] == ()  # not better by the end of its probation: dropped


@pytest.mark.parametrize("persist_events", [100, 0])
def test_a_cluster_of_hard_events_in_a_stationary_stream_rolls_nothing_back_once_the_rise_must_persist(
        persist_events):
    # Hyperplane, seed 2018: a young tree, and the model of its restore point (event 2,500) too, err
    # far more on events 2,621 to 2,699 than before or after (0.177 against at most 0.078, fixed).
    # The alarm's verification confirms the rise; waiting 100 labeled events shows it did not last.
    events = [orjson.dumps(e) for e in generate("stationary", 3000, 2018, base="hyperplane")]
    settings = config(model={"preset": "hoeffding_tree"}, snapshots={"every_events": 500},
                      guard={"persist_events": persist_events})
    report = backtest(events, settings, window=1000)
    (alarm,) = report["alarms"]
    assert (alarm["at"], alarm["onset"]) == (2699, 2621)
    if persist_events:
        assert report["decisions"] == [] and report["rollbacks"] == 0
    else:  # without the wait: a rollback, and a quarantine the learning candidate wins
        rollback, promotion = report["decisions"]
        assert (rollback["at"], rollback["action"], promotion["action"]) == (2699, "rollback", "promote")
        assert rollback["evidence"]["alarm"]["verified"]["drift"]


def test_the_runner_up_of_a_promotion_learns_on_in_shadow_and_takes_over_when_it_proves_better():
    # FriedmanDrift's concept change on a Hoeffding tree regressor: the candidate wins the quarantine
    # first, then the fresh model, free of the old concept's settled leaves, overtakes it.
    events = [orjson.dumps(e) for e in generate("regression_concept_change", 14000, 1, start=12000)]
    settings = config(model={"preset": "hoeffding_tree_regressor"}, snapshots={"every_events": 500})
    shadows: dict[int, tuple] = {}
    report = backtest(events, settings, window=1000,
                      on_event=lambda index, loop: shadows.update({index: tuple(loop.shadow)}))
    plain = backtest(events, settings, window=1000, guard=False)

    rollback, promotion, takeover = report["decisions"]
    parked = f"parked:{promotion['park'][0]}"
    assert (promotion["action"], promotion["challenger"]) == ("promote", "candidate")
    assert shadows[promotion["at"] + 1] == ("fresh", parked)  # the runner-up learns on in shadow
    assert (takeover["action"], takeover["source"], takeover["target"], takeover["challenger"]) == (
        "promote", "learning", "learning", "fresh")
    assert takeover["at"] - promotion["at"] < 1000 and shadows[takeover["at"] + 1] == (parked,)
    # MAE over the last 1,000 events: the fresh tree against the tree no guard touched
    assert report["windows"][-1]["metric"] < 0.8 * plain["windows"][-1]["metric"]


def test_an_operator_who_pauses_a_quarantine_can_still_promote_its_candidate():
    # Paused in quarantine, the candidate waits for the operator (not learning); `promote` makes it
    # live. Before, the pause dropped the loop's shadow models while the guard kept the quarantine,
    # and the promotion failed on a missing candidate with the guard already switched to learning.
    events = [orjson.dumps(e) for e in generate("unit_change", 4000, seed=5, start=1500, end=3500, factor=1000.0)]
    seen: dict = {}

    def operator(index, loop):
        if "pause" not in seen and loop.guard.mode.value == "quarantine":
            seen["candidate"] = loop.shadow["candidate"]
            seen["pause"], seen["paused_at"] = loop.commands.submit("pause"), index
            loop.commands.apply()  # as the runner does between batches; the hook runs on the loop's thread
        elif "pause" in seen and "promote" not in seen and index >= seen["paused_at"] + 1000:
            assert loop.guard.mode.value == "paused" and loop.shadow["candidate"] is seen["candidate"]
            seen["learned"] = loop.counters.learned
            seen["promote"] = loop.commands.submit("promote")
            loop.commands.apply()
            seen["live"], seen["mode"] = loop.model, loop.guard.mode.value
        elif "promote" in seen and "learned_after" not in seen and index >= seen["paused_at"] + 1100:
            seen["learned_after"] = loop.counters.learned

    report = backtest(events, Config.build({"snapshots": {"every_events": 250}}, env={}), on_event=operator)

    assert seen["promote"].result(timeout=1)["action"] == "promote"
    assert seen["live"] is seen["candidate"] and seen["mode"] == "learning"
    assert seen["learned_after"] > seen["learned"]  # learning resumed with the promoted candidate
    assert [d["action"] for d in report["decisions"]][:3] == ["rollback", "pause", "promote"]


def test_a_model_of_a_stuck_sensors_regime_does_not_learn_the_sensors_return():
    # Holdout seed 137's stream: a fresh linear model promoted while x0 was stuck had a scaler with
    # no variance for x0; it learned the sensor's return and diverged (MAE 10,286 over the next
    # 1,000 events, 2.3 without the guard) until the old regime's model was recalled 29 events on.
    # A value outside a feature that was constant in the regime's inputs is not learned.
    events = [orjson.dumps(e) for e in generate("stuck_sensor", 10_000, seed=1163, base="friedman", feature="x0",
                                                 start=7_000, end=8_000)]
    config = Config.build({"model": {"preset": "linear_regression"}, "snapshots": {"every_events": 500}}, env={})

    guarded = {w["start"]: w["metric"] for w in backtest(events, config, window=1000)["windows"]}
    plain = {w["start"]: w["metric"] for w in backtest(events, config, guard=False, window=1000)["windows"]}

    assert guarded[8000] < 1.1 * plain[8000]


@pytest.mark.parametrize("end", [5000, 11_000])
def test_until_a_run_back_from_an_incident_is_asked_about_the_parked_model_of_its_regime_predicts_it(end):
    # Drawn seed 7 (mv, x10 x10000 [10.1k,11.1k) / linear): a fresh model promoted in the incident
    # predicted the 10 events after it, up to the recall, with errors growing from 48 to 9,139 as it
    # learned them: MAE 18.95 over the next 10,000 events against the oracle's 14.57. The model
    # parked at the promotion, of the regime those inputs come from, predicts them instead: in
    # shadow on probation (end 5000), or loaded from its snapshot once the probation is over (end
    # 11,000). The decisions are the same (the live model's own loss is the guard's evidence).
    events = [orjson.dumps(e) for e in generate("unit_change", end + 1000, seed=1, base="mv", feature="x10",
                                                 factor=10_000.0, start=4000, end=end)]
    config = Config.build({"model": {"preset": "linear_regression"}, "snapshots": {"every_events": 500}}, env={})
    losses, published = {}, []

    def keep_predictions(index, loop):
        loop.sink.keep = end <= index < end + 12
        published[:] = loop.sink.predictions

    report = backtest(events, config, window=1000, on_event=keep_predictions,
                      on_labeled=lambda index, loss: losses.__setitem__(index, loss))

    rollback, promotion, recall = report["decisions"]
    assert (rollback["action"], promotion["action"], recall["action"]) == ("rollback", "promote", "resume")
    assert recall["at"] == end + 9 and recall["restore"] == promotion["park"][0]
    assert report["stood_in"] == 10
    served_by = [orjson.loads(p)["model"] for p in published]
    assert served_by[:10] == [recall["restore"]] * 10 and served_by[10] != recall["restore"]
    before = sum(losses[i] for i in range(3500, 4000)) / 500  # about 15
    # Without stand-ins the worst of them was 3,094 (end 5000) and 16,971,527 (end 11,000).
    assert max(losses[i] for i in range(end, end + 10)) < 5 * before
