"""Snapshots: signed, atomically written files that hold everything needed to continue exactly.

File layout (all integers big-endian):

    b"RGSNAP1\\n" | u32 metadata length | metadata (JSON) | state (pickle) | HMAC-SHA256 (32 bytes)

The HMAC covers every byte before it, so a tampered or truncated file is refused before a single
byte of the pickle is read. Metadata is readable without the key (for listings), but only a
verified file is ever unpickled.

>>> import tempfile
>>> store = SnapshotStore(tempfile.mkdtemp(), key=b"k")
>>> meta = store.write({"model": "m"}, reason="manual", events=10)
>>> loaded = store.load(meta.id)
>>> loaded.state, loaded.meta.reason, loaded.meta.events
({'model': 'm'}, 'manual', 10)
"""

from __future__ import annotations

import copyreg
import hashlib
import hmac
import io
import json
import os
import pickle
import platform
import random
import secrets
import struct
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from stream.errors import SnapshotError, SnapshotRefused

MAGIC = b"RGSNAP1\n"
SUFFIX = ".rgsnap"
REASONS = ("periodic", "manual", "pre-rollback", "rollback", "promotion", "shutdown", "initial", "candidate",
           "parked")
# Kept for their model only: the replaced live model ("pre-rollback"), a parked candidate
# ("candidate"), a parked model caught up on its regime's last events ("parked").
NOT_RESUMABLE = ("pre-rollback", "candidate", "parked")
_DIGEST = 32


@dataclass(frozen=True)
class SnapshotMeta:
    """What a snapshot is: readable without unpickling anything."""

    id: str
    seq: int
    parent: str | None
    created: float
    reason: str
    events: int
    metric: dict | None = None
    model_spec: str | None = None
    offsets: dict = field(default_factory=dict)  # "topic:partition" -> next offset
    restored_from: str | None = None
    mode: str | None = None  # the guard's mode when it was taken
    versions: dict = field(default_factory=dict)
    size: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Snapshot:
    meta: SnapshotMeta
    state: Any
    path: Path


def library_versions() -> dict:
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for name in ("riverguard", "river", "numpy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


class SnapshotStore:
    """A directory of snapshot files, newest by sequence number, with retention and pins."""

    def __init__(self, directory: str | Path, key: bytes, keep: int = 20) -> None:
        if not key:
            raise SnapshotError("a snapshot key is required to sign and verify snapshots")
        self.dir = Path(directory)
        self.key = key
        self.keep = keep
        self.dir.mkdir(parents=True, exist_ok=True)
        self._versions = library_versions()
        # A crash mid-write leaves only a temp file behind; the previous snapshot is intact.
        for tmp in self.dir.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)

    # -- writing -----------------------------------------------------------------------------

    def write(
        self,
        state: Any,
        *,
        reason: str,
        events: int,
        parent: str | None = None,
        metric: dict | None = None,
        model_spec: str | None = None,
        offsets: dict | None = None,
        restored_from: str | None = None,
        mode: str | None = None,
        protect: Iterable[str] = (),
    ) -> SnapshotMeta:
        """Write a snapshot durably (temp file, fsync, rename, fsync dir), then apply retention."""
        if reason not in REASONS:
            raise SnapshotError(f"snapshot reason must be one of {REASONS}, got {reason!r}")
        seq = self._next_seq()
        snap_id = f"s{seq:06d}-{secrets.token_hex(3)}"
        payload = dumps_state(state)
        meta = SnapshotMeta(
            id=snap_id,
            seq=seq,
            parent=parent,
            created=time.time(),
            reason=reason,
            events=events,
            metric=metric,
            model_spec=model_spec,
            offsets=dict(offsets or {}),
            restored_from=restored_from,
            mode=mode,
            versions=self._versions,
            size=0,
        )
        meta_bytes = json.dumps(meta.to_dict(), sort_keys=True).encode()
        body = MAGIC + struct.pack(">I", len(meta_bytes)) + meta_bytes + payload
        data = body + hmac.new(self.key, body, hashlib.sha256).digest()
        final = self.dir / f"{snap_id}{SUFFIX}"
        tmp = self.dir / f".{snap_id}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        _fsync_dir(self.dir)
        self.prune(protect={snap_id, *protect})
        return SnapshotMeta(**{**meta.to_dict(), "size": len(data)})

    # -- reading -----------------------------------------------------------------------------

    def paths(self) -> list[Path]:
        """Snapshot files, oldest first."""
        return sorted(self.dir.glob(f"s*{SUFFIX}"), key=_seq_of)

    def path_of(self, snap_id: str) -> Path:
        path = self.dir / f"{snap_id}{SUFFIX}"
        if not path.exists():
            raise SnapshotError(f"no snapshot {snap_id!r} in {self.dir}")
        return path

    def load(self, snap_id: str) -> Snapshot:
        return self.load_path(self.path_of(snap_id))

    def load_path(self, path: Path) -> Snapshot:
        """Verify the signature, then unpickle; a file that fails is refused, never unpickled."""
        meta, payload = self._verified(path)
        try:
            state = pickle.loads(payload)
        except Exception as exc:  # a signed file that will not unpickle: say so, do not crash
            raise SnapshotRefused(f"{path}: signature valid but state cannot be loaded: {exc}") from exc
        return Snapshot(meta, state, path)

    def verify(self, path: Path) -> SnapshotMeta:
        """Check the signature only; raise SnapshotRefused naming the file if it fails."""
        return self._verified(path)[0]

    def latest_valid(
        self,
        on_refused: Callable[[SnapshotRefused], None] | None = None,
        *,
        resumable_only: bool = False,
    ) -> Snapshot | None:
        """The newest snapshot that verifies and loads; refused ones are reported and skipped.

        With `resumable_only`, `NOT_RESUMABLE` snapshots are passed over: they keep a model (the
        replaced one, in the middle of a rollback, or a parked candidate), not a state to continue from.
        """
        for path in reversed(self.paths()):
            if resumable_only:
                meta = read_meta_unverified(path)
                if meta is not None and meta.reason in NOT_RESUMABLE:
                    continue
            try:
                return self.load_path(path)
            except SnapshotRefused as exc:
                if on_refused is not None:
                    on_refused(exc)
        return None

    def list(self) -> list[tuple[SnapshotMeta | None, Path, str | None]]:
        """(metadata, path, problem) for every file, oldest first; problem is None if it verifies."""
        rows = []
        for path in self.paths():
            try:
                rows.append((self.verify(path), path, None))
            except SnapshotRefused as exc:
                rows.append((read_meta_unverified(path), path, str(exc)))
        return rows

    # -- pins and retention ------------------------------------------------------------------

    def pins(self) -> set[str]:
        pin_file = self.dir / "pins.json"
        if not pin_file.exists():
            return set()
        return set(json.loads(pin_file.read_text()))

    def pin(self, snap_id: str, pinned: bool = True) -> None:
        self.path_of(snap_id)
        pins = self.pins()
        pins.add(snap_id) if pinned else pins.discard(snap_id)
        tmp = self.dir / ".pins.json.tmp"
        tmp.write_text(json.dumps(sorted(pins)))
        os.replace(tmp, self.dir / "pins.json")
        _fsync_dir(self.dir)

    def prune(self, protect: Iterable[str] = ()) -> list[str]:
        """Keep the newest `keep`, every pinned snapshot and every id in `protect`; delete the rest."""
        paths = self.paths()
        keep = {_id_of(p) for p in paths[-self.keep:]} | self.pins() | set(protect)
        removed = []
        for path in paths:
            snap_id = _id_of(path)
            if snap_id not in keep:
                path.unlink(missing_ok=True)
                removed.append(snap_id)
        return removed

    # -- internals ---------------------------------------------------------------------------

    def _next_seq(self) -> int:
        paths = self.paths()
        return _seq_of(paths[-1]) + 1 if paths else 1

    def _verified(self, path: Path) -> tuple[SnapshotMeta, bytes]:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise SnapshotRefused(f"{path}: cannot read snapshot: {exc}") from exc
        if not data.startswith(MAGIC):
            raise SnapshotRefused(f"{path}: not a riverguard snapshot (bad magic bytes)")
        if len(data) < len(MAGIC) + 4 + _DIGEST:
            raise SnapshotRefused(f"{path}: truncated snapshot ({len(data)} bytes)")
        body, signature = data[:-_DIGEST], data[-_DIGEST:]
        expected = hmac.new(self.key, body, hashlib.sha256).digest()
        if not hmac.compare_digest(signature, expected):
            raise SnapshotRefused(
                f"{path}: signature does not verify (tampered, truncated, or signed with another key);"
                " refusing to load it"
            )
        (meta_len,) = struct.unpack(">I", body[len(MAGIC):len(MAGIC) + 4])
        start = len(MAGIC) + 4
        meta = _meta_from_json(body[start:start + meta_len], len(data))
        if meta.id != _id_of(Path(path)):
            # A validly signed old snapshot copied under a newer name would rewind the offsets.
            raise SnapshotRefused(f"{path}: holds snapshot {meta.id!r}, not the one its name says; refusing it")
        return meta, body[start + meta_len:]


# -- pickling ----------------------------------------------------------------------------------


def dumps_state(state: Any) -> bytes:
    """`pickle.dumps(state)`, with `random.Random` generators pickled compactly (see `restore_random`)."""
    buffer = io.BytesIO()
    _StatePickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(state)
    return buffer.getvalue()


def restore_random(version: int, words: bytes, gauss_next: float | None) -> random.Random:
    """A `random.Random` in exactly the state `_reduce_random` saved: it continues the same sequence.

    Snapshots name this function (`stream.snapshots.restore_random`) and its arguments: the state
    version, the generator's words as little-endian uint32 (whatever the machine: snapshots move
    between hosts), and the pending Gaussian. Keep the name and the signature while old snapshots
    may still be loaded.
    """
    rng = random.Random(0)  # a cheap seed (no urandom): setstate replaces it
    rng.setstate((version, struct.unpack(f"<{len(words) // 4}I", words), gauss_next))
    return rng


def _reduce_random(rng: random.Random):
    version, state, gauss_next = rng.getstate()
    return restore_random, (version, struct.pack(f"<{len(state)}I", *state), gauss_next)


class _StatePickler(pickle.Pickler):
    """Pickles a Mersenne Twister's 625 words as 2.5 KB of bytes, not 625 pickled ints (3.7 KB).

    River gives every Gaussian estimator its own `random.Random`: after 50k events a Hoeffding tree
    holds 324, nearly all of its snapshot (1.2 MB, 16 ms to pickle, 18 ms to load; this way 0.84 MB,
    6 ms and 9 ms). Exact type only: subclasses keep their own `__reduce__`. Loading needs nothing
    special: `pickle.loads` calls `restore_random`.
    """

    dispatch_table = copyreg.dispatch_table.copy()
    dispatch_table[random.Random] = _reduce_random


def read_meta_unverified(path: Path) -> SnapshotMeta | None:
    """Best-effort metadata of a file that failed verification, for listings only."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(MAGIC) + 4)
            if not head.startswith(MAGIC):
                return None
            (meta_len,) = struct.unpack(">I", head[len(MAGIC):])
            return _meta_from_json(f.read(meta_len), path.stat().st_size)
    except (OSError, ValueError, TypeError, struct.error):
        return None


def _meta_from_json(raw: bytes, size: int) -> SnapshotMeta:
    fields = json.load(io.BytesIO(raw))
    fields["size"] = size
    return SnapshotMeta(**fields)


def _id_of(path: Path) -> str:
    return path.name[: -len(SUFFIX)]


def _seq_of(path: Path) -> int:
    try:
        return int(path.name[1:].split("-", 1)[0])
    except ValueError:
        return -1


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
