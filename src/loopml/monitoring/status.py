"""What is in production now: champion, its metrics, the last run, drift.

:func:`collect` builds one JSON document (``loopml status --json``);
:func:`render_html` turns it into the status page the service shows at ``/``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import html
import json
import logging
import re
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from loopml.core.config import Settings
from loopml.core.plugins import names as workload_names
from loopml.models.registry import CHALLENGER, CHAMPION, get_alias, read_history

log = logging.getLogger(__name__)


def _from_tags(
    version: str, run_id: str | None, created: int | None, tags: dict[str, str]
) -> dict[str, Any] | None:
    """A version's status entry from its tags alone (None: not evaluated yet
    by a loopml that writes them; the caller asks MLflow instead)."""
    primary = tags.get("loopml.primary_metric")
    if primary is None:
        return None
    metrics = {
        key: float(tags[f"metric.{key}"])
        for key in filter(None, tags.get("loopml.key_metrics", "").split(","))
        if f"metric.{key}" in tags
    }
    value = tags.get(f"metric.{primary}")
    baselines = {
        b: float(tags[f"metric.{b}_{primary}"])
        for b in filter(None, tags.get("loopml.baselines", "").split(","))
        if f"metric.{b}_{primary}" in tags
    }
    return {
        "version": version,
        "run_id": run_id,
        "primary_metric": {
            "name": primary,
            "value": None if value is None else float(value),
        },
        "baselines": baselines,
        "metrics": metrics,
        "data_version": tags.get("loopml.data_version"),
        "git_commit": tags.get("loopml.git_commit"),
        "registered_at": created,
    }


def _registry_rows(
    tracking_uri: str, names: list[str]
) -> dict[tuple[str, str], dict[str, Any] | None] | None:
    """Champion and challenger of ``names`` read straight from MLflow's tables.

    MLflow's client takes seconds to import; its SQLite or PostgreSQL store
    answers this in milliseconds. Returns ``None`` (ask MLflow) for another
    kind of store, an unreadable one, or a version without loopml's tags.
    """
    query = (
        "SELECT a.name, a.alias, v.version, v.run_id, v.creation_time, t.key, t.value"
        " FROM registered_model_aliases a JOIN model_versions v"
        " ON v.name = a.name AND v.version = a.version"
        " LEFT JOIN model_version_tags t"
        " ON t.name = v.name AND t.version = v.version"
    )
    try:
        if tracking_uri.startswith("sqlite:///"):
            import sqlite3

            path = tracking_uri.removeprefix("sqlite:///")
            if not Path(path).is_file():
                return {}
            with contextlib.closing(
                sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            ) as db:
                rows = db.execute(query).fetchall()
        elif tracking_uri.startswith("postgresql"):
            import psycopg2

            dsn = tracking_uri.replace("postgresql+psycopg2://", "postgresql://")
            connection = psycopg2.connect(dsn, connect_timeout=5)
            with contextlib.closing(connection) as db, db.cursor() as cursor:
                cursor.execute(query)
                rows = cursor.fetchall()
        else:
            return None
    except Exception:  # noqa: BLE001 - any trouble: MLflow's client decides
        return None
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for name, alias, version, run_id, created, key, value in rows:
        if name not in names:
            continue
        entry = found.setdefault(
            (name, alias),
            {"version": str(version), "run_id": run_id, "created": created, "tags": {}},
        )
        if key is not None:
            entry["tags"][key] = value
    out: dict[tuple[str, str], dict[str, Any] | None] = {}
    for key, entry in found.items():
        info = _from_tags(
            entry["version"], entry["run_id"], entry["created"], entry["tags"]
        )
        if info is None:
            return None
        out[key] = info
    return out


def _version_info(workload_name: str, alias: str) -> dict[str, Any] | None:
    from mlflow import MlflowClient

    from loopml.sdk.workload import get_workload

    version = get_alias(workload_name, alias)
    if version is None:
        return None
    workload = get_workload(workload_name)
    run = MlflowClient().get_run(version.run_id) if version.run_id else None
    metrics = run.data.metrics if run else {}
    keys = [k for k in workload.key_metrics if k in metrics]
    tags = version.tags or {}
    primary = workload.primary_metric
    baselines = {
        b: metrics[f"{b}_{primary}"]
        for b in workload.baselines
        if f"{b}_{primary}" in metrics
    }
    return {
        "version": str(version.version),
        "run_id": version.run_id,
        "primary_metric": {"name": primary, "value": metrics.get(primary)},
        "baselines": baselines,
        "metrics": {k: metrics[k] for k in keys},
        "data_version": tags.get("loopml.data_version"),
        "git_commit": tags.get("loopml.git_commit"),
        "registered_at": version.creation_timestamp,
    }


#: promotion decisions shown per workload, newest first.
HISTORY_SHOWN = 5
#: the report files the status page links to (``monitor-<date>.html|json``).
REPORT_NAME = re.compile(r"monitor-\d{4}-\d{2}-\d{2}\.(html|json)")


def _read_json(path: Path) -> dict[str, Any] | None:
    """A state record; None when absent or damaged (the report goes on)."""
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        log.warning("%s is not valid JSON (%s): shown as unknown", path, error)
        return None
    return doc if isinstance(doc, dict) else None


def _monitor_info(settings: Settings, name: str) -> dict[str, Any] | None:
    """The headline of the latest ``loopml monitor`` of a workload."""
    doc = _read_json(settings.state_dir(name) / "monitor.json")
    if doc is None:
        return None
    drift = doc.get("drift") or {}
    prediction = doc.get("prediction_drift") or {}
    return {
        "date": doc.get("date"),
        "model_version": doc.get("model_version"),
        "model_age_days": doc.get("model_age_days"),
        "drift_share": drift.get("share"),
        "drifted": list(drift.get("drifted") or []),
        "prediction_drifted": bool(prediction.get("drifted")),
        "performance": doc.get("performance"),
        "alerts": doc.get("alerts") or [],
        "reports": {k: Path(v).name for k, v in (doc.get("reports") or {}).items()},
    }


def collect(settings: Settings, names: list[str] | None = None) -> dict[str, Any]:
    """Build the status document, stable in shape for scripts.

    Args:
        settings: the active settings.
        names: the workloads to show (default: every registered one).

    Returns:
        ``{"profile": ..., "workloads": {name: {"champion": ..., "challenger":
        ..., "last_run": ..., "monitor": ..., "history": [...]}}}``; absent
        things are ``null`` (``history``: the last decisions, newest first).
    """
    names = names if names is not None else workload_names()
    fast = _registry_rows(settings.tracking_uri, names)
    if fast is None:
        from loopml.models.tracking import setup_mlflow

        setup_mlflow(settings)

    def version(name: str, alias: str) -> dict[str, Any] | None:
        if fast is not None:
            return fast.get((name, alias))
        return _version_info(name, alias)

    workloads: dict[str, Any] = {}
    for name in names:
        try:
            decisions = read_history(settings.state_dir(name) / "history.jsonl")
        except ValueError as error:  # a damaged line: the rest of the report
            log.warning("%s", error)
            decisions = []
        workloads[name] = {
            "champion": version(name, CHAMPION),
            "challenger": version(name, CHALLENGER),
            "last_run": _read_json(settings.state_dir(name) / "last_run.json"),
            "monitor": _monitor_info(settings, name),
            "history": [asdict(d) for d in reversed(decisions[-HISTORY_SHOWN:])],
        }
    return {
        "profile": settings.profile,
        "home": str(settings.home),
        "tracking_uri": settings.tracking_uri,
        "workloads": workloads,
    }


def _esc(value: Any) -> str:
    return html.escape("-" if value is None else str(value))


def _age(days: Any) -> str:
    """A model's age; unknown for a version without its data end."""
    return "unknown" if days is None else f"{_esc(days)} days"


def _metrics_text(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k} = {v:.4g}" for k, v in metrics.items()) or "-"


def _champion_html(info: dict[str, Any]) -> str:
    champ, challenger = info["champion"], info["challenger"]
    if champ is None:
        return "<p class=warn>No champion yet: run <code>loopml run</code>.</p>"
    registered = dt.datetime.fromtimestamp(champ["registered_at"] / 1000, dt.UTC)
    rows = [
        ("Champion", f"version {champ['version']}"),
        ("Metrics", _metrics_text(champ["metrics"])),
        ("Data version", (champ["data_version"] or "-")[:12]),
        ("Git commit", (champ["git_commit"] or "-")[:12]),
        ("Registered", registered.isoformat(timespec="minutes")),
    ]
    if challenger is not None and challenger["version"] != champ["version"]:
        rows.append(("Challenger", f"version {challenger['version']}"))
    return _table(["", ""], [[k, v] for k, v in rows], header=False)


def _monitor_html(
    name: str, monitor: dict[str, Any] | None, link: Callable[[str, str], str]
) -> str:
    if monitor is None:
        return f"<p>Not monitored yet: <code>loopml monitor -w {_esc(name)}</code>.</p>"
    drifted = monitor["drifted"] or (
        ["predictions"] if monitor["prediction_drifted"] else []
    )
    verdict = (
        f"<span class=bad>drift in {_esc(', '.join(drifted))}</span>"
        if drifted
        else "<span class=good>no drift</span>"
    )
    share = monitor["drift_share"]
    rows = [
        ["Day", _esc(monitor["date"])],
        ["Drift", f"{verdict} (share {share:.2f})" if share is not None else verdict],
        ["Model age", _age(monitor["model_age_days"])],
    ]
    perf = monitor["performance"] or {}
    if perf.get("value") is not None:
        rows.append(
            [
                f"Live {_esc(perf.get('metric'))}",
                f"{perf['value']:.4g} (backtest {perf.get('backtest') or 0:.4g})",
            ]
        )
    if monitor["alerts"]:
        rows.append(["Alerts", _esc(", ".join(map(str, monitor["alerts"])))])
    reports = " ".join(
        f'<a href="{html.escape(link(name, file))}">{_esc(kind)}</a>'
        for kind, file in sorted(monitor["reports"].items())
    )
    rows.append(["Reports", reports or "-"])
    return _table(["", ""], rows, header=False, escape=False)


def _last_run_html(last: dict[str, Any] | None) -> str:
    if last is None:
        return "<p>No run yet.</p>"
    outcome = (
        "<span class=good>ok</span>" if last["ok"] else "<span class=bad>failed</span>"
    )
    rows = [
        [_esc(s["stage"]), _esc(s["status"]), _esc(s["summary"]), f"{s['seconds']:.1f}"]
        for s in last["stages"]
    ]
    return f"<p>Finished {_esc(last['finished'])}: {outcome}</p>" + _table(
        ["stage", "status", "summary", "seconds"], rows, escape=False
    )


def _history_html(history: list[dict[str, Any]]) -> str:
    if not history:
        return "<p>No promotion decision yet.</p>"
    rows = [
        [d["when"], d["action"], d["from_version"], d["to_version"], d["reason"]]
        for d in history
    ]
    return _table(["when", "action", "from", "to", "reason"], rows)


def _table(
    columns: list[str],
    rows: list[list[Any]],
    *,
    header: bool = True,
    escape: bool = True,
) -> str:
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns) if header else ""
    body = "".join(
        "<tr>" + "".join(f"<td>{_esc(v) if escape else v}</td>" for v in row) + "</tr>"
        for row in rows
    )
    return f"<table>{f'<tr>{head}</tr>' if head else ''}{body}</table>"


STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:70em;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0}"
    "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}"
    "section{border-top:2px solid #444;margin-top:1.5em}"
    ".good{color:#176f2c}.bad{color:#b00020;font-weight:bold}.warn{color:#a15c00}"
)


def render_html(
    doc: dict[str, Any], report_link: Callable[[str, str], str] | None = None
) -> str:
    """The status page: per workload, champion, drift, last run and history.

    Args:
        doc: what :func:`collect` returned.
        report_link: URL of a report file from (workload, file name); default
            the service's ``/reports/<workload>/<file>``.

    Returns:
        A self-contained HTML page (no scripts, every value escaped).
    """
    link = report_link or (lambda name, file: f"/reports/{name}/{file}")
    sections = []
    for name, info in doc["workloads"].items():
        sections.append(
            f"<section id={_esc(name)}><h2>{_esc(name)}</h2>"
            + _champion_html(info)
            + "<h3>Latest monitor</h3>"
            + _monitor_html(name, info.get("monitor"), link)
            + "<h3>Last run</h3>"
            + _last_run_html(info["last_run"])
            + "<h3>Promotion history</h3>"
            + _history_html(info.get("history") or [])
            + "</section>"
        )
    return (
        "<!doctype html><html><head><meta charset=utf-8>"
        f"<title>loopml status</title><style>{STYLE}</style></head><body>"
        f"<h1>loopml status</h1><p>Profile <b>{_esc(doc['profile'])}</b>, "
        f"tracking {_esc(doc['tracking_uri'])}. Links: <a href=/docs>API docs</a>, "
        "<a href=/metrics>metrics</a>, <a href=/version>version</a>.</p>"
        + "".join(sections)
        + "</body></html>"
    )


def report_file(settings: Settings, workload: str, name: str) -> Path | None:
    """A monitor report of the home folder by file name, or None.

    Only ``monitor-<date>.html|json`` of a known workload: nothing else of
    the home folder can be read through the service.
    """
    if workload not in workload_names() or not REPORT_NAME.fullmatch(name):
        return None
    path = settings.home / "reports" / workload / name
    return path if path.is_file() else None
