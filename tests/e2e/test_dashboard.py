"""The built-in dashboard in a real browser, as the on-call operator uses it.

The service runs on the embedded broker; Debian's chromium (driven by Playwright through
`executable_path`, never a downloaded browser) opens the dashboard. The operator sees the model
learning, sees the guard quarantine it when salaries arrive in cents, rolls back from the
snapshots table with the token, sees the decision in the journal, and resumes learning.
Screenshots of every step go to artifacts/dashboard/ for a person to read.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from stream.client import AdminClient
from stream.publish import publish
from stream.scenarios import generate
from stream.service import build_service

from ..integration.kafka_util import run_in_thread, service_config

pytestmark = pytest.mark.broker

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "dashboard"
TOKEN = "test-token"  # what service_config sets
NORMAL, INCIDENT = 3_000, 600
WAIT_MS = 20_000  # every wait is bounded; the whole test takes about 15 s
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]


def _chromium() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    if path is None:
        message = "the dashboard test drives Debian's chromium, which is missing: apt-get install chromium"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path


@pytest.fixture
def page(tmp_path):
    executable = _chromium()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)  # Playwright's own default (5 s) is short for a loaded CI machine
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a fresh profile: no cookies, no session storage
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1440, "height": 1000},
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(WAIT_MS)
            yield page
        finally:
            context.close()
            expect.set_options(timeout=5_000)


@pytest.fixture
def service(broker, topic_name, tmp_path):
    service = build_service(service_config(broker, tmp_path, topic_name, snapshots={"every_events": 250}))
    thread, stop, _ = run_in_thread(service)
    try:
        yield service
    finally:
        stop.set()
        thread.join(30)


def _events():
    """Normal labeled events, then salary in cents (x100) without labels: the guard must hold."""
    stream = list(generate("unit_change", NORMAL + INCIDENT, seed=5, start=NORMAL, end=NORMAL + INCIDENT, factor=100.0))
    incident = [{k: v for k, v in e.items() if k != "y"} for e in stream[NORMAL:]]
    return stream[:NORMAL], incident


def _shot(page, name: str, full_page: bool = True) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


def test_an_operator_watches_an_incident_rolls_back_and_resumes(broker, topic_name, service, page):
    from playwright.sync_api import expect

    before, incident = _events()
    client = AdminClient(service.admin.url, TOKEN)
    banner = page.get_by_test_id("banner")
    journal = page.get_by_test_id("decision")
    chart = page.get_by_test_id("metric-chart")
    script_errors: list[str] = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    elsewhere: list[str] = []  # no CDN, no fonts from afar: the page talks to this service only
    page.on("request", lambda r: None if r.url.startswith((service.admin.url, "data:")) else elsewhere.append(r.url))

    with ThreadPoolExecutor(1) as pool:
        # Paced, so that the dashboard watches the stream unfold rather than jump to its end.
        feeding = pool.submit(publish, broker.bootstrap, topic_name, before, progress=False, rate=1_000)
        page.goto(service.admin.url + "/")

        # 1. A wrong token is refused with a clear message; the right one shows the service learning.
        page.get_by_test_id("token-input").fill("not-the-token")
        page.get_by_test_id("token-save").click()
        expect(page.get_by_test_id("auth-message")).to_contain_text("401")
        _shot(page, "0-token-refused", full_page=False)
        page.get_by_test_id("token-input").fill(TOKEN)
        page.get_by_test_id("token-save").click()
        expect(page.get_by_test_id("auth-message")).not_to_contain_text("401")
        feeding.result(timeout=WAIT_MS / 1000)
    expect(page.get_by_test_id("events-count")).to_have_attribute("data-value", str(NORMAL))
    expect(banner).to_have_attribute("data-state", "learning")
    expect(page.get_by_test_id("guard-state")).to_have_text("learning")
    expect(chart.locator("path[data-series=live]").first).to_be_attached()
    expect(page.get_by_test_id("throughput")).to_contain_text("ev/s")
    _shot(page, "1-learning")

    # 2. Salaries in cents, no labels: the guard rolls back and holds the model in quarantine.
    publish(broker.bootstrap, topic_name, incident, progress=False, rate=600)
    expect(banner).to_have_attribute("data-state", "quarantine")
    expect(page.get_by_test_id("state-reason")).to_contain_text("data:salary")
    expect(page.get_by_test_id("events-count")).to_have_attribute("data-value", str(NORMAL + INCIDENT))
    expect(journal.first).to_have_attribute("data-action", "rollback")
    expect(journal.first).to_have_attribute("data-trigger", "auto")
    expect(chart.locator("line[data-kind=alarm]").first).to_be_attached()
    expect(chart.locator("line[data-kind=rollback]").first).to_be_attached()
    expect(chart.locator("rect[data-mode=quarantine]").first).to_be_attached()
    expect(page.get_by_test_id("alarm-row").first).to_contain_text("data:salary")
    _shot(page, "2-quarantine")

    # 3. The operator rolls back to an earlier periodic snapshot, taken well before the incident.
    snapshots = client.get("/api/snapshots")["snapshots"]
    target = next(s["id"] for s in snapshots
                  if s["reason"] == "periodic" and s["mode"] == "learning" and s["events"] <= NORMAL - 500)
    row = page.locator(f'[data-testid=snapshot-row][data-snapshot-id="{target}"]')
    row.get_by_test_id("rollback-button").click()
    dialog = page.get_by_test_id("rollback-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(target)
    expect(dialog).to_contain_text("pauses learning")
    expect(dialog.get_by_test_id("rollback-resume")).not_to_be_checked()
    _shot(page, "3-confirm-rollback", full_page=False)  # the modal covers the viewport
    dialog.get_by_test_id("rollback-confirm").click()
    expect(dialog).to_be_hidden()
    expect(banner).to_have_attribute("data-state", "paused")
    expect(journal.first).to_have_attribute("data-action", "rollback")
    expect(journal.first).to_have_attribute("data-trigger", "manual")
    expect(journal.first).to_contain_text(target)
    expect(page.get_by_test_id("action-message")).to_contain_text(f"Rolled back to {target}")
    expect(chart.locator("rect[data-mode=paused]").first).to_be_attached()
    _shot(page, "4-paused-after-rollback")
    status = client.get("/api/status")
    assert status["mode"] == "paused" and status["last_decision"]["restore"] == target
    assert status["events"] == NORMAL + INCIDENT, "a rollback never rewinds the stream"

    # 4. Resume: learning again, with the restored model.
    page.get_by_test_id("resume-button").click()
    expect(banner).to_have_attribute("data-state", "learning")
    expect(journal.first).to_have_attribute("data-action", "resume")
    expect(journal.first).to_have_attribute("data-trigger", "manual")
    expect(page.get_by_test_id("resume-button")).to_be_disabled()
    _shot(page, "5-learning-again")
    assert client.get("/api/status")["mode"] == "learning"
    assert not script_errors, script_errors
    assert not elsewhere, elsewhere
