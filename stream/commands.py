"""Commands from other threads (HTTP handlers) to the loop, applied on the loop's own thread.

>>> commands = Commands()
>>> commands.on("add", lambda a, b: a + b)
>>> future = commands.submit("add", a=1, b=2)
>>> commands.apply()
1
>>> future.result()
3
"""

from __future__ import annotations

import logging
import queue
from concurrent.futures import Future
from typing import Any, Callable

log = logging.getLogger(__name__)


class Commands:
    """A queue of named commands with futures for their results."""

    def __init__(self) -> None:
        self._queue: queue.Queue = queue.Queue()
        self._handlers: dict[str, Callable[..., Any]] = {}
        self.after_each: Callable[[], None] = lambda: None  # e.g. republish the status

    def on(self, name: str, handler: Callable[..., Any]) -> None:
        """Register what a command does; handlers run on the loop's thread, between records."""
        self._handlers[name] = handler

    def submit(self, name: str, **args) -> Future:
        """Queue a command from any thread; the future resolves once the loop has applied it."""
        if name not in self._handlers:
            raise KeyError(f"unknown command {name!r}")
        future: Future = Future()
        self._queue.put((name, args, future))
        return future

    def apply(self) -> int:
        """Apply every queued command; returns how many ran."""
        applied = 0
        while True:
            try:
                name, args, future = self._queue.get_nowait()
            except queue.Empty:
                return applied
            if not future.set_running_or_notify_cancel():
                continue
            applied += 1
            try:
                result = self._handlers[name](**args)
            except Exception as exc:  # the caller gets the error; the loop keeps running
                log.warning("command %s failed: %s", name, exc)
                future.set_exception(exc)
                continue
            # Status first, so that a caller who waited for the command reads its effect next.
            self.after_each()
            future.set_result(result)
