"""A real Prometheus scrapes a running riverguard; the dashboard's and the alerts' metrics exist.

The service runs in-process on the embedded broker; Prometheus is Debian's `prometheus` binary on
a free port with a temporary config (1 s scrapes, the real deploy/prometheus/alerts.yml) and
storage, stopped by pid at the end.
"""

from __future__ import annotations

import json
import math
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from stream.client import AdminClient
from stream.publish import publish
from stream.scenarios import generate
from stream.service import build_service

from ..deploy_util import (
    ALERTS_YML,
    alert_exprs,
    alert_names,
    dashboard_queries,
    exposed_names,
    grafana_to_promql,
    metric_names,
    tool,
)
from .kafka_util import run_in_thread, service_config, wait_for

pytestmark = pytest.mark.broker

EVENTS = 600
INVALID = [b"{broken", b"[1, 2]", b'{"id": "no-x"}']
TOKEN = "test-token"
WAIT = 30.0  # seconds; every wait below is bounded by it


@pytest.fixture(scope="module")
def running(broker, tmp_path_factory):
    """A service that consumed a stationary stream plus a few invalid events, still running."""
    topic = f"prometheus-{uuid.uuid4().hex[:8]}"
    events = list(generate("stationary", EVENTS, seed=11)) + INVALID
    publish(broker.bootstrap, topic, events, progress=False)
    config = service_config(broker, tmp_path_factory.mktemp("riverguard"), topic, metrics={"window": 100})
    service = build_service(config)
    thread, stop, _ = run_in_thread(service)
    try:
        wait_for(lambda: service.loop.status.get("events") == len(events), WAIT, "every event consumed")
        yield service
    finally:
        stop.set()
        thread.join(30)


@pytest.fixture(scope="module")
def prometheus(running, tmp_path_factory):
    """Base URL of a Prometheus server scraping `running` every second, with the real alert rules."""
    binary = tool("prometheus")
    workdir = tmp_path_factory.mktemp("prometheus")
    target = urllib.parse.urlsplit(running.admin.url).netloc
    config = {  # JSON is YAML
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS_YML)],
        "scrape_configs": [{"job_name": "riverguard", "static_configs": [{"targets": [target]}]}],
    }
    (workdir / "prometheus.yml").write_text(json.dumps(config))
    port = _free_port()
    log = (workdir / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [binary, f"--config.file={workdir / 'prometheus.yml'}", f"--storage.tsdb.path={workdir / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + WAIT
        while not _ready(base):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"prometheus did not become ready:\n{(workdir / 'prometheus.log').read_text()}")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()  # by the pid Popen holds
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()


def test_prometheus_sees_the_events_and_guard_state_the_service_reports(running, prometheus):
    status = AdminClient(running.admin.url, TOKEN).get("/api/status")
    assert status["events"] == EVENTS + len(INVALID) and status["mode"] == "learning"

    def scraped_events():
        result = _query(prometheus, 'sum(riverguard_events_total{job="riverguard"})')
        return result and float(result[0]["value"][1]) == status["events"]

    _until(scraped_events, "Prometheus to scrape every event the service counted")
    invalid = _query(prometheus, 'riverguard_events_total{job="riverguard",outcome="invalid"}')
    assert float(invalid[0]["value"][1]) == len(INVALID)

    learning = _query(prometheus, 'riverguard_guard_state{job="riverguard",riverguard_guard_state="learning"}')
    assert float(learning[0]["value"][1]) == 1
    active = _query(prometheus, 'riverguard_guard_state{job="riverguard"} == 1')
    assert [series["metric"]["riverguard_guard_state"] for series in active] == [status["mode"]]
    up = _query(prometheus, 'up{job="riverguard"}')
    assert [float(series["value"][1]) for series in up] == [1.0]


def test_every_metric_the_dashboard_and_alerts_use_is_exported_by_the_running_service(running):
    used: dict[str, str] = {}
    for where, expr in dashboard_queries():
        for name in metric_names(expr):
            used.setdefault(name, where)
    for expr in alert_exprs():
        for name in metric_names(expr):
            used.setdefault(name, "alerts.yml")
    assert len(used) >= 15, f"the extraction found too few names: {sorted(used)}"

    text = urllib.request.urlopen(f"{running.admin.url}/metrics", timeout=10).read().decode()
    families = list(text_string_to_metric_families(text))
    missing = {name: where for name, where in used.items() if name not in exposed_names(families)}
    assert not missing, f"used by the dashboard or alerts but not exported: {missing}"
    # Declared without a sample is expected only where a stationary stream gives no child yet.
    with_samples = {sample.name for family in families for sample in family.samples}
    assert set(used) - with_samples <= {"riverguard_drift_alarms_total"}


def test_prometheus_loads_the_alert_rules_and_evaluates_each_without_error(running, prometheus):
    def rules():
        groups = _api(prometheus, "/api/v1/rules")["groups"]
        return [rule for group in groups for rule in group["rules"]]

    assert sorted(rule["name"] for rule in rules()) == sorted(alert_names())
    _until(lambda: _query(prometheus, 'count_over_time(up{job="riverguard"}[1m]) >= 3'), "three scrapes")
    _until(lambda: all(rule["health"] == "ok" for rule in rules()), "every rule evaluated without error")
    assert {rule["name"]: rule["health"] for rule in rules() if rule["health"] != "ok"} == {}
    # A healthy service on a clean stream raises nothing, not even a pending alert.
    assert _api(prometheus, "/api/v1/alerts")["alerts"] == []


def test_every_dashboard_query_runs_in_prometheus(running, prometheus):
    # Rates need two scrapes in their window; Prometheus starts scraping about 5 s after it starts.
    _until(lambda: _query(prometheus, 'count_over_time(up{job="riverguard"}[1m]) >= 3'), "three scrapes")
    empty = []
    for where, expr in dashboard_queries():
        promql = grafana_to_promql(expr)
        assert "$" not in promql, f"{where}: a Grafana variable is left in {promql!r}"
        try:
            result = _query(prometheus, promql)
        except AssertionError as exc:
            raise AssertionError(f"{where}: {exc}") from None
        if not result:
            empty.append(where)
    # Filtered to increments (`> 0`) or to rates of a burst that is over: empty is right for these.
    allowed_empty = {"annotation", "'Drift alarms and guard decisions'", "'Invalid events by reason'"}
    unexpected = [where for where in empty if not any(part in where for part in allowed_empty)]
    assert not unexpected, f"these queries return nothing on a running service: {unexpected}"


def test_a_rollback_is_exactly_one_rollback_annotation(running, prometheus):
    """Last in this module: it rolls the service back (and resumes, so the guard is learning again)."""
    before = time.time()
    AdminClient(running.admin.url, TOKEN).post("/api/rollback", {"last_good": True, "resume": True})

    def scraped_rollback():
        result = _query(prometheus, 'riverguard_rollbacks_total{job="riverguard",trigger="manual"}')
        return result and float(result[0]["value"][1]) == 1

    _until(scraped_rollback, "Prometheus to scrape the manual rollback")
    annotation = next(a for a in dashboard_queries() if a[0] == "annotation 'Rollbacks'")[1]
    # Grafana evaluates annotation queries every step with $__interval equal to the step. The range
    # ends a step past now so that the step that covers the scrape of the rollback is evaluated.
    data = _api(prometheus, "/api/v1/query_range", query=grafana_to_promql(annotation),
                start=before - 120, end=time.time() + 15, step="15s")
    points = [(series["metric"], value) for series in data["result"] for value in series["values"]]
    assert len(points) == 1, f"one rollback must give one annotation, got {points}"
    assert points[0][0]["trigger"] == "manual"
    assert AdminClient(running.admin.url, TOKEN).get("/api/status")["mode"] == "learning"


# --- helpers ------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ready(base: str) -> bool:
    try:
        return urllib.request.urlopen(f"{base}/-/ready", timeout=2).status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _api(base: str, path: str, **params) -> dict:
    url = f"{base}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    try:
        body = json.load(urllib.request.urlopen(url, timeout=10))
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{path} {params}: HTTP {exc.code}: {exc.read().decode()}") from None
    assert body["status"] == "success", body
    return body["data"]


def _query(base: str, promql: str) -> list:
    data = _api(base, "/api/v1/query", query=promql)
    result = data["result"]
    if data["resultType"] == "scalar":
        return [] if math.isnan(float(result[1])) else [{"metric": {}, "value": result}]
    return result


def _until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {WAIT:.0f}s waiting for {what}")
        time.sleep(0.2)
