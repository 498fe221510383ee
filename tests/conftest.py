"""Shared fixtures: one embedded broker for the whole session, and fresh topic names.

Under CI (the ``CI`` variable set) a missing broker binary fails the tests that need it: a skipped
integration suite must never pass for a green build. Elsewhere those tests skip with the reason.
"""

from __future__ import annotations

import os
import re
import uuid

import pytest

from stream.broker import BrokerUnavailable, EmbeddedBroker, resolve_binary


@pytest.fixture(scope="session")
def broker_binary() -> str:
    """The Tansu binary's path; for tests that start brokers of their own."""
    try:
        return resolve_binary()
    except BrokerUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs the embedded broker: {exc}", pytrace=False)
        pytest.skip(f"embedded broker unavailable: {exc}")


@pytest.fixture(scope="session")
def broker(broker_binary):
    """A started `EmbeddedBroker` on a free port, stopped (by pid) when the session ends."""
    embedded = EmbeddedBroker().start()
    try:
        yield embedded
    finally:
        embedded.stop()


@pytest.fixture
def topic_name(request) -> str:
    """A topic name no other test uses: the test's name plus a random suffix."""
    # Kafka allows [a-zA-Z0-9._-] in topic names; parametrised test ids bring brackets and spaces.
    stem = re.sub(r"[^a-zA-Z0-9._-]+", "-", request.node.name)[:80]
    return f"{stem}-{uuid.uuid4().hex[:8]}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI a skipped test is a failed test: a missing binary or service must not pass quietly."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI, which counts as a failure: {report.longrepr}"
