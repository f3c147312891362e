"""Monitor: the champion's world now versus the data it was trained on.

For one monitored day (default: the last validated day) the stage compares
the current window (``monitor.window_days`` up to the day) with a reference
(``monitor.reference_days`` ending at the champion's last training day, or
the day before the window when that is earlier) and writes:

* ``<home>/reports/<w>/monitor-YYYY-MM-DD.html``: Evidently's drift report;
* ``<home>/reports/<w>/monitor-YYYY-MM-DD.json``: every number below;
* ``<home>/state/<w>/monitor.json``: the same, which the service's
  ``/metrics`` turns into gauges (``loopml.monitoring.collector``).

Numbers: data drift per column and the drifted share (``monitoring.drift``),
prediction drift and live performance (demand), data quality, the model's
age in days. Drift or a live metric ``retrain.max_metric_ratio`` times worse
than the backtest opens an incident and posts one alert
(``monitoring.alerts``); a clean run closes it.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

import pandas as pd
from mlflow import MlflowClient

from loopml.core.config import Settings
from loopml.core.errors import StageError
from loopml.core.io import require_file, write_json
from loopml.models.integrity import load_verified
from loopml.models.registry import CHAMPION, get_alias
from loopml.models.tracking import setup_mlflow
from loopml.monitoring import alerts
from loopml.monitoring.drift import DriftResult, detect
from loopml.monitoring.inference_log import read_log
from loopml.sdk.workload import get_workload
from loopml.stages.common import StageResult

log = logging.getLogger(__name__)

#: The run parameter holding the last day of each workload's training data.
DATA_END_PARAM = {"demand": "origin", "recsys": "last_interaction"}
TIME_COLUMN = {"demand": "date", "recsys": "timestamp"}


def report_paths(settings: Settings, workload: str, day: dt.date) -> dict[str, Any]:
    """Where the day's HTML and JSON reports go."""
    folder = settings.home / "reports" / workload
    stem = f"monitor-{day.isoformat()}"
    return {"html": folder / f"{stem}.html", "json": folder / f"{stem}.json"}


def _champion(workload: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """The champion's version, its run's parameters and its version tags."""
    champion = get_alias(workload, CHAMPION)
    if champion is None:
        raise StageError(
            f"no {workload} champion in the registry yet: run `loopml run -w "
            f"{workload}` (or train, evaluate and promote) first"
        )
    params = (
        MlflowClient().get_run(champion.run_id).data.params if champion.run_id else {}
    )
    return str(champion.version), dict(params), dict(champion.tags or {})


def _windows(
    data: pd.DataFrame,
    workload: str,
    day: dt.date | None,
    data_end: str | None,
    settings: Settings,
) -> tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp]:
    """The monitored day, the reference's end and the champion's data end."""
    last = pd.Timestamp(data[TIME_COLUMN[workload]].max()).normalize()
    monitored = last if day is None else pd.Timestamp(day)
    if monitored > last:
        raise StageError(
            f"no validated data for {monitored.date()} yet (last: {last.date()})"
        )
    trained_until = pd.Timestamp(data_end).normalize() if data_end else monitored
    before_window = monitored - pd.Timedelta(days=settings.monitor.window_days)
    return monitored, min(trained_until, before_window), trained_until


def _logged(settings: Settings, day: pd.Timestamp) -> pd.DataFrame:
    """Logged demand forecasts whose target date is in the current window."""
    cfg = settings.monitor
    # Forecasts for the window may have been made up to a horizon before it.
    from loopml.workloads.demand.config import DemandSettings  # TODO(capability)

    lead = cfg.window_days + DemandSettings.of(settings).horizon
    since = (day - pd.Timedelta(days=lead)).date()
    logged = read_log(settings.home / "inference", "demand", since, day.date())
    if logged.empty or "forecast" not in logged.columns:
        return pd.DataFrame()
    target = pd.to_datetime(logged["date"])
    start = day - pd.Timedelta(days=cfg.window_days)
    return logged[(target > start) & (target <= day)].reset_index(drop=True)


def _of_version(logged: pd.DataFrame, version: str) -> pd.DataFrame:
    """The logged rows one model version answered (all rows of an old log)."""
    if logged.empty or "model_version" not in logged.columns:
        return logged
    mine = logged["model_version"].astype(str) == str(version)
    return logged[mine].reset_index(drop=True)


def _challenger_performance(
    logged: pd.DataFrame,
    champion: str,
    data: pd.DataFrame,
    day: pd.Timestamp,
    cfg: Any,
) -> dict[str, Any]:
    """Live metric of every other version in the log (canary or shadow rows)."""
    from loopml.workloads.demand import monitoring as demand

    if logged.empty or "model_version" not in logged.columns:
        return {}
    result: dict[str, Any] = {}
    for other in sorted(set(logged["model_version"].astype(str)) - {str(champion)}):
        rows = _of_version(logged, other)
        performance = demand.performance(rows, data, day, cfg.window_days)
        if performance is not None:
            roles = rows["source"] if "source" in rows else pd.Series(["online"])
            result[other] = {**performance, "sources": sorted(set(roles.astype(str)))}
    return result


def _demand(
    settings: Settings,
    data: pd.DataFrame,
    version: str,
    tags: dict[str, str],
    day: pd.Timestamp,
    reference_end: pd.Timestamp,
) -> dict[str, Any]:
    """Drift, prediction drift, quality and live WAPE of the demand champion."""

    from loopml.workloads.demand import monitoring as demand

    cfg = settings.monitor
    reference, current = demand.samples(data, reference_end, day, cfg)
    drift = detect(reference, current, cfg, demand.NUMERICAL, demand.CATEGORICAL)
    pyfunc = load_verified("demand", version)
    model: Any = pyfunc.unwrap_python_model()
    everything = _logged(settings, day)
    # The champion's own answers; a challenger's (canary, shadow) are compared.
    logged = _of_version(everything, version)
    # Served forecasts when the service logged some, else the champion's own.
    source = "inference_log" if not logged.empty else "replay"
    current_rows = (
        logged
        if source == "inference_log"
        else demand.one_day_ahead(model, data, day, cfg.window_days)
    )
    reference_rows = demand.one_day_ahead(
        model, data, reference_end, cfg.reference_days
    )
    samples = demand.prediction_samples(
        reference_rows, current_rows, data, reference_end, cfg
    )
    verdict = detect(*samples, cfg, ["forecast_index"], summary=False).to_dict()
    performance = demand.performance(logged, data, day, cfg.window_days)
    if performance is not None:
        performance["source"] = "inference_log"
    else:
        replayed = demand.replayed_forecasts(model, data, day)
        performance = demand.performance(replayed, data, day, cfg.window_days)
        if performance is not None:
            performance["source"] = "champion forecasts from its origin"
    backtest = tags.get(f"metric.{demand.PRIMARY_METRIC}")
    if performance is not None and backtest:
        performance["backtest"] = float(backtest)
        performance["ratio"] = performance["value"] / max(float(backtest), 1e-9)
    return {
        "drift_result": drift,
        "challengers": _challenger_performance(everything, version, data, day, cfg),
        "prediction_drift": {**verdict["columns"]["forecast_index"], "source": source},
        "quality": demand.quality(data, day, cfg.window_days),
        "performance": performance,
        "not_measured": [],
    }


def _recsys(
    settings: Settings,
    data: pd.DataFrame,
    day: pd.Timestamp,
    reference_end: pd.Timestamp,
) -> dict[str, Any]:
    """Drift of the interaction mix and quality of the recsys window."""
    from loopml.workloads.recsys import monitoring as recsys

    cfg = settings.monitor
    reference, current = recsys.samples(data, reference_end, day, cfg)
    drift = detect(reference, current, cfg, recsys.NUMERICAL, recsys.CATEGORICAL)
    return {
        "drift_result": drift,
        "prediction_drift": None,
        "quality": recsys.quality(data, day, cfg.window_days),
        "performance": None,
        "not_measured": ["prediction_drift", "performance"],
    }


def _number(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.3g}"


def open_incidents(settings: Settings, workload: str, doc: dict[str, Any]) -> list[str]:
    """Open (and announce) or close the drift, performance and stale incidents.

    Args:
        settings: alert settings and the retrain policy's metric ratio.
        workload: the monitored workload.
        doc: the monitor document (``drift``, ``prediction_drift``,
            ``performance``, ``date``, ``model_version``, ``reports``).

    Returns:
        The kinds of incident a message was posted for in this call.
    """
    drift = doc["drift"]
    prediction = doc.get("prediction_drift") or {}
    performance = doc.get("performance") or {}
    limit = settings.retrain.max_metric_ratio
    drifted = ", ".join(drift["drifted"]) or "none"
    incidents = {
        "drift": (
            bool(drift["drifted"]) or bool(prediction.get("drifted")),
            f"{drift['share']:.0%} of the judged columns drifted ({drifted}); "
            f"prediction drift {_number(prediction.get('score'))}. "
            f"Report: {doc['reports']['html']}",
        ),
        "performance": (
            limit is not None and float(performance.get("ratio") or 0) >= limit,
            f"live {performance.get('metric')} {_number(performance.get('value'))} "
            f"is {_number(performance.get('ratio'))} x the backtest's. "
            f"Report: {doc['reports']['json']}",
        ),
    }
    max_age = settings.retrain.max_age_days
    age = doc.get("model_age_days")
    incidents["stale"] = (
        max_age is not None and age is not None and int(age) >= max_age,
        f"the champion's data ends {age} days before the monitored day "
        f"(limit retrain.max_age_days = {max_age}); retrain it.",
    )
    posted = []
    for kind, (is_open, text) in incidents.items():
        if not is_open:
            alerts.resolve(settings, workload, kind)
            continue
        title = f"loopml: {kind} on {workload} ({doc['date']}, v{doc['model_version']})"
        if alerts.notify(settings, alerts.Alert(workload, kind, title, text)):
            posted.append(kind)
    return posted


def run(
    settings: Settings, workload_name: str, day: dt.date | None = None
) -> StageResult:
    """Monitor the champion of a workload on one day; write reports and state.

    Args:
        settings: the active settings.
        workload_name: ``demand`` or ``recsys``.
        day: the monitored day; default the last validated day.

    Returns:
        ``ok``, or ``drift`` when the data or the predictions drifted.

    Raises:
        StageError: no champion, no validated data, or ``day`` after the data.
    """
    get_workload(workload_name)  # an unknown name is a ValueError
    started = time.perf_counter()
    path = require_file(
        settings.data_dir(workload_name) / "validated.parquet", "validate"
    )
    data = pd.read_parquet(path)
    setup_mlflow(settings)
    version, params, tags = _champion(workload_name)
    monitored, reference_end, trained_until = _windows(
        data, workload_name, day, params.get(DATA_END_PARAM[workload_name]), settings
    )
    log.info(
        "monitor %s on %s: champion v%s (data to %s), reference to %s",
        workload_name,
        monitored.date(),
        version,
        trained_until.date(),
        reference_end.date(),
    )
    if workload_name == "demand":
        parts = _demand(settings, data, version, tags, monitored, reference_end)
    else:
        parts = _recsys(settings, data, monitored, reference_end)
    drift: DriftResult = parts.pop("drift_result")
    paths = report_paths(settings, workload_name, monitored.date())
    cfg = settings.monitor
    doc: dict[str, Any] = {
        "workload": workload_name,
        "date": monitored.date().isoformat(),
        "timestamp": time.time(),
        "model_version": version,
        "model_age_days": (monitored - trained_until).days,
        "reference": {
            "end": reference_end.date().isoformat(),
            "days": cfg.reference_days,
        },
        "current": {"end": monitored.date().isoformat(), "days": cfg.window_days},
        "thresholds": cfg.model_dump(),
        "drift": drift.to_dict(),
        **parts,
        "reports": {k: str(v) for k, v in paths.items()},
    }
    drift.save_html(paths["html"])  # before the alert that links to it
    doc["alerts"] = open_incidents(settings, workload_name, doc)
    write_json(doc, paths["json"])
    write_json(doc, settings.state_dir(workload_name) / "monitor.json")
    prediction = doc.get("prediction_drift") or {}
    drifted = bool(doc["drift"]["drifted"]) or bool(prediction.get("drifted"))
    summary = (
        f"{monitored.date()}: drift share {drift.share:.2f} "
        f"({', '.join(doc['drift']['drifted']) or 'no column drifted'}), "
        f"model age {doc['model_age_days']} d -> {paths['json'].name}"
    )
    seconds = time.perf_counter() - started
    log.info("monitored %s in %.1fs: %s", workload_name, seconds, summary)
    metrics = {
        "drift_share": drift.share,
        "model_age_days": float(doc["model_age_days"]),
    }
    if (performance := doc.get("performance")) is not None:
        metrics[f"live_{performance['metric']}"] = float(performance["value"])
    return StageResult(
        "monitor",
        workload_name,
        "drift" if drifted else "ok",
        summary,
        metrics=metrics,
        details={
            "date": doc["date"],
            "reports": doc["reports"],
            "alerts": doc["alerts"],
        },
    )


def run_in_loop(settings: Settings, workload_name: str) -> StageResult:
    """``monitor`` as the last stage of ``loopml run``: skipped when it can't apply.

    Skipped when ``monitor.in_run`` is false (the tests' tiny loops) or when
    the workload has no champion yet (a first model the gate refused).
    """
    if not settings.monitor.in_run:
        return StageResult(
            "monitor", workload_name, "skipped", "monitor.in_run is false"
        )
    setup_mlflow(settings)
    if get_alias(workload_name, CHAMPION) is None:
        return StageResult("monitor", workload_name, "skipped", "no champion yet")
    return run(settings, workload_name)
