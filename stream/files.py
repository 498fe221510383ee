"""Event files for ``replay`` and ``backtest``: JSONL or CSV, optionally gzip-compressed.

`iter_events` yields one raw JSON event per line or row, as bytes, exactly what a Kafka message
would carry. JSONL lines pass through untouched, so an invalid line reaches the loop as it is and
takes the dead-letter path there. CSV rows become ``{"id", "x", "y"}`` events:

>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "tiny.csv"
>>> _ = path.write_text("amount,country,label\\n12.5,NL,1\\n,DE,0\\n")
>>> for raw in iter_events(path, target="label"):
...     print(raw.decode())
{"id":"r-0","x":{"amount":12.5,"country":"NL"},"y":1}
{"id":"r-1","x":{"country":"DE"},"y":0}
>>> count_events(path)
2
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import os
from pathlib import Path
from typing import IO, Iterator

import orjson

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
CSV_SUFFIXES = (".csv",)
# Cells that mean "no value": the feature is left out of `x` (a missing feature), as a stream
# would send it; writing NaN would make every such row invalid.
MISSING = frozenset({"", "nan", "na", "n/a", "null", "none", "?"})
LAST = "last"


def file_format(path: str | os.PathLike) -> str:
    """``"jsonl"`` or ``"csv"`` from the file name; a ``.gz`` suffix is looked through.

    >>> file_format("events.jsonl.gz"), file_format("elec2.csv.gz")
    ('jsonl', 'csv')
    """
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[: -len(".gz")]
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    expected = ", ".join(JSONL_SUFFIXES + CSV_SUFFIXES)
    raise ValueError(f"{path}: expected a file ending in {expected} (optionally .gz), got {Path(path).name!r}")


def iter_events(
    path: str | os.PathLike,
    *,
    target: str | None = None,
    id_column: str | None = None,
    has_header: bool = True,
) -> Iterator[bytes]:
    """Yield each event of the file at `path` as JSON bytes, in file order.

    For CSV: `target` names the label column (``"last"`` for the last one; None: no labels),
    `id_column` the id column (default ``"r-<row index>"``, counted from 0 after the header);
    without a header, columns are named ``c0`` .. ``cN``. Other columns go to ``x``: finite numbers
    as floats, other text (``inf`` too) as strings, empty or NaN cells left out. A label is an int,
    a float or a string. JSONL ignores these options.
    """
    if file_format(path) == "jsonl":
        yield from _jsonl_lines(path)
    else:
        yield from _csv_events(path, target=target, id_column=id_column, has_header=has_header)


def count_events(path: str | os.PathLike, *, has_header: bool = True) -> int:
    """How many events `iter_events` will yield, for sizing a progress bar (reads the file once)."""
    if file_format(path) == "jsonl":
        return sum(1 for _ in _jsonl_lines(path))
    with _open_text(path) as f:
        rows = sum(1 for row in csv.reader(f) if row)
    return max(0, rows - 1) if has_header else rows


def _open_binary(path: str | os.PathLike) -> IO[bytes]:
    return gzip.open(path, "rb") if str(path).lower().endswith(".gz") else open(path, "rb")


def _open_text(path: str | os.PathLike) -> IO[str]:
    # newline="" lets the csv module handle line breaks inside quoted cells itself.
    return io.TextIOWrapper(_open_binary(path), encoding="utf-8-sig", newline="")


def _jsonl_lines(path: str | os.PathLike) -> Iterator[bytes]:
    with _open_binary(path) as f:
        for line in f:
            if line.strip():
                yield line.rstrip(b"\r\n")


def _csv_events(path, *, target: str | None, id_column: str | None, has_header: bool) -> Iterator[bytes]:
    with _open_text(path) as f:
        reader = csv.reader(f)
        columns = None
        if has_header:
            header = next(reader, None)
            if header is None:
                return
            columns = [h.strip() for h in header]
            target_at, id_at = _locate(path, columns, target, id_column)
        index = 0
        for row in reader:
            if not row:
                continue
            if columns is None:
                columns = [f"c{i}" for i in range(len(row))]
                target_at, id_at = _locate(path, columns, target, id_column)
            if len(row) != len(columns):
                raise ValueError(
                    f"{path}:{reader.line_num}: expected {len(columns)} columns as in the "
                    f"{'header' if has_header else 'first row'}, got {len(row)}"
                )
            event: dict = {"id": row[id_at] if id_at is not None else f"r-{index}"}
            event["x"] = {
                name: value
                for i, (name, cell) in enumerate(zip(columns, row))
                if i != target_at and i != id_at and (value := _feature(cell)) is not None
            }
            if target_at is not None and (label := _label(row[target_at])) is not None:
                event["y"] = label
            index += 1
            yield orjson.dumps(event)


def _locate(path, columns: list[str], target: str | None, id_column: str | None) -> tuple[int | None, int | None]:
    """Positions of the target and id columns (None where not wanted)."""
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise ValueError(f"{path}: expected distinct column names, got duplicates: {', '.join(duplicated)}")

    def position(name: str | None, role: str) -> int | None:
        if name is None:
            return None
        if name in columns:
            return columns.index(name)
        if name == LAST and role == "target":
            return len(columns) - 1
        raise ValueError(f"{path}: no {role} column {name!r}; the columns are: {', '.join(columns)}")

    target_at, id_at = position(target, "target"), position(id_column, "id")
    if target_at is not None and target_at == id_at:
        raise ValueError(f"{path}: column {columns[target_at]!r} cannot be both the target and the id")
    return target_at, id_at


def _number(cell: str) -> float | None:
    if "_" in cell:  # Python's float() accepts "1_000"; a data file means text by it
        return None
    try:
        value = float(cell)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _feature(cell: str) -> float | str | None:
    """A float where the cell is a finite number, None where it is missing, else the text."""
    text = cell.strip()
    if text.lower() in MISSING:
        return None
    number = _number(text)
    return number if number is not None else text


def _label(cell: str) -> int | float | str | None:
    """Integers stay integers, so that class 1 in a CSV is the same label as 1 in JSONL."""
    text = cell.strip()
    if text.lower() in MISSING:
        return None
    if "_" not in text:
        try:
            return int(text)
        except ValueError:
            pass
    number = _number(text)
    return number if number is not None else text
