"""The event codec: valid events decode, every invalid one is refused with its precise reason."""

from __future__ import annotations

import orjson
import pytest

from stream.config import EventsConfig
from stream.events import REASONS, Decoder, InvalidEvent, encode


def reason_of(raw: bytes | None, decoder: Decoder | None = None) -> str:
    decoder = decoder or Decoder()
    with pytest.raises(InvalidEvent) as err:
        decoder(raw)
    assert err.value.reason in REASONS
    return err.value.reason


# -- valid events ------------------------------------------------------------------------------


def test_the_design_example_event_decodes():
    event = Decoder()(b'{"id": "o-1842", "ts": 1763712000.25, "x": {"amount": 12.5, "country": "NL"}, "y": 1}')

    assert event.id == "o-1842"
    assert event.ts == 1763712000.25
    assert event.x == {"amount": 12.5, "country": "NL"}
    assert event.y == 1
    assert not event.is_label


def test_id_ts_and_y_are_optional_on_an_event_with_features():
    event = Decoder()(b'{"x": {"a": 1}}')

    assert (event.id, event.ts, event.y) == (None, None, None)
    assert event.x == {"a": 1}
    assert not event.is_label


def test_features_may_be_numbers_strings_and_bools():
    event = Decoder()(b'{"x": {"i": 3, "f": -0.5, "s": "NL", "b": true}}')

    assert event.x == {"i": 3, "f": -0.5, "s": "NL", "b": True}


@pytest.mark.parametrize("y", [0, 1.5, "cat", True, False])
def test_labels_may_be_numbers_strings_and_bools(y):
    event = Decoder()(orjson.dumps({"id": "a", "x": {"f": 1.0}, "y": y}))

    assert event.y == y and type(event.y) is type(y)


def test_a_label_event_carries_id_and_y_without_x():
    event = Decoder()(b'{"id": "o-1", "y": 0, "ts": 5}')

    assert event.is_label
    assert (event.id, event.y, event.x, event.ts) == ("o-1", 0, None, 5)


def test_a_false_or_zero_label_is_still_a_label():
    assert Decoder()(b'{"id": "a", "y": false}').is_label
    assert Decoder()(b'{"id": "a", "y": 0}').y == 0


def test_integer_ids_are_accepted_as_strings():
    assert Decoder()(b'{"id": 1842, "x": {"f": 1}}').id == "1842"
    assert Decoder()(b'{"id": 7, "y": 1}').id == "7"


def test_field_names_are_configurable():
    decode = Decoder(id_field="key", ts_field="time", x_field="features", y_field="label")

    event = decode(b'{"key": "k1", "time": 10, "features": {"a": 2}, "label": "spam"}')
    label = decode(b'{"key": "k1", "label": "ham"}')

    assert (event.id, event.ts, event.x, event.y) == ("k1", 10, {"a": 2}, "spam")
    assert label.is_label and label.y == "ham"
    # The default names mean nothing to this decoder.
    assert reason_of(b'{"id": "k1", "x": {"a": 2}}', decode) == "missing_x"


def test_decoder_from_config_uses_the_configured_names_and_limit():
    decode = Decoder.from_config(EventsConfig(x_field="features", max_bytes=64))

    assert decode(b'{"features": {"a": 1}}').x == {"a": 1}
    assert reason_of(b'{"features": {"a": "' + b"z" * 80 + b'"}}', decode) == "oversize"


def test_an_event_exactly_at_the_size_limit_is_accepted():
    raw = b'{"x": {"a": "' + b"z" * 100 + b'"}}'

    assert Decoder(max_bytes=len(raw))(raw).x["a"] == "z" * 100


# -- invalid events: one test per reason ---------------------------------------------------------


def test_oversize():
    raw = b'{"x": {"a": "' + b"z" * 100 + b'"}}'

    assert reason_of(raw, Decoder(max_bytes=len(raw) - 1)) == "oversize"


@pytest.mark.parametrize("raw", [b"not json", b"", b'{"x": {"a": 1}', b"\xff\xfe", None],
                         ids=["text", "empty", "unclosed", "not-utf8", "tombstone"])
def test_not_json(raw):
    assert reason_of(raw) == "not_json"


@pytest.mark.parametrize("raw", [b"[1, 2]", b"42", b'"x"', b"null", b"true"])
def test_not_object(raw):
    assert reason_of(raw) == "not_object"


@pytest.mark.parametrize("raw", [b"{}", b'{"id": "a"}', b'{"id": "a", "y": null}', b'{"id": "a", "x": null}'])
def test_missing_x(raw):
    assert reason_of(raw) == "missing_x"


def test_missing_id_on_a_label_event():
    assert reason_of(b'{"y": 1}') == "missing_id"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"id": 1.5, "x": {"a": 1}}',
        b'{"id": true, "x": {"a": 1}}',
        b'{"id": ["a"], "x": {"a": 1}}',
        b'{"id": {"k": 1}, "y": 1}',
    ],
)
def test_bad_type_id(raw):
    assert reason_of(raw) == "bad_type"


@pytest.mark.parametrize("ts", [b'"2025-01-01"', b"true", b"[1]", b"{}"])
def test_bad_type_ts(ts):
    assert reason_of(b'{"ts": ' + ts + b', "x": {"a": 1}}') == "bad_type"


@pytest.mark.parametrize("x", [b"[1, 2]", b'"a=1"', b"3", b"true"])
def test_bad_type_x(x):
    assert reason_of(b'{"x": ' + x + b"}") == "bad_type"


@pytest.mark.parametrize("value", [b"null", b"[1]", b'{"nested": 1}'])
def test_bad_type_feature(value):
    assert reason_of(b'{"x": {"ok": 1, "bad": ' + value + b"}}") == "bad_type"


@pytest.mark.parametrize("y", [b"[1]", b'{"class": 1}'])
def test_bad_type_label(y):
    assert reason_of(b'{"id": "a", "x": {"a": 1}, "y": ' + y + b"}") == "bad_type"
    assert reason_of(b'{"id": "a", "y": ' + y + b"}") == "bad_type"


@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity"])
@pytest.mark.parametrize(
    "template",
    [
        b'{"x": {"a": 1, "b": %s}}',
        b'{"id": "a", "x": {"a": 1}, "y": %s}',
        b'{"id": "a", "y": %s}',
        b'{"ts": %s, "x": {"a": 1}}',
    ],
    ids=["feature", "label", "label-event", "ts"],
)
def test_non_finite(template, token):
    with pytest.raises(InvalidEvent) as err:
        Decoder()(template % token)
    assert err.value.reason == "non_finite"
    assert token.decode() in err.value.detail


@pytest.mark.parametrize("number", [b"1e400", b"-1e400"])
def test_overflowing_number_is_non_finite(number):
    assert reason_of(b'{"x": {"a": ' + number + b"}}") == "non_finite"


def test_invalid_event_names_the_field_in_its_detail():
    with pytest.raises(InvalidEvent) as err:
        Decoder()(b'{"x": {"amount": [1]}}')
    assert "amount" in err.value.detail
    assert str(err.value).startswith("bad_type: ")


def test_reasons_are_a_small_fixed_set():
    # They label a Prometheus metric: bounded cardinality.
    assert set(REASONS) == {
            "oversize", "not_json", "not_object", "missing_x", "missing_id", "bad_type", "non_finite", "unknown_id",
            "model_error", "absurd_label",
    }


# -- outgoing messages -------------------------------------------------------------------------


def test_encode_writes_json_with_non_string_class_labels_as_keys():
    raw = encode({"id": "a", "y_pred": True, "proba": {True: 0.75, False: 0.25}})

    assert orjson.loads(raw) == {"id": "a", "y_pred": True, "proba": {"true": 0.75, "false": 0.25}}
