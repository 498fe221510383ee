"""The event codec: raw bytes in, a validated `Event` out, or an `InvalidEvent` that names why.

An event is a JSON object `{"id", "ts", "x", "y"}` (field names configurable). One that carries
`id` and `y` but no `x` is a *label event*: it completes a pending prediction for that id.

>>> decode = Decoder()
>>> e = decode(b'{"id": "o-1", "x": {"amount": 12.5, "country": "NL"}, "y": 1}')
>>> e.id, e.x["amount"], e.y, e.is_label
('o-1', 12.5, 1, False)
>>> decode(b'{"id": "o-1", "y": 0}').is_label
True
>>> try:
...     decode(b'{"x": {"amount": NaN}}')
... except InvalidEvent as err:
...     print(err.reason)
non_finite
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import orjson

# Bounded set: these label the `riverguard_invalid_events_total` metric.
REASONS = (
    "oversize",
    "not_json",
    "not_object",
    "missing_x",
    "missing_id",
    "bad_type",
    "non_finite",
    "unknown_id",
    "model_error",
    "absurd_label",
)


class InvalidEvent(Exception):
    """An event that must not reach the model; `reason` is one of `REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)
class Event:
    """A decoded event. `x is None` marks a label event; `y is None` an unlabeled one."""

    id: str | None
    ts: float | None
    x: dict[str, Any] | None
    y: Any

    @property
    def is_label(self) -> bool:
        return self.x is None


_FEATURE_TYPES = (float, int, str, bool)
_LABEL_TYPES = (float, int, str, bool)


class Decoder:
    """Decodes and validates events; one per loop, configured with field names and a size limit."""

    def __init__(
        self,
        *,
        id_field: str = "id",
        ts_field: str = "ts",
        x_field: str = "x",
        y_field: str = "y",
        max_bytes: int = 65536,
        numeric_label: bool = False,
    ) -> None:
        self.id_field = id_field
        self.ts_field = ts_field
        self.x_field = x_field
        self.y_field = y_field
        self.max_bytes = max_bytes
        self.numeric_label = numeric_label  # a regressor's label must be a number

    @classmethod
    def from_config(cls, events_config, *, numeric_label: bool = False) -> "Decoder":
        return cls(
            numeric_label=numeric_label,
            id_field=events_config.id_field,
            ts_field=events_config.ts_field,
            x_field=events_config.x_field,
            y_field=events_config.y_field,
            max_bytes=events_config.max_bytes,
        )

    def __call__(self, raw: bytes) -> Event:
        if raw is None:
            raise InvalidEvent("not_json", "empty message (tombstone)")
        if len(raw) > self.max_bytes:
            raise InvalidEvent("oversize", f"{len(raw)} bytes, limit {self.max_bytes}")
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            obj = _loads_non_finite(raw, exc)
        if not isinstance(obj, dict):
            raise InvalidEvent("not_object", f"expected a JSON object, got {type(obj).__name__}")

        event_id = obj.get(self.id_field)
        if event_id is not None and not isinstance(event_id, str):
            if isinstance(event_id, int) and not isinstance(event_id, bool):
                event_id = str(event_id)
            else:
                raise InvalidEvent("bad_type", f"{self.id_field!r} must be a string, got {event_id!r}")

        ts = obj.get(self.ts_field)
        if ts is not None:
            if isinstance(ts, bool) or not isinstance(ts, (int, float)):
                raise InvalidEvent("bad_type", f"{self.ts_field!r} must be epoch seconds, got {ts!r}")
            if not math.isfinite(ts):
                raise InvalidEvent("non_finite", f"{self.ts_field!r} is {ts!r}")

        y = obj.get(self.y_field)
        if y is not None:
            if not isinstance(y, _LABEL_TYPES):
                raise InvalidEvent("bad_type", f"{self.y_field!r} must be a number, string or bool, got {y!r}")
            if type(y) is float and not math.isfinite(y):
                raise InvalidEvent("non_finite", f"{self.y_field!r} is {y!r}")
            if self.numeric_label and (isinstance(y, (str, bool))):
                raise InvalidEvent("bad_type", f"{self.y_field!r} must be a number for a regressor, got {y!r}")

        x = obj.get(self.x_field)
        if x is None:
            if y is None:
                raise InvalidEvent("missing_x", f"no {self.x_field!r} and no {self.y_field!r}")
            if event_id is None:
                raise InvalidEvent("missing_id", f"a label event needs {self.id_field!r}")
            return Event(event_id, ts, None, y)
        if not isinstance(x, dict):
            raise InvalidEvent("bad_type", f"{self.x_field!r} must be an object, got {type(x).__name__}")
        for name, value in x.items():
            if type(value) is float:
                if not math.isfinite(value):
                    raise InvalidEvent("non_finite", f"feature {name!r} is {value!r}")
            elif not isinstance(value, _FEATURE_TYPES):
                raise InvalidEvent(
                    "bad_type", f"feature {name!r} must be a number, string or bool, got {value!r}"
                )
        return Event(event_id, ts, x, y)


def _loads_non_finite(raw: bytes, exc: Exception) -> Any:
    """orjson rejects NaN/Infinity; parse them leniently only to report the precise reason."""
    try:
        json.loads(raw, parse_constant=_raise_non_finite, parse_float=_finite_float)
    except _NonFinite as nf:
        raise InvalidEvent("non_finite", f"JSON contains {nf.args[0]}") from None
    except (ValueError, UnicodeDecodeError):
        pass
    raise InvalidEvent("not_json", str(exc)) from None


class _NonFinite(Exception):
    pass


def _raise_non_finite(token: str):
    raise _NonFinite(token)


def _finite_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise _NonFinite(token)
    return value


def encode(obj: dict) -> bytes:
    """Serialise an outgoing message (prediction, dead letter) to JSON bytes."""
    # Class labels may be ints or bools: proba keys become their JSON spelling ("1", "true").
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)
