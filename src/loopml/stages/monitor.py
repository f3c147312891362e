"""Monitor: the champion's world now versus the data it was trained on.

For one monitored day (default: the last validated day) the stage compares
the current window (``monitor.window_days`` up to the day) with a reference
(``monitor.reference_days`` ending at the champion's last training day, the
model version tag ``loopml.data_end``, or the day before the window when
that is earlier) and writes:

* ``<home>/reports/<w>/monitor-YYYY-MM-DD.html``: Evidently's drift report
  (``loopml replay`` writes it only on some days: :func:`judge`,
  :func:`publish`, :func:`add_html`);
* ``<home>/reports/<w>/monitor-YYYY-MM-DD.json``: every number below;
* ``<home>/state/<w>/monitor.json``: the same, which the service's
  ``/metrics`` turns into gauges (``loopml.monitoring.collector``).

What is watched comes from the workload's
:class:`~loopml.sdk.capabilities.Monitor`: its drift columns (judged here,
``monitoring.drift``), data quality, and whatever it measures live from a
:class:`~loopml.sdk.capabilities.MonitorContext` (prediction drift, live
performance, challengers); what it does not measure is listed under
``not_measured``. A workload without a monitor is skipped. The model's age
is the days from its data end to the monitored day (unknown without the
tag). Drift or a live metric ``retrain.max_metric_ratio`` times worse than
the backtest opens an incident and posts one alert (``monitoring.alerts``);
a clean run closes it.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from loopml.core.config import Settings
from loopml.core.errors import StageError
from loopml.core.io import read_table, require_file, write_json
from loopml.models.integrity import load_verified
from loopml.models.registry import CHAMPION, get_alias
from loopml.models.tracking import DATA_END_TAG, setup_mlflow
from loopml.monitoring import alerts
from loopml.monitoring.drift import DriftResult, detect
from loopml.monitoring.inference_log import read_log
from loopml.sdk.capabilities import MonitorContext
from loopml.sdk.workload import get_workload
from loopml.stages.common import StageResult

log = logging.getLogger(__name__)

#: What a workload's ``Monitor.live`` may measure; an absent one is listed
#: under ``not_measured`` in the report.
LIVE_PARTS = ("prediction_drift", "performance")


def report_paths(settings: Settings, workload: str, day: dt.date) -> dict[str, Any]:
    """Where the day's HTML and JSON reports go."""
    folder = settings.home / "reports" / workload
    stem = f"monitor-{day.isoformat()}"
    return {"html": folder / f"{stem}.html", "json": folder / f"{stem}.json"}


def _champion(workload: str) -> tuple[str, dict[str, str]]:
    """The champion's version and its version tags."""
    champion = get_alias(workload, CHAMPION)
    if champion is None:
        raise StageError(
            f"no {workload} champion in the registry yet: run `loopml run -w "
            f"{workload}` (or train, evaluate and promote) first"
        )
    return str(champion.version), dict(champion.tags or {})


def _windows(
    times: pd.Series,
    day: dt.date | None,
    data_end: str | None,
    settings: Settings,
) -> tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp | None]:
    """The monitored day, the reference's end and the champion's data end."""
    last = pd.Timestamp(times.max()).normalize()
    monitored = last if day is None else pd.Timestamp(day)
    if monitored > last:
        raise StageError(
            f"no validated data for {monitored.date()} yet (last: {last.date()})"
        )
    trained_until = pd.Timestamp(data_end).normalize() if data_end else None
    if trained_until is not None and monitored < trained_until:
        raise StageError(
            f"{monitored.date()} is inside the champion's training data (up to "
            f"{trained_until.date()}): monitor a day from {trained_until.date()} on"
        )
    before_window = monitored - pd.Timedelta(days=settings.monitor.window_days)
    if trained_until is None:
        return monitored, before_window, None
    return monitored, min(trained_until, before_window), trained_until


def _context(
    settings: Settings,
    workload: str,
    data: pd.DataFrame,
    windows: tuple[pd.Timestamp, pd.Timestamp],
    version: str,
    tags: dict[str, str],
) -> MonitorContext:
    """What the workload's ``Monitor.live`` may read, loaded only when asked."""
    day, reference_end = windows
    cfg = settings.monitor

    @functools.cache
    def model() -> Any:
        return load_verified(workload, version).unwrap_python_model()

    def logged(days: int) -> pd.DataFrame:
        since = (day - pd.Timedelta(days=days)).date()
        return read_log(settings.home / "inference", workload, since, day.date())

    def judge(
        reference: pd.DataFrame,
        current: pd.DataFrame,
        numerical: list[str],
        categorical: list[str],
    ) -> dict[str, Any]:
        verdict = detect(reference, current, cfg, numerical, categorical, summary=False)
        return verdict.to_dict()

    return MonitorContext(
        settings=settings,
        data=data,
        day=day,
        reference_end=reference_end,
        version=version,
        tags=tags,
        model=model,
        logged=logged,
        detect=judge,
    )


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
            f"Report: {doc['reports'].get('html') or doc['reports']['json']}",
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


def summary_line(doc: dict[str, Any], json_name: str) -> str:
    """One line: the drift share, what drifted and why, and the model's age."""
    drift = doc["drift"]
    reasons = [", ".join(drift["drifted"]) or "no column drifted"]
    prediction = doc.get("prediction_drift") or {}
    if prediction.get("drifted"):
        reasons.append(
            f"predictions drifted ({_number(prediction.get('score'))} >= "
            f"{prediction.get('threshold'):g})"
        )
    age = doc["model_age_days"]
    aged = "model age unknown" if age is None else f"model age {age} d"
    return (
        f"{doc['date']}: drift share {drift['share']:.2f} ({'; '.join(reasons)}), "
        f"{aged} -> {json_name}"
    )


@dataclass
class Judged:
    """One monitored day before anything is written.

    ``doc`` is the report's document (without ``alerts`` yet), ``drift`` the
    verdicts (they render the HTML), ``paths`` where the reports go.
    """

    doc: dict[str, Any]
    drift: DriftResult
    paths: dict[str, Path]
    started: float

    @property
    def drifted(self) -> bool:
        """Whether a column or the predictions drifted (the drift incident)."""
        prediction = self.doc.get("prediction_drift") or {}
        return bool(self.doc["drift"]["drifted"]) or bool(prediction.get("drifted"))


def judge(
    settings: Settings, workload_name: str, day: dt.date | None = None
) -> Judged | None:
    """Measure the champion of a workload on one day; write nothing.

    Returns:
        The day's document and verdicts; ``None`` for a workload without a
        monitor.

    Raises:
        StageError: no champion, no validated data, or ``day`` after the data.
    """
    workload = get_workload(workload_name)  # an unknown name is a ValueError
    capability = workload.monitor()
    if capability is None:
        return None
    started = time.perf_counter()
    path = require_file(
        settings.data_dir(workload_name) / "validated.parquet", "validate"
    )
    data = read_table(path, "validate")
    setup_mlflow(settings)
    version, tags = _champion(workload_name)
    monitored, reference_end, trained_until = _windows(
        data[workload.batch_spec.time_column], day, tags.get(DATA_END_TAG), settings
    )
    log.info(
        "monitor %s on %s: champion v%s (data to %s), reference to %s",
        workload_name,
        monitored.date(),
        version,
        "an unknown day" if trained_until is None else trained_until.date(),
        reference_end.date(),
    )
    cfg = settings.monitor
    reference, current = capability.samples(data, reference_end, monitored, cfg)
    drift = detect(
        reference,
        current,
        cfg,
        list(capability.numerical),
        list(capability.categorical),
    )
    context = _context(
        settings, workload_name, data, (monitored, reference_end), version, tags
    )
    live = capability.live(context)
    paths = report_paths(settings, workload_name, monitored.date())
    doc: dict[str, Any] = {
        "workload": workload_name,
        "date": monitored.date().isoformat(),
        "timestamp": time.time(),
        "model_version": version,
        "model_age_days": None
        if trained_until is None
        else (monitored - trained_until).days,
        "reference": {
            "end": reference_end.date().isoformat(),
            "days": cfg.reference_days,
        },
        "current": {"end": monitored.date().isoformat(), "days": cfg.window_days},
        "thresholds": cfg.model_dump(),
        "drift": drift.to_dict(),
        "quality": capability.quality(data, monitored, cfg.window_days),
        **{part: None for part in LIVE_PARTS},
        **live,
        "not_measured": [part for part in LIVE_PARTS if part not in live],
        "reports": {"json": str(paths["json"])},
    }
    return Judged(doc, drift, paths, started)


def _write_html(judged: Judged) -> None:
    judged.drift.save_html(judged.paths["html"])
    # The HTML first in the document, as before the report went lazy.
    judged.doc["reports"] = {"html": str(judged.paths["html"]), **judged.doc["reports"]}


def publish(
    settings: Settings, workload_name: str, judged: Judged, html: bool = True
) -> StageResult:
    """Write a judged day's reports and state, and open or close incidents.

    Args:
        settings: the active settings.
        workload_name: the monitored workload.
        judged: what :func:`judge` measured.
        html: write the HTML report too (Evidently's, with its figures);
            without it the document's ``reports`` name only the JSON.

    Returns:
        ``ok``, or ``drift`` when the data or the predictions drifted.
    """
    doc = judged.doc
    if html:
        _write_html(judged)  # before the alert that links to it
    doc["alerts"] = open_incidents(settings, workload_name, doc)
    write_json(doc, judged.paths["json"])
    write_json(doc, settings.state_dir(workload_name) / "monitor.json")
    summary = summary_line(doc, judged.paths["json"].name)
    seconds = time.perf_counter() - judged.started
    log.info("monitored %s in %.1fs: %s", workload_name, seconds, summary)
    metrics = {"drift_share": judged.drift.share}
    if doc["model_age_days"] is not None:
        metrics["model_age_days"] = float(doc["model_age_days"])
    if (performance := doc.get("performance")) is not None:
        metrics[f"live_{performance['metric']}"] = float(performance["value"])
    return StageResult(
        "monitor",
        workload_name,
        "drift" if judged.drifted else "ok",
        summary,
        metrics=metrics,
        details={
            "date": doc["date"],
            "reports": doc["reports"],
            "alerts": doc["alerts"],
        },
    )


def add_html(settings: Settings, workload_name: str, judged: Judged) -> None:
    """Write the HTML report of a day published without it, and name it.

    The day's JSON report and ``monitor.json`` are written again with the
    HTML under ``reports`` (nothing else changes; no alert is sent).
    """
    if "html" in judged.doc["reports"]:
        return
    _write_html(judged)
    write_json(judged.doc, judged.paths["json"])
    state = settings.state_dir(workload_name) / "monitor.json"
    if state.is_file():
        current = json.loads(state.read_text(encoding="utf-8"))
        if current.get("date") == judged.doc["date"]:  # not a later day's
            write_json(judged.doc, state)


def run(
    settings: Settings, workload_name: str, day: dt.date | None = None
) -> StageResult:
    """Monitor the champion of a workload on one day; write reports and state.

    Every report is written, the HTML included (``loopml replay`` calls
    :func:`judge` and :func:`publish` to write the HTML only on some days).

    Args:
        settings: the active settings.
        workload_name: a registered workload; without a monitor it is skipped.
        day: the monitored day; default the last validated day.

    Returns:
        ``ok``; ``drift`` when the data or the predictions drifted; ``skipped``
        for a workload without a monitor (nothing to do).

    Raises:
        StageError: no champion, no validated data, or ``day`` after the data
            or inside the champion's training data.
    """
    judged = judge(settings, workload_name, day)
    if judged is None:
        return StageResult(
            "monitor",
            workload_name,
            "skipped",
            f"{workload_name} has no monitor: nothing to do",
        )
    return publish(settings, workload_name, judged)


def run_in_loop(settings: Settings, workload_name: str) -> StageResult:
    """``monitor`` as the last stage of ``loopml run``: skipped when it can't apply.

    Skipped when ``monitor.in_run`` is false (the tests' tiny loops) or when
    the workload has no champion yet (a first model the gate refused).
    """
    if not settings.monitor.in_run:
        return StageResult(
            "monitor", workload_name, "skipped", "monitor.in_run is false"
        )
    if get_workload(workload_name).monitor() is None:
        return run(settings, workload_name)  # skipped: says why
    setup_mlflow(settings)
    if get_alias(workload_name, CHAMPION) is None:
        return StageResult("monitor", workload_name, "skipped", "no champion yet")
    return run(settings, workload_name)
