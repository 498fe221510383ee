"""Snapshots: signed, atomic, with metadata and retention; anything that fails verification is
refused with the file's name and is never unpickled."""

from __future__ import annotations

import os
import pickle
import sys
import time
from pathlib import Path

import pytest

import stream.snapshots as snapshots_module
from stream.errors import SnapshotError, SnapshotRefused
from stream.snapshots import MAGIC, SUFFIX, SnapshotStore, read_meta_unverified

KEY = b"unit-test-key"


@pytest.fixture
def store(tmp_path) -> SnapshotStore:
    return SnapshotStore(tmp_path / "snaps", key=KEY, keep=100)


def write(store: SnapshotStore, state=None, **kwargs):
    kwargs.setdefault("reason", "periodic")
    kwargs.setdefault("events", 0)
    return store.write({"n": 0} if state is None else state, **kwargs)


class Marker:
    """A pickle payload that, if ever unpickled, creates a directory: proof of unpickling."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (str(self.path),))


class Gone:
    """A class that disappears before loading, as after an incompatible upgrade."""


# -- round trip and metadata -------------------------------------------------------------------


def test_write_then_load_returns_the_same_state(store):
    state = {"model": {"w": [0.5, -1.25]}, "offsets": {("events", 0): 42}, "counters": (1, 2, 3)}

    meta = write(store, state, reason="manual", events=42)
    loaded = store.load(meta.id)

    assert loaded.state == state
    assert loaded.meta == meta
    assert loaded.path == store.dir / f"{meta.id}{SUFFIX}"


def test_metadata_records_lineage_reason_metric_versions_spec_and_offsets(store):
    before = time.time()
    first = write(store, events=10)
    meta = store.write(
        {"n": 1},
        reason="rollback",
        events=2000,
        parent=first.id,
        metric={"name": "accuracy", "value": 0.91, "rolling": 0.88},
        model_spec="hoeffding_tree",
        offsets={"events:0": 1500, "events:1": 500},
        restored_from=first.id,
    )

    loaded = store.load(meta.id).meta
    assert loaded.id == meta.id and loaded.id.startswith("s")
    assert loaded.parent == first.id
    assert before <= loaded.created <= time.time()
    assert loaded.reason == "rollback"
    assert loaded.events == 2000
    assert loaded.metric == {"name": "accuracy", "value": 0.91, "rolling": 0.88}
    assert loaded.model_spec == "hoeffding_tree"
    assert loaded.offsets == {"events:0": 1500, "events:1": 500}
    assert loaded.restored_from == first.id
    assert {"python", "river", "numpy", "riverguard"} <= set(loaded.versions)
    assert loaded.versions["river"]
    assert loaded.size == store.path_of(meta.id).stat().st_size
    assert loaded.seq == first.seq + 1


def test_metadata_is_readable_without_the_key(store, tmp_path):
    meta = write(store, reason="manual", events=7)

    assert read_meta_unverified(store.path_of(meta.id)) == meta
    assert read_meta_unverified(tmp_path / "missing.rgsnap") is None


def test_every_documented_reason_is_accepted_and_others_refused(store):
    for reason in ("periodic", "manual", "pre-rollback", "rollback", "promotion", "shutdown", "candidate"):
        assert store.load(write(store, reason=reason).id).meta.reason == reason
    with pytest.raises(SnapshotError, match="reason"):
        write(store, reason="because")


def test_a_store_needs_a_key(tmp_path):
    with pytest.raises(SnapshotError, match="key"):
        SnapshotStore(tmp_path, key=b"")


def test_ids_increase_and_paths_are_oldest_first(store):
    ids = [write(store, events=i).id for i in range(5)]

    assert [p.name for p in store.paths()] == [f"{i}{SUFFIX}" for i in ids]
    assert store.latest_valid().meta.id == ids[-1]


def test_loading_an_unknown_id_is_a_snapshot_error(store):
    with pytest.raises(SnapshotError, match="s999999-nope"):
        store.load("s999999-nope")


# -- refusal: tampered, truncated, wrong key; never unpickled ----------------------------------


def test_a_changed_byte_anywhere_is_refused_naming_the_file_and_never_unpickled(store, monkeypatch):
    meta = write(store, {"model": "weights", "offsets": {"events:0": 9}}, metric={"name": "mae", "value": 1.0})
    path = store.path_of(meta.id)
    original = path.read_bytes()
    unpickled = []
    monkeypatch.setattr(snapshots_module.pickle, "loads", lambda *a, **k: unpickled.append(a))

    for i in range(len(original)):  # magic, length, metadata, payload and signature alike
        tampered = bytearray(original)
        tampered[i] ^= 0x01
        path.write_bytes(bytes(tampered))
        with pytest.raises(SnapshotRefused) as err:
            store.load(meta.id)
        assert str(path) in str(err.value), f"byte {i}"

    assert unpickled == []


def test_appended_bytes_are_refused(store):
    meta = write(store)
    path = store.path_of(meta.id)
    path.write_bytes(path.read_bytes() + b"\x00")

    with pytest.raises(SnapshotRefused, match=str(path)):
        store.load(meta.id)


def test_a_truncated_file_is_refused(store):
    meta = write(store, {"model": list(range(100))})
    path = store.path_of(meta.id)
    data = path.read_bytes()

    for size in (0, 3, len(MAGIC), len(MAGIC) + 2, len(MAGIC) + 4 + 31, len(data) // 2, len(data) - 32, len(data) - 1):
        path.write_bytes(data[:size])
        with pytest.raises(SnapshotRefused) as err:
            store.load(meta.id)
        assert str(path) in str(err.value), f"truncated to {size} bytes"


def test_a_snapshot_signed_with_another_key_is_refused(store):
    meta = write(store)

    with pytest.raises(SnapshotRefused, match="signature does not verify"):
        SnapshotStore(store.dir, key=b"another key").load(meta.id)


def test_a_malicious_payload_signed_with_the_wrong_key_is_never_unpickled(tmp_path):
    marker = tmp_path / "PWNED"
    attacker = SnapshotStore(tmp_path / "attacker", key=b"not the service key")
    evil = attacker.write({"model": Marker(marker)}, reason="periodic", events=1)
    victim = SnapshotStore(tmp_path / "victim", key=KEY)
    planted = victim.dir / attacker.path_of(evil.id).name
    planted.write_bytes(attacker.path_of(evil.id).read_bytes())
    refused = []

    with pytest.raises(SnapshotRefused, match=str(planted)):
        victim.load(evil.id)
    assert victim.latest_valid(on_refused=refused.append) is None
    assert [problem for _, _, problem in victim.list()] == [str(refused[0])]
    with pytest.raises(SnapshotRefused):
        victim.verify(planted)

    assert not marker.exists()
    # The payload was live: with its own key it does run. So the refusal above is what saved us.
    attacker.load(evil.id)
    assert marker.is_dir()


def test_a_signed_snapshot_that_cannot_be_unpickled_is_refused_not_crashed(store, monkeypatch):
    meta = write(store, {"model": Gone()})
    monkeypatch.delattr(sys.modules[__name__], "Gone")

    with pytest.raises(SnapshotRefused, match="cannot be loaded"):
        store.load(meta.id)


def test_an_old_snapshot_renamed_to_look_newest_is_refused(store):
    old = write(store, {"n": "old"}, events=10, offsets={"events:0": 10})
    write(store, {"n": "new"}, events=20, offsets={"events:0": 20})
    forged = store.dir / f"s000099-ffffff{SUFFIX}"
    forged.write_bytes(store.path_of(old.id).read_bytes())
    refused = []

    latest = store.latest_valid(on_refused=refused.append)

    assert latest.state == {"n": "new"}   # offsets must never go backwards on resume
    assert len(refused) == 1 and str(forged) in str(refused[0])


# -- falling back and listing ------------------------------------------------------------------


def test_latest_valid_falls_back_to_the_previous_snapshot_and_reports_the_refused_one(store):
    good = write(store, {"n": "good"})
    bad = write(store, {"n": "bad"})
    bad_path = store.path_of(bad.id)
    data = bytearray(bad_path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad_path.write_bytes(bytes(data))
    refused = []

    latest = store.latest_valid(on_refused=refused.append)

    assert latest.meta.id == good.id and latest.state == {"n": "good"}
    assert len(refused) == 1
    assert isinstance(refused[0], SnapshotRefused)
    assert str(bad_path) in str(refused[0])


def test_a_resume_passes_over_snapshots_kept_only_for_their_model(store):
    state = write(store, {"n": "state"}, reason="rollback")
    write(store, {"n": "replaced model"}, reason="pre-rollback")
    write(store, {"n": "parked candidate"}, reason="candidate")

    assert store.latest_valid(resumable_only=True).meta.id == state.id
    assert store.latest_valid().state == {"n": "parked candidate"}


def test_latest_valid_of_an_empty_or_all_corrupt_store_is_none(store):
    assert store.latest_valid() is None

    meta = write(store)
    store.path_of(meta.id).write_bytes(b"garbage")

    assert store.latest_valid() is None  # no callback: still no crash


def test_list_marks_refused_files_and_keeps_their_readable_metadata(store):
    ok = write(store, events=1)
    bad = write(store, events=2)
    path = store.path_of(bad.id)
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))   # always a different last byte

    rows = store.list()

    assert [(m.id, problem) for m, _, problem in rows][0] == (ok.id, None)
    meta, bad_path, problem = rows[1]
    assert meta.id == bad.id and meta.events == 2   # metadata still shown for the operator
    assert bad_path == path and str(path) in problem


# -- retention and pins ------------------------------------------------------------------------


def test_retention_keeps_newest_n_pinned_and_protected(tmp_path):
    store = SnapshotStore(tmp_path, key=KEY, keep=2)
    s1 = write(store, events=1)
    store.pin(s1.id)
    s2 = write(store, events=2)
    s3 = write(store, events=3)
    s4 = write(store, events=4, protect={s2.id})   # e.g. the target a rollback may still need

    assert {p.name for p in store.paths()} == {f"{s.id}{SUFFIX}" for s in (s1, s2, s3, s4)}

    s5 = write(store, events=5)

    assert [m.id for m, _, _ in store.list()] == [s1.id, s4.id, s5.id]

    store.pin(s1.id, pinned=False)
    assert store.prune() == [s1.id]
    assert [m.id for m, _, _ in store.list()] == [s4.id, s5.id]


def test_pins_survive_reopening_the_store(tmp_path):
    store = SnapshotStore(tmp_path, key=KEY, keep=1)
    s1 = write(store)
    store.pin(s1.id)

    reopened = SnapshotStore(tmp_path, key=KEY, keep=1)
    write(reopened)
    write(reopened)

    assert reopened.pins() == {s1.id}
    assert reopened.load(s1.id).meta.id == s1.id


def test_pinning_an_unknown_snapshot_is_an_error(store):
    with pytest.raises(SnapshotError, match="s000042-abcdef"):
        store.pin("s000042-abcdef")


# -- atomic writes -----------------------------------------------------------------------------


def test_a_leftover_temp_file_from_a_crashed_write_is_removed_on_open(tmp_path):
    store = SnapshotStore(tmp_path, key=KEY)
    good = write(store, {"n": "good"}, events=5)
    tmp = tmp_path / ".s000002-abc123.tmp"
    tmp.write_bytes(MAGIC + b"\x00\x00\x01")   # half-written

    reopened = SnapshotStore(tmp_path, key=KEY)

    assert not tmp.exists()
    latest = reopened.latest_valid()
    assert latest.meta.id == good.id and latest.state == {"n": "good"}
    assert write(reopened).seq == good.seq + 1


def test_a_write_that_fails_before_the_rename_leaves_the_previous_snapshot(store, monkeypatch):
    good = write(store, {"n": "good"})

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(snapshots_module.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        write(store, {"n": "lost"})
    monkeypatch.undo()

    assert [p.name for p in store.paths()] == [f"{good.id}{SUFFIX}"]
    assert SnapshotStore(store.dir, key=KEY).latest_valid().state == {"n": "good"}
    assert list(store.dir.glob(".*.tmp")) == []   # cleaned up by reopening


def test_the_written_state_is_a_copy_taken_at_write_time(store):
    state = {"values": [1, 2]}
    meta = write(store, state)
    state["values"].append(3)

    assert store.load(meta.id).state == {"values": [1, 2]}


def test_pickle_protocol_round_trips_through_bytes_exactly(store):
    state = {"f": 0.1 + 0.2, "big": 2**80, "nan_free": [1e-308, -0.0]}

    loaded = store.load(write(store, state).id).state

    assert pickle.dumps(loaded) == pickle.dumps(state)


# -- random.Random, pickled compactly ----------------------------------------------------------

import random  # noqa: E402  (appended section)
import struct  # noqa: E402

from stream.models import build_model  # noqa: E402
from stream.snapshots import dumps_state, restore_random  # noqa: E402


def _used_generator(seed: int) -> random.Random:
    rng = random.Random(seed)
    rng.random()
    rng.gauss(0.0, 1.0)  # leaves the second of a Gaussian pair in the state (gauss_next)
    return rng


def test_a_generator_resumes_exactly_where_it_was():
    rng = _used_generator(7)
    restored = pickle.loads(dumps_state(rng))

    assert type(restored) is random.Random
    assert restored.getstate() == rng.getstate()
    assert [restored.gauss(0, 1) for _ in range(5)] == [rng.gauss(0, 1) for _ in range(5)]
    assert [restored.getrandbits(64) for _ in range(700)] == [rng.getrandbits(64) for _ in range(700)]


def test_a_generator_pickles_smaller_than_plain_pickle():
    rng = _used_generator(7)

    assert len(dumps_state(rng)) < 0.75 * len(pickle.dumps(rng, protocol=pickle.HIGHEST_PROTOCOL))


def test_the_compact_form_is_little_endian_words_read_by_restore_random():
    """Old snapshots call `stream.snapshots.restore_random(version, words, gauss_next)`: the name,
    the arguments and the byte order are a file format and must not change."""
    rng = _used_generator(11)
    version, words, gauss_next = rng.getstate()

    restored = restore_random(version, struct.pack(f"<{len(words)}I", *words), gauss_next)

    assert restored.getstate() == rng.getstate()
    payload = dumps_state(rng)
    assert b"stream.snapshots" in payload and b"restore_random" in payload


class Seeded(random.Random):
    """A subclass: pickled by its own (inherited) `__reduce__`, not the compact form."""


def test_shared_generators_stay_shared_and_subclasses_keep_their_own_pickling():
    shared, own = _used_generator(3), Seeded(5)
    a, b, c = pickle.loads(dumps_state([shared, shared, own]))

    assert a is b and a.getstate() == shared.getstate()
    assert type(c) is Seeded and c.getstate() == own.getstate()
    assert b"restore_random" not in dumps_state(own)


def test_a_model_with_generators_continues_identically_after_a_snapshot(store):
    """River's Hoeffding tree holds a `random.Random` in every Gaussian estimator of every leaf."""
    from river import proba

    from stream.scenarios import generate

    events = list(generate("stationary", 1200, seed=4))
    model = build_model(preset="hoeffding_tree")
    for e in events[:800]:
        model.learn_one(e["x"], e["y"])
    gaussian = proba.Gaussian(seed=9)
    for value in (1.0, 2.5, 4.0):
        gaussian.update(value)
    gaussian._rng.random()

    loaded = store.load(write(store, {"model": model, "gaussian": gaussian}).id).state
    copy, gaussian_copy = loaded["model"], loaded["gaussian"]

    assert [gaussian_copy.sample() for _ in range(20)] == [gaussian.sample() for _ in range(20)]
    for e in events[800:]:
        assert copy.predict_proba_one(e["x"]) == model.predict_proba_one(e["x"])
        copy.learn_one(e["x"], e["y"])
        model.learn_one(e["x"], e["y"])
    assert pickle.dumps(copy) == pickle.dumps(pickle.loads(pickle.dumps(model)))
