"""Helpers for the tests of deploy/: the files, the external tools, and metric names in PromQL.

>>> sorted(metric_names('sum by (job) (rate(riverguard_events_total{outcome="invalid"}[5m]))'))
['riverguard_events_total']
>>> sorted(metric_names('max by (riverguard_guard_state) (riverguard_guard_state{riverguard_guard_state="paused"}) == 1'))
['riverguard_guard_state']
>>> sorted(metric_names('up{job="riverguard_not_a_metric"} == 0'))
[]
>>> grafana_to_promql('rate(x{instance=~"$instance"}[$__rate_interval]) offset $__interval')
'rate(x{instance=~".+"}[1m]) offset 15s'
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
PROMETHEUS_YML = DEPLOY / "prometheus" / "prometheus.yml"
ALERTS_YML = DEPLOY / "prometheus" / "alerts.yml"
ALERTS_TEST_YML = DEPLOY / "prometheus" / "alerts_test.yml"
COMPOSE_YML = DEPLOY / "docker-compose.yml"
DASHBOARD_JSON = DEPLOY / "grafana" / "dashboards" / "riverguard.json"
DATASOURCE_YML = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"

# The Debian package that ships each tool (CI installs them).
PACKAGES = {"promtool": "prometheus", "prometheus": "prometheus", "docker-compose": "docker-compose"}

_NAME = re.compile(r"\briverguard_[a-zA-Z0-9_:]*")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"' + r"|'(?:[^'\\]|\\.)*'")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
# Grafana's variables, replaced by values a plain Prometheus query accepts.
_GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h", "$instance": ".+"}


def tool(name: str) -> str:
    """The path of an external tool; fails under CI (which must have it), skips elsewhere."""
    path = shutil.which(name)
    if path is None:
        hint = f"{name} is not installed: apt-get install -y {PACKAGES.get(name, name)}"
        if os.environ.get("CI"):
            pytest.fail(f"CI needs {hint}", pytrace=False)
        pytest.skip(hint)
    return path


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects, exactly as written (`_total`, `_bucket` included).

    Label names are not metric names even when they look like one (the guard-state enum's label
    is `riverguard_guard_state`): string literals, `{...}` matchers and `by (...)`-style label lists
    are dropped before the names are collected.
    """
    bare = _STRING.sub('""', expr)
    bare = _MATCHERS.sub("{}", bare)
    bare = _GROUPING.sub("", bare)
    return set(_NAME.findall(bare))


def grafana_to_promql(expr: str) -> str:
    for variable, value in _GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def dashboard() -> dict:
    return json.loads(DASHBOARD_JSON.read_text(encoding="utf-8"))


def dashboard_queries(board: dict | None = None) -> list[tuple[str, str]]:
    """(where, expr) of every PromQL query in the dashboard: panel targets, annotations, variables."""
    board = board or dashboard()
    queries = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            queries.append((f"panel {panel['title']!r} {target['refId']}", target["expr"]))
    for annotation in board["annotations"]["list"]:
        if "expr" in annotation:
            queries.append((f"annotation {annotation['name']!r}", annotation["expr"]))
    for variable in board["templating"]["list"]:
        query = variable.get("query")
        text = query.get("query") if isinstance(query, dict) else query
        if text:
            # label_values(metric, label) is Grafana's, not PromQL: its metric is a selector.
            match = re.fullmatch(r"label_values\((.*),\s*\w+\)", text.strip())
            queries.append((f"variable {variable['name']!r}", match.group(1) if match else text))
    return queries


def datasource_uid() -> str:
    """The uid the Grafana provisioning file gives the Prometheus datasource."""
    uids = re.findall(r"^\s*uid:\s*(\S+)\s*$", DATASOURCE_YML.read_text(encoding="utf-8"), re.M)
    assert len(uids) == 1, f"{DATASOURCE_YML}: expected one datasource uid, found {uids}"
    return uids[0].strip("'\"")


def alert_names() -> list[str]:
    return re.findall(r"^\s*-\s*alert:\s*(\w+)\s*$", ALERTS_YML.read_text(encoding="utf-8"), re.M)


def alert_exprs() -> list[str]:
    """The alert expressions, read from alerts.yml without a YAML library: every `expr:` and its
    indented continuation lines (folded `>-` scalars)."""
    exprs, current, indent = [], None, 0
    for line in ALERTS_YML.read_text(encoding="utf-8").splitlines():
        if current is not None:
            stripped = line.strip()
            if stripped and (len(line) - len(line.lstrip())) > indent:
                current.append(stripped)
                continue
            exprs.append(" ".join(current))
            current = None
        if m := re.match(r"^(\s*)expr:\s*(.*)$", line):
            indent = len(m.group(1))
            value = m.group(2).strip()
            current = [] if value in (">-", ">", "|", "|-") else [value]
    if current is not None:
        exprs.append(" ".join(current))
    return exprs


def alert_rule_cases() -> list[tuple[str, bool]]:
    """(alertname, fires) for every evaluation in alerts_test.yml; `exp_alerts: []` means silent.

    A line-level reading of a file we write ourselves (the suite has no YAML parser): each case
    is an `alertname:` line followed by its `exp_alerts:` line.
    """
    cases = []
    name = None
    for line in ALERTS_TEST_YML.read_text(encoding="utf-8").splitlines():
        if m := re.match(r"^\s*alertname:\s*(\w+)\s*$", line):
            name = m.group(1)
        elif m := re.match(r"^\s*exp_alerts:\s*(\[\])?\s*$", line):
            assert name is not None, f"{ALERTS_TEST_YML}: exp_alerts without an alertname: {line!r}"
            cases.append((name, m.group(1) is None))
            name = None
    return cases


def exposed_names(families) -> set[str]:
    """Every series name a scrape offers, from parsed families (`text_string_to_metric_families`).

    A labelled metric with no child yet (drift alarms before the first alarm) exposes only its
    HELP and TYPE lines; the names its samples will have count as exposed.
    """
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
                "summary": ("_sum", "_count", "_created"), "gauge": ("",), "stateset": ("",), "info": ("_info",),
                "unknown": ("",)}
    names = set()
    for family in families:
        names.update(sample.name for sample in family.samples)
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return names
