"""What flows in and out of the loop: records from a source, and the sink protocol for outputs."""

from __future__ import annotations

from typing import NamedTuple, Protocol


class Record(NamedTuple):
    """One message from a source; kafka-python's ConsumerRecord has the same fields."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    timestamp: int | None = None


class Sink(Protocol):
    """Where predictions and dead letters go: Kafka topics in the service, memory in a backtest."""

    def prediction(self, key: bytes | None, value: bytes) -> None: ...
    def dead_letter(self, record: Record, reason: str, detail: str) -> None: ...
    def flush(self) -> None: ...


class MemorySink:
    """Keeps what the loop emits in lists: for backtests, tests and doctests."""

    def __init__(self, keep: bool = True) -> None:
        self.keep = keep
        self.predictions: list[bytes] = []
        self.dead_letters: list[tuple[Record, str, str]] = []

    def prediction(self, key, value) -> None:
        if self.keep:
            self.predictions.append(value)

    def dead_letter(self, record, reason, detail) -> None:
        self.dead_letters.append((record, reason, detail))

    def flush(self) -> None:
        pass
