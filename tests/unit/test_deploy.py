"""deploy/: Prometheus config and alert rules (promtool), docker-compose, Grafana, the service's image.

The tools are Debian's `prometheus` (promtool) and `docker-compose` packages. Without them these
tests skip with the install hint, and fail under CI.
"""

from __future__ import annotations

import os
import re
import subprocess
import tomllib

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from stream.config import Config
from stream.metrics import Metrics

from ..deploy_util import (
    ALERTS_TEST_YML,
    ALERTS_YML,
    COMPOSE_YML,
    DEPLOY,
    PROMETHEUS_YML,
    ROOT,
    alert_exprs,
    alert_names,
    alert_rule_cases,
    dashboard,
    dashboard_queries,
    datasource_uid,
    exposed_names,
    metric_names,
    tool,
)

SECRETS = {
    "RIVERGUARD_ADMIN_TOKEN": "test-admin-token",
    "RIVERGUARD_SNAPSHOTS_KEY": "test-snapshots-key",
    "GRAFANA_ADMIN_PASSWORD": "test-grafana-password",
}


def _run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def _ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, f"{' '.join(result.args)} exited {result.returncode}:\n{result.stdout}{result.stderr}"


# --- Prometheus ---------------------------------------------------------------------------------


def test_promtool_checks_the_prometheus_config():
    _ok(_run(tool("promtool"), "check", "config", str(PROMETHEUS_YML)))


def test_promtool_checks_the_alert_rules():
    result = _run(tool("promtool"), "check", "rules", str(ALERTS_YML))
    _ok(result)
    assert f"SUCCESS: {len(alert_names())} rules found" in result.stdout


def test_promtool_rule_unit_tests_pass():
    result = _run(tool("promtool"), "test", "rules", str(ALERTS_TEST_YML))
    _ok(result)
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_case_where_it_fires_and_one_where_it_stays_silent():
    names = alert_names()
    cases = alert_rule_cases()
    assert len(names) >= 8 and len(set(names)) == len(names)
    for name in names:
        assert (name, True) in cases, f"{name}: no rule test where it fires"
        assert (name, False) in cases, f"{name}: no rule test where it stays silent (exp_alerts: [])"
    assert {n for n, _ in cases} <= set(names), "alerts_test.yml tests an alert that alerts.yml lacks"


def test_every_alert_waits_has_a_severity_and_tells_the_on_call_what_to_do():
    text = ALERTS_YML.read_text(encoding="utf-8")
    blocks = re.split(r"^\s*-\s*alert:\s*", text, flags=re.M)[1:]
    assert len(blocks) == len(alert_names())
    for block in blocks:
        name = block.split()[0]
        assert re.search(r"^\s*for:\s*\d+[smh]\s*$", block, re.M), f"{name}: no `for:`"
        assert re.search(r"^\s*severity:\s*(critical|warning)\s*$", block, re.M), f"{name}: severity"
        assert re.search(r"^\s*summary:", block, re.M), f"{name}: no summary"
        assert re.search(r"^\s*description:", block, re.M), f"{name}: no description"
        assert re.search(r"^\s*expr:", block, re.M), f"{name}: no expr"


# --- Metric names: what the dashboard and the rules select is what the service defines -----------


def _defined_names() -> set[str]:
    registry = CollectorRegistry()
    Metrics(registry)
    return exposed_names(text_string_to_metric_families(generate_latest(registry).decode()))


def test_every_metric_the_dashboard_and_alerts_use_is_defined_by_the_service():
    """Fast, without a running service; tests/integration/test_prometheus.py checks a running one."""
    used = {}
    for where, expr in dashboard_queries():
        for name in metric_names(expr):
            used.setdefault(name, where)
    exprs = alert_exprs()
    assert len(exprs) == len(alert_names())
    for expr in exprs:
        for name in metric_names(expr):
            used.setdefault(name, "alerts.yml")
    assert {"riverguard_events_total", "riverguard_guard_state", "riverguard_model_metric"} <= set(used)
    missing = {name: where for name, where in used.items() if name not in _defined_names()}
    assert not missing, f"used but not defined in stream/metrics.py: {missing}"


# --- docker-compose -----------------------------------------------------------------------------


def _compose_env(tmp_path, **secrets) -> tuple[list[str], dict]:
    env = {k: v for k, v in os.environ.items() if k not in SECRETS}
    env.update(secrets)
    empty = tmp_path / "empty.env"  # a developer's deploy/.env must not decide the outcome
    empty.write_text("")
    return [tool("docker-compose"), "--env-file", str(empty), "-f", str(COMPOSE_YML)], env


def test_docker_compose_config_is_valid(tmp_path):
    command, env = _compose_env(tmp_path, **SECRETS)
    _ok(_run(*command, "config", "-q", env=env))
    rendered = _run(*command, "config", env=env)
    _ok(rendered)
    for service in ("kafka:", "kafka-topics:", "riverguard:", "prometheus:", "grafana:"):
        assert f"\n  {service}" in rendered.stdout
    assert "KAFKA_PROCESS_ROLES: broker,controller" in rendered.stdout
    assert "apache/kafka:" in rendered.stdout


def test_docker_compose_refuses_to_start_without_the_secrets(tmp_path):
    for missing in SECRETS:
        command, env = _compose_env(tmp_path, **{k: v for k, v in SECRETS.items() if k != missing})
        result = _run(*command, "config", "-q", env=env)
        assert result.returncode != 0, f"compose accepted a missing {missing}"
        assert f"set {missing}" in result.stderr


def test_no_secret_is_committed_in_deploy():
    compose = COMPOSE_YML.read_text(encoding="utf-8")
    for name in SECRETS:
        assert re.search(rf":\s*\$\{{{name}:\?set {name}\b", compose), f"{name} must come from the environment"
    data = tomllib.loads((DEPLOY / "riverguard.toml").read_text(encoding="utf-8"))
    assert "token" not in data.get("admin", {}) and "key" not in data.get("snapshots", {})


def test_the_compose_config_of_riverguard_loads_with_secrets_from_the_environment():
    env = {k: SECRETS[k] for k in ("RIVERGUARD_ADMIN_TOKEN", "RIVERGUARD_SNAPSHOTS_KEY")}
    config = Config.load(DEPLOY / "riverguard.toml", env=env)
    assert config.admin.token == "test-admin-token"
    assert config.snapshot_key() == b"test-snapshots-key"
    assert (config.admin.host, config.admin.port) == ("0.0.0.0", 8321)
    assert config.kafka.bootstrap_servers == "kafka:9092"
    assert "riverguard:8321" in PROMETHEUS_YML.read_text(encoding="utf-8")


def test_the_image_runs_as_a_user_with_a_healthcheck_on_healthz():
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    instructions = [
        line.split(None, 1) for line in dockerfile.splitlines()
        if line and not line[0].isspace() and not line.startswith("#")
    ]
    keywords = [keyword for keyword, _ in instructions]
    assert instructions[0] == ["FROM", "python:3.11-slim"]
    users = [args.strip() for keyword, args in instructions if keyword == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")
    assert dict(instructions)["EXPOSE"].strip() == "8321"
    assert "HEALTHCHECK" in keywords and "/healthz" in dockerfile and "urllib.request" in dockerfile
    assert '["riverguard", "run", "--config", "/etc/riverguard/riverguard.toml"]' in dockerfile


def test_compose_mounts_the_files_where_their_configs_look_for_them():
    compose = COMPOSE_YML.read_text(encoding="utf-8")
    # prometheus.yml names alerts.yml relative to itself.
    assert "./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in compose
    assert "./prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in compose
    assert re.search(r"^\s*-\s*alerts\.yml\s*$", PROMETHEUS_YML.read_text(encoding="utf-8"), re.M)
    provider = (DEPLOY / "grafana" / "provisioning" / "dashboards" / "riverguard.yml").read_text(encoding="utf-8")
    path = re.search(r"^\s*path:\s*(\S+)\s*$", provider, re.M).group(1)
    assert f"./grafana/dashboards:{path}:ro" in compose
    assert f"GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH: {path}/riverguard.json" in compose
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in compose
    assert "./riverguard.toml:/etc/riverguard/riverguard.toml:ro" in compose


# --- Grafana ------------------------------------------------------------------------------------


def test_the_dashboard_is_valid_and_uses_the_provisioned_datasource():
    board = dashboard()
    uid = datasource_uid()
    assert board["uid"] and board["title"] and 36 <= board["schemaVersion"] <= 41
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    kinds = {panel["type"] for panel in board["panels"]}
    assert {"state-timeline", "timeseries", "stat"} <= kinds
    for panel in board["panels"]:
        where = f"panel {panel['title']!r}"
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}, where
        assert panel["targets"], f"{where}: no query"
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": uid}, where
            assert target["expr"].strip() and target["refId"], where
    for annotation in board["annotations"]["list"]:
        assert annotation["datasource"] == {"type": "prometheus", "uid": uid}, annotation["name"]
    for variable in board["templating"]["list"]:
        assert variable["datasource"] == {"type": "prometheus", "uid": uid}, variable["name"]


def test_the_dashboard_panels_fit_the_grid_without_overlapping():
    cells = {}
    for panel in dashboard()["panels"]:
        g = panel["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, panel["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]


def test_the_dashboard_tells_the_guard_story():
    board = dashboard()
    titles = " | ".join(panel["title"] for panel in board["panels"]).lower()
    for words in ("guard state", "live vs candidate", "throughput", "consumer lag", "latency",
                  "snapshot", "invalid events by reason"):
        assert words in titles, f"no panel about {words!r}"
    annotations = {a["name"]: a["expr"] for a in board["annotations"]["list"]}
    assert "riverguard_drift_alarms_total" in annotations["Drift alarms"]
    assert "riverguard_rollbacks_total" in annotations["Rollbacks"]
    assert 'action="promote"' in annotations["Promotions"]
    timeline = next(p for p in board["panels"] if p["type"] == "state-timeline")
    states = {m["text"] for mapping in timeline["fieldConfig"]["defaults"]["mappings"] for m in mapping["options"].values()}
    assert states == {"learning", "quarantine", "paused"}
