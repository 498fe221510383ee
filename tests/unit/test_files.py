"""Event files: JSONL passes through byte for byte, CSV rows become events; gzip is transparent."""

from __future__ import annotations

import gzip

import orjson
import pytest

from stream.files import count_events, file_format, iter_events


def write(path, text: str):
    data = text.encode()
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


@pytest.mark.parametrize("name", ["events.jsonl", "events.jsonl.gz", "events.ndjson"])
def test_jsonl_lines_pass_through_unparsed(tmp_path, name):
    lines = [b'{"id": "a", "x": {"v": 1}}', b"not json at all", b'{"id":"b","x":{"v":NaN}}', b"[1, 2]"]
    path = write(tmp_path / name, "\n".join(line.decode() for line in lines) + "\n\n   \n")
    assert list(iter_events(path)) == lines
    assert count_events(path) == len(lines)


def test_jsonl_crlf_and_missing_final_newline(tmp_path):
    path = write(tmp_path / "e.jsonl", '{"id": "a"}\r\n{"id": "b"}')
    assert list(iter_events(path)) == [b'{"id": "a"}', b'{"id": "b"}']


def test_csv_with_header(tmp_path):
    path = write(
        tmp_path / "e.csv",
        "order,amount,country,paid\n"
        "o-1,12.5,NL,1\n"
        "o-2,3,DE,0\n"
        'o-3,,"Sao Paulo, BR",yes\n'
        "o-4,7.25,FR,\n",
    )
    decoded = [orjson.loads(raw) for raw in iter_events(path, target="paid", id_column="order")]
    assert decoded == [
        {"id": "o-1", "x": {"amount": 12.5, "country": "NL"}, "y": 1},
        {"id": "o-2", "x": {"amount": 3.0, "country": "DE"}, "y": 0},
        {"id": "o-3", "x": {"country": "Sao Paulo, BR"}, "y": "yes"},
        {"id": "o-4", "x": {"amount": 7.25, "country": "FR"}},
    ]
    assert count_events(path) == 4


def test_csv_numbers_parse_to_float_and_labels_keep_their_kind(tmp_path):
    path = write(tmp_path / "e.csv", "a,b,c,y\n1e3,-0.5,NaN,2.5\ninf,1_000,x,UP\n")
    first, second = (orjson.loads(raw) for raw in iter_events(path, target="y"))
    assert first == {"id": "r-0", "x": {"a": 1000.0, "b": -0.5}, "y": 2.5}
    # Not finite or not plainly a number: text, which the model sees as a category.
    assert second == {"id": "r-1", "x": {"a": "inf", "b": "1_000", "c": "x"}, "y": "UP"}
    assert isinstance(first["x"]["a"], float)


@pytest.mark.parametrize("name", ["e.csv", "e.csv.gz"])
def test_csv_without_header_target_last(tmp_path, name):
    path = write(tmp_path / name, "0.1,5,2\n0.2,6,11\n")
    decoded = [orjson.loads(raw) for raw in iter_events(path, target="last", has_header=False)]
    assert decoded == [
        {"id": "r-0", "x": {"c0": 0.1, "c1": 5.0}, "y": 2},
        {"id": "r-1", "x": {"c0": 0.2, "c1": 6.0}, "y": 11},
    ]
    assert count_events(path, has_header=False) == 2


def test_csv_without_target_gives_unlabeled_events(tmp_path):
    path = write(tmp_path / "e.csv", "a,b\n1,2\n")
    assert [orjson.loads(raw) for raw in iter_events(path)] == [{"id": "r-0", "x": {"a": 1.0, "b": 2.0}}]


def test_csv_header_only_and_empty_file(tmp_path):
    assert list(iter_events(write(tmp_path / "h.csv", "a,b\n"), target="b")) == []
    assert list(iter_events(write(tmp_path / "empty.csv", ""), target="b")) == []
    assert count_events(tmp_path / "h.csv") == 0


@pytest.mark.parametrize(
    "text, options, words",
    [
        ("a,b\n1,2\n", {"target": "label"}, "no target column 'label'; the columns are: a, b"),
        ("a,b\n1,2\n", {"id_column": "key"}, "no id column 'key'"),
        ("a,b\n1,2\n", {"target": "a", "id_column": "a"}, "both the target and the id"),
        ("a,a\n1,2\n", {}, "duplicates: a"),
        ("a,b\n1,2\n3\n", {}, r"e.csv:3: expected 2 columns as in the header, got 1"),
    ],
)
def test_csv_errors_say_what_was_expected(tmp_path, text, options, words):
    path = write(tmp_path / "e.csv", text)
    with pytest.raises(ValueError, match=words):
        list(iter_events(path, **options))


def test_unknown_extension_is_refused(tmp_path):
    with pytest.raises(ValueError, match="expected a file ending in .jsonl"):
        file_format(tmp_path / "events.parquet")
