"""Prometheus view of the latest monitoring results, read at scrape time.

``loopml monitor`` writes its headline numbers to
``<home>/state/<workload>/monitor.json``; this collector turns them into
gauges each time ``/metrics`` is scraped, so the service shows a new report
without a restart and without a poller. The names are stable: the Grafana
dashboard (``deploy/grafana``) queries them, and a test checks it only uses
names that exist (:data:`METRIC_NAMES`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from loopml.core.plugins import names as workload_names

if TYPE_CHECKING:
    from loopml.core.config import Settings
    from loopml.monitoring.inference_log import InferenceLog

log = logging.getLogger(__name__)

#: Every family this collector can export (counters without ``_total``).
METRIC_NAMES = (
    "loopml_drift_share",
    "loopml_dataset_drift",
    "loopml_feature_drift_score",
    "loopml_feature_drift_detected",
    "loopml_prediction_drift_score",
    "loopml_model_age_days",
    "loopml_live_metric",
    "loopml_live_metric_ratio",
    "loopml_data_rows",
    "loopml_data_missing_share",
    "loopml_monitor_timestamp_seconds",
    "loopml_inference_log_rows",
    "loopml_inference_log_dropped",
)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return None


class MonitorCollector(Collector):
    """Gauges from each workload's ``monitor.json``, counters of the log."""

    def __init__(
        self, settings: Settings, inference: InferenceLog | None = None
    ) -> None:
        """Read from ``settings.state_dir(w)``; count ``inference``'s rows."""
        self.settings = settings
        self.inference = inference

    def _headlines(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for workload in workload_names():
            path = self.settings.state_dir(workload) / "monitor.json"
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                continue
            except (OSError, ValueError):
                log.warning("unreadable %s; skipped in /metrics", path)
                continue
            yield workload, doc

    def collect(self) -> Iterator[Metric]:
        """Build the families now (called at every scrape)."""
        labels = ["workload"]
        gauges = {
            name: GaugeMetricFamily(name, text, labels=labels + extra)
            for name, text, extra in (
                ("loopml_drift_share", "Share of judged columns that drifted.", []),
                ("loopml_dataset_drift", "1 when the dataset drifted.", []),
                (
                    "loopml_feature_drift_score",
                    "Drift score per column (normed Wasserstein or PSI).",
                    ["feature"],
                ),
                (
                    "loopml_feature_drift_detected",
                    "1 when the column's score reached its threshold.",
                    ["feature"],
                ),
                (
                    "loopml_prediction_drift_score",
                    "Drift of the logged predictions (normed Wasserstein).",
                    [],
                ),
                (
                    "loopml_model_age_days",
                    "Days from the champion's last training day to the monitored day.",
                    [],
                ),
                (
                    "loopml_live_metric",
                    "Primary metric of logged predictions once labels arrived.",
                    ["metric"],
                ),
                (
                    "loopml_live_metric_ratio",
                    "How many times worse the live metric is than the "
                    "champion's backtest (1 = as good).",
                    ["metric"],
                ),
                ("loopml_data_rows", "Rows in the monitored window.", []),
                (
                    "loopml_data_missing_share",
                    "Share of missing cells in the monitored window.",
                    [],
                ),
                (
                    "loopml_monitor_timestamp_seconds",
                    "When the monitor last ran (Unix time).",
                    [],
                ),
            )
        }
        for workload, doc in self._headlines():
            self._add(gauges, workload, doc)
        yield from gauges.values()
        if self.inference is not None:
            yield CounterMetricFamily(
                "loopml_inference_log_rows",
                "Predicted rows written to the inference log.",
                value=self.inference.rows_written,
            )
            yield CounterMetricFamily(
                "loopml_inference_log_dropped",
                "Predicted rows dropped because the log queue was full.",
                value=self.inference.dropped,
            )

    @staticmethod
    def _add(gauges: dict[str, GaugeMetricFamily], w: str, doc: dict[str, Any]) -> None:
        drift = doc.get("drift") or {}
        for name, value in (
            ("loopml_drift_share", drift.get("share")),
            ("loopml_dataset_drift", drift.get("dataset_drift")),
            ("loopml_model_age_days", doc.get("model_age_days")),
            ("loopml_monitor_timestamp_seconds", doc.get("timestamp")),
            ("loopml_data_rows", (doc.get("quality") or {}).get("rows")),
            (
                "loopml_data_missing_share",
                (doc.get("quality") or {}).get("missing_share"),
            ),
            (
                "loopml_prediction_drift_score",
                (doc.get("prediction_drift") or {}).get("score"),
            ),
        ):
            if (number := _number(value)) is not None:
                gauges[name].add_metric([w], number)
        for feature, column in (drift.get("columns") or {}).items():
            if (score := _number(column.get("score"))) is not None:
                gauges["loopml_feature_drift_score"].add_metric([w, feature], score)
                detected = float(bool(column.get("drifted")))
                gauges["loopml_feature_drift_detected"].add_metric(
                    [w, feature], detected
                )
        performance = doc.get("performance") or {}
        metric = str(performance.get("metric", ""))
        if (value := _number(performance.get("value"))) is not None:
            gauges["loopml_live_metric"].add_metric([w, metric], value)
        if (ratio := _number(performance.get("ratio"))) is not None:
            gauges["loopml_live_metric_ratio"].add_metric([w, metric], ratio)
