"""The Grafana dashboard only queries metrics the code exports."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, Metric

from loopml.core.config import Settings
from loopml.monitoring.collector import METRIC_NAMES, MonitorCollector
from loopml.monitoring.inference_log import InferenceLog
from loopml.serving.metrics import ServiceMetrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "loopml.json"
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "gauge": ("",),
}
# Label matchers, range selectors, grouping clauses and strings name no metric.
_NOT_NAMES = re.compile(
    r'"[^"]*"|\{[^}]*\}|\[[^\]]*\]|\b(?:by|without|on|ignoring|group_left|group_right)'
    r"\s*\([^)]*\)"
)
_IDENTIFIER = re.compile(r"(?<![\w.])([A-Za-z_:][\w:]*)(\s*\()?")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression (or a ``label_values`` query) reads."""
    expr = re.sub(r"label_values\(\s*([^,)]+)[^)]*\)", r"\1", expr)
    names = set()
    for match in _IDENTIFIER.finditer(_NOT_NAMES.sub(" ", expr)):
        name, call = match.groups()
        if call is None and name.lower() not in _KEYWORDS:
            names.add(name)
    return names


def _queries(dashboard: dict[str, Any]) -> Iterator[str]:
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield target["expr"]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        yield query["query"] if isinstance(query, dict) else query


def _exported(families: list[Metric]) -> set[str]:
    return {
        family.name + suffix for family in families for suffix in SUFFIXES[family.type]
    }


@pytest.fixture()
def exported(tmp_path: Path) -> set[str]:
    """Every sample name the service's /metrics can show."""
    service = ServiceMetrics()
    collector = MonitorCollector(Settings(home=tmp_path), InferenceLog(tmp_path))
    monitor_families = list(collector.collect())
    assert {f.name for f in monitor_families} == set(METRIC_NAMES)
    registry: CollectorRegistry = service.registry
    return _exported(list(registry.collect())) | _exported(monitor_families)


def test_the_parser_finds_metric_names() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le) (rate(a_bucket{route=~"/v1/.*"}[5m])))'
        " / clamp_min(sum(rate(b_total[5m])), 1e-9) + time() - c"
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "c"}
    assert metric_names("label_values(d_info, workload)") == {"d_info"}


def test_every_dashboard_metric_is_exported(exported: set[str]) -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    used = {name for query in _queries(dashboard) for name in metric_names(query)}
    assert len(used) >= 15
    assert used <= exported, f"not exported: {sorted(used - exported)}"


def test_dashboard_has_the_panels_operators_need() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    titles = " | ".join(p["title"].lower() for p in dashboard["panels"])
    for needed in (
        "request rate",
        "latency",
        "error rate",
        "model version",
        "reloads",
        "drift share",
        "per feature",
        "model age",
        "live metric",
    ):
        assert needed in titles
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_provisioning_points_at_the_dashboard_and_prometheus() -> None:
    grafana = DEPLOY / "grafana" / "provisioning"
    sources = yaml.safe_load((grafana / "datasources" / "prometheus.yml").read_text())
    source = sources["datasources"][0]
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert {p["datasource"]["uid"] for p in dashboard["panels"]} == {source["uid"]}
    providers = yaml.safe_load((grafana / "dashboards" / "loopml.yml").read_text())
    assert providers["providers"][0]["type"] == "file"
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    job = scrape["scrape_configs"][0]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["127.0.0.1:8000"]
