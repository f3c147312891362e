"""Replay: live the days after the history one by one, drifted or not.

``loopml replay -w W --days N [--drift-from K]`` starts from a home with a
champion of ``W`` (without one, it first runs the whole loop on the
history) and, for each of the N days after the last validated day:

1. **ingest** that day's rows, from the workload's
   :class:`~loopml.sdk.capabilities.DaySource` (which drifts replay days K..
   when asked and it can), as a delivered daily batch, then **validate** it;
2. **daily predictions**: what a daily job would have answered for the next
   day (the source's ``daily_predictions``; demand: the champion's next-day
   forecasts from today's state) goes to the inference log
   (``source=batch``), so the monitor has served predictions to judge;
3. **monitor** the day (drift against the champion's training data, live
   metric, age): its JSON report every day, Evidently's HTML only on the
   first day of a drift (not again while it goes on), a retrain's day and
   the last day;
4. **retrain** if the policy says so (``loopml.stages.retrain``).

The per-day table (date, drift share and drifted columns, trigger,
decision, champion) is returned and written as JSON and Markdown to
``<home>/reports/<w>/replay-<first day>-<N>d[-drift<K>].{json,md}``.
A workload without a day source has nothing to replay.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from loopml.core.config import Settings
from loopml.core.errors import StageError
from loopml.core.io import write_json
from loopml.core.logs import stage_context
from loopml.models.integrity import load_verified
from loopml.models.registry import CHAMPION, get_alias
from loopml.models.tracking import setup_mlflow
from loopml.monitoring.inference_log import write_part
from loopml.sdk.capabilities import DaySource, MissingCapabilityError, require
from loopml.sdk.workload import Workload, get_workload
from loopml.stages import ingest, monitor, retrain, validate

log = logging.getLogger(__name__)

ONE_DAY = pd.Timedelta(days=1)


@dataclass
class ReplayDay:
    """What happened on one replayed day."""

    day: int
    date: str
    drifted_input: bool
    rows: int
    drift_share: float | None
    top_score: str
    drifted: list[str]
    live_ratio: float | None
    live_n: int
    trigger: str
    decision: str
    champion: str
    seconds: float


@dataclass
class ReplayReport:
    """The whole replay: its parameters, days and where the report went."""

    workload: str
    days: list[ReplayDay]
    n_days: int
    drift_from: int | None
    first_date: str
    seconds: float
    paths: dict[str, str]

    @property
    def retrains(self) -> list[ReplayDay]:
        """The days on which a retrain ran (whatever the gate decided)."""
        return [d for d in self.days if d.decision not in ("none", "")]


def _ensure_champion(settings: Settings, workload: str) -> None:
    """Run the whole loop on the history when there is no champion yet."""
    from loopml.orchestration.runner import run_loop

    setup_mlflow(settings)
    if get_alias(workload, CHAMPION) is not None:
        return
    log.info("no %s champion: running the loop on the history first", workload)
    failed = [t for t in run_loop(settings, [workload]) if t.result.status == "failed"]
    if failed:
        stage = failed[0].result
        raise StageError(f"the first loop failed at {stage.stage}: {stage.summary}")
    if get_alias(workload, CHAMPION) is None:
        raise StageError("the gate refused the first model: no champion to replay")


def _log_predictions(
    settings: Settings,
    workload: str,
    source: DaySource,
    day: pd.Timestamp,
    next_rows: pd.DataFrame,
    models: dict[str, Any],
) -> int:
    """Log what a daily job would have answered for the day after ``day``.

    ``models``: the champion as loaded on an earlier day, by version (reused
    while it stays the champion).
    """
    if type(source).daily_predictions is DaySource.daily_predictions:
        return 0  # nothing to log: spare loading the champion
    champion = get_alias(workload, CHAMPION)
    if champion is None:
        return 0
    version = str(champion.version)
    if version not in models:  # one load per champion, not one a day
        models.clear()
        models[version] = load_verified(workload, version).unwrap_python_model()
    model = models[version]
    data = pd.read_parquet(settings.data_dir(workload) / "validated.parquet")
    rows = source.daily_predictions(model, data, next_rows, day)
    if rows is None or rows.empty:
        return 0
    meta = {
        "ts": dt.datetime.now(dt.UTC),
        "request_id": uuid.uuid4().hex,
        "workload": workload,
        "source": "batch",
        "model_version": version,
        "latency_seconds": 0.0,
    }
    write_part(settings.home / "inference", workload, day.date(), rows.assign(**meta))
    return len(rows)


def _monitored(
    settings: Settings, workload: str, day: pd.Timestamp
) -> dict[str, Any] | None:
    """The monitor report of ``day`` (None: the workload has no monitor)."""
    path = Path(monitor.report_paths(settings, workload, day.date())["json"])
    if not path.is_file():
        return None
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def _top_score(doc: dict[str, Any]) -> str:
    """The judged column with the largest drift score, and its score."""
    judged = {k: v for k, v in doc["drift"]["columns"].items() if v.get("judged")}
    if not judged:
        return "-"
    name = max(judged, key=lambda k: judged[k]["score"])
    return f"{name} {judged[name]['score']:.2f}"


def _retrain(settings: Settings, workload: str, day: pd.Timestamp) -> tuple[str, str]:
    """Run the retrain stage for ``day``: (triggers, decision)."""
    try:
        result = retrain.run(settings, workload, day.date())
    except StageError as error:
        log.error("retrain failed on %s: %s", day.date(), error)
        return "?", "failed"
    names = ",".join(t["name"] for t in result.details["triggers"])
    return names or "-", str(result.details["decision"])


def _one_day(
    settings: Settings,
    workload: Workload,
    source: DaySource,
    index: int,
    day: pd.Timestamp,
    world: pd.DataFrame,
    drifted_input: bool,
    last: bool,
    models: dict[str, Any],
    drifting: bool = False,
) -> ReplayDay:
    """Ingest, validate, log predictions, monitor and maybe retrain one day.

    ``last``: the replay's last day (its monitor report gets the HTML);
    ``models``: the champion already loaded, by version; ``drifting``: the
    day before drifted (a drift that goes on gets no new HTML).
    """
    started = time.perf_counter()
    name = workload.name
    when = world[workload.batch_spec.time_column].dt.normalize()
    rows = world[when == day]
    delivery = settings.home / "replay" / name / f"date={day:%Y-%m-%d}.parquet"
    delivery.parent.mkdir(parents=True, exist_ok=True)
    rows.to_parquet(delivery, index=False)
    with stage_context("ingest"):
        ingest.run(settings, name, day=day.date(), source=delivery)
    with stage_context("validate"):
        validate.run(settings, name)  # a refused day raises StageError
    with stage_context("batch"):
        next_rows = world[when == day + ONE_DAY]
        _log_predictions(settings, name, source, day, next_rows, models)
    with stage_context("monitor"):
        judged = monitor.judge(settings, name, day.date())
        if judged is not None:
            # Evidently's HTML (drawing its figures costs far more than the
            # scores) when it has something new to show: the first day of a
            # drift (the day its alert opens), the last day; a retrain's day
            # gets it below. Every day's scores are in its JSON.
            opened = judged.drifted and not drifting
            monitor.publish(settings, name, judged, html=opened or last)
    doc = _monitored(settings, name, day)
    with stage_context("retrain"):
        trigger, decision = _retrain(settings, name, day)
    if judged is not None and decision not in ("none", ""):
        with stage_context("monitor"):
            monitor.add_html(settings, name, judged)
    prediction = (doc or {}).get("prediction_drift") or {}
    performance = (doc or {}).get("performance") or {}
    champion = get_alias(name, CHAMPION)
    return ReplayDay(
        day=index,
        date=day.date().isoformat(),
        drifted_input=drifted_input,
        rows=len(rows),
        drift_share=None if doc is None else float(doc["drift"]["share"]),
        drifted=([] if doc is None else [*doc["drift"]["drifted"]])
        + (["predictions"] if prediction.get("drifted") else []),
        top_score="-" if doc is None else _top_score(doc),
        live_ratio=performance.get("ratio"),
        live_n=int(performance.get("n") or 0),
        trigger=trigger,
        decision=decision,
        champion="-" if champion is None else str(champion.version),
        seconds=round(time.perf_counter() - started, 2),
    )


def markdown(report: ReplayReport) -> str:
    """The replay's per-day table as Markdown."""
    drift = (
        "no drift"
        if report.drift_from is None
        else f"drift from day {report.drift_from}"
    )
    lines = [
        f"# Replay: {report.n_days} days of {report.workload} from "
        f"{report.first_date} ({drift})",
        "",
        f"{len(report.retrains)} retrain(s); {report.seconds:.0f} s in all.",
        "",
        "| day | date | drifted input | drift share | largest score | drifted "
        "| live metric ratio (n) | trigger | decision | champion |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for d in report.days:
        ratio = "-" if d.live_ratio is None else f"{d.live_ratio:.2f} ({d.live_n})"
        share = "-" if d.drift_share is None else f"{d.drift_share:.2f}"
        lines.append(
            f"| {d.day} | {d.date} | {'yes' if d.drifted_input else 'no'} | {share} "
            f"| {d.top_score} | {', '.join(d.drifted) or '-'} | {ratio} "
            f"| {d.trigger} | {d.decision} | v{d.champion} |"
        )
    return "\n".join(lines) + "\n"


def _source(
    settings: Settings, workload: Workload, days: int, drift_from: int | None
) -> DaySource:
    """The workload's day source, checked against the replay asked for.

    Raises:
        StageError: no day source, or a configuration it cannot replay.
        ValueError: ``days`` or ``drift_from`` out of range, or drift from a
            source that cannot drift.
    """
    if days < 1 or (drift_from is not None and not 1 <= drift_from <= days):
        raise ValueError(f"need days >= 1 and 1 <= drift_from <= days ({days})")
    try:
        source: DaySource = require(workload, "day_source")
    except MissingCapabilityError as error:
        message = f"{workload.name} has no day source: nothing to replay"
        raise StageError(message) from error
    if drift_from is not None and not source.can_drift:
        raise ValueError(
            f"the {workload.name} day source cannot drift: replay it without "
            "--drift-from"
        )
    try:
        source.check(settings)
    except ValueError as error:  # e.g. real data: known before any loop runs
        raise StageError(str(error)) from error
    return source


def run(
    settings: Settings,
    workload_name: str,
    days: int,
    drift_from: int | None = None,
    on_day: Callable[[ReplayDay], None] | None = None,
) -> ReplayReport:
    """Replay ``days`` new days after the history through the daily loop.

    Args:
        settings: the active settings (the source's size, the monitor's
            windows, the retrain policy).
        workload_name: a registered workload with a day source.
        days: how many days to replay.
        drift_from: the replay day (1-based) from which the source drifts;
            ``None`` for none.
        on_day: called after each day (for progress output).

    Returns:
        The per-day table and where its JSON and Markdown went.

    Raises:
        StageError: no day source, a source with no new days (a real
            dataset), no champion could be made, or a stage other than
            retrain failed.
        ValueError: ``days`` or ``drift_from`` out of range, or
            ``drift_from`` for a source that cannot drift.
    """
    workload = get_workload(workload_name)
    source = _source(settings, workload, days, drift_from)
    started = time.perf_counter()
    _ensure_champion(settings, workload_name)
    column = workload.batch_spec.time_column
    validated = settings.data_dir(workload_name) / "validated.parquet"
    times = pd.read_parquet(validated, columns=[column])[column]
    last = pd.Timestamp(times.max()).normalize()
    # One day more than replayed: the last day's predictions are for it.
    world = source.days(settings, last + ONE_DAY, days + 1, drift_from)
    log.info(
        "replaying %d days of %s after %s (drift from %s)",
        days,
        workload_name,
        last.date(),
        drift_from,
    )
    done: list[ReplayDay] = []
    models: dict[str, Any] = {}
    for index in range(1, days + 1):
        day = last + index * ONE_DAY
        drifted = drift_from is not None and index >= drift_from
        done.append(
            _one_day(
                settings,
                workload,
                source,
                index,
                day,
                world,
                drifted,
                index == days,
                models,
                drifting=bool(done and done[-1].drifted),
            )
        )
        if on_day:
            on_day(done[-1])
    first = (last + ONE_DAY).date().isoformat()
    stem = f"replay-{first}-{days}d" + (
        "" if drift_from is None else f"-drift{drift_from}"
    )
    folder = settings.home / "reports" / workload_name
    paths = {"json": folder / f"{stem}.json", "md": folder / f"{stem}.md"}
    report = ReplayReport(
        workload=workload_name,
        days=done,
        n_days=days,
        drift_from=drift_from,
        first_date=first,
        seconds=round(time.perf_counter() - started, 1),
        paths={k: str(v) for k, v in paths.items()},
    )
    write_json(
        {**asdict(report), "retrains": [asdict(d) for d in report.retrains]},
        paths["json"],
    )
    paths["md"].write_text(markdown(report), encoding="utf-8")
    log.info(
        "replayed %d days of %s in %.0fs: %d retrains",
        days,
        workload_name,
        report.seconds,
        len(report.retrains),
    )
    return report
