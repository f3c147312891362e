"""Replay: live the days after the history one by one, drifted or not.

``loopml replay -w demand --days N [--drift-from K]`` starts from a home with
a demand champion (without one, it first runs the whole loop on the
history) and, for each of the N days after the last validated day:

1. **ingest** that day's batch, cut from the generator extended by N days
   (``generate(..., drift_from_day=...)`` drifts replay days K.. when asked:
   level x1.6, weekly pattern shifted by three days), then **validate** it;
2. **batch scoring**: the champion forecasts the next day from today's
   state, logged to the inference log (``source=batch``), as a daily batch
   job would, so the monitor's live WAPE has served forecasts to judge;
3. **monitor** the day (drift against the champion's training data, live
   WAPE, age);
4. **retrain** if the policy says so (``loopml.stages.retrain``).

The per-day table (date, drift share and drifted columns, trigger,
decision, champion) is returned and written as JSON and Markdown to
``<home>/reports/demand/replay-<first day>-<N>d[-drift<K>].{json,md}``.
Only the generated dataset can be replayed: a real dataset has no days after
its end.
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
from loopml.stages import ingest, monitor, retrain, validate
from loopml.workloads.demand import data as demand_data
from loopml.workloads.demand.config import DemandSettings

log = logging.getLogger(__name__)

WORKLOAD = "demand"
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


def _world(
    settings: Settings, last: pd.Timestamp, days: int, drift_from: int | None
) -> pd.DataFrame:
    """The generated days after ``last`` (one more, for the last day's batch)."""
    cfg = DemandSettings.of(settings)
    first_index = (last - pd.Timestamp(cfg.start)).days + 1
    world = demand_data.generate(
        n_stores=cfg.n_stores,
        n_items=cfg.n_items,
        n_days=first_index + days + 1,
        start=cfg.start,
        seed=settings.seed,
        drift_from_day=None if drift_from is None else first_index + drift_from - 1,
    )
    return world[world["date"] > last].reset_index(drop=True)


def _ensure_champion(settings: Settings) -> None:
    """Run the whole loop on the history when there is no champion yet."""
    from loopml.orchestration.runner import run_loop

    setup_mlflow(settings)
    if get_alias(WORKLOAD, CHAMPION) is not None:
        return
    log.info("no %s champion: running the loop on the history first", WORKLOAD)
    failed = [t for t in run_loop(settings, [WORKLOAD]) if t.result.status == "failed"]
    if failed:
        stage = failed[0].result
        raise StageError(f"the first loop failed at {stage.stage}: {stage.summary}")
    if get_alias(WORKLOAD, CHAMPION) is None:
        raise StageError("the gate refused the first model: no champion to replay")


def _score_next_day(settings: Settings, day: pd.Timestamp, plan: pd.DataFrame) -> int:
    """Log the champion's forecasts of the next day, made from ``day``'s state."""
    from loopml.workloads.demand.monitoring import next_day_forecasts

    champion = get_alias(WORKLOAD, CHAMPION)
    if champion is None or plan.empty:
        return 0
    version = str(champion.version)
    model: Any = load_verified(WORKLOAD, version).unwrap_python_model()
    data = pd.read_parquet(settings.data_dir(WORKLOAD) / "validated.parquet")
    rows = next_day_forecasts(model, data, plan, day)
    meta = {
        "ts": dt.datetime.now(dt.UTC),
        "request_id": uuid.uuid4().hex,
        "workload": WORKLOAD,
        "source": "batch",
        "model_version": version,
        "latency_seconds": 0.0,
    }
    frame = rows.assign(**meta, store_id=rows["store_id"].astype(str))
    frame["item_id"] = frame["item_id"].astype(str)
    write_part(settings.home / "inference", WORKLOAD, day.date(), frame)
    return len(frame)


def _monitored(settings: Settings, day: pd.Timestamp) -> dict[str, Any]:
    """The monitor report of ``day`` (written by ``monitor.run``)."""
    path = monitor.report_paths(settings, WORKLOAD, day.date())["json"]
    doc: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return doc


def _top_score(doc: dict[str, Any]) -> str:
    """The judged column with the largest drift score, and its score."""
    judged = {k: v for k, v in doc["drift"]["columns"].items() if v.get("judged")}
    if not judged:
        return "-"
    name = max(judged, key=lambda k: judged[k]["score"])
    return f"{name} {judged[name]['score']:.2f}"


def _retrain(settings: Settings, day: pd.Timestamp) -> tuple[str, str]:
    """Run the retrain stage for ``day``: (triggers, decision)."""
    try:
        result = retrain.run(settings, WORKLOAD, day.date())
    except StageError as error:
        log.error("retrain failed on %s: %s", day.date(), error)
        return "?", "failed"
    names = ",".join(t["name"] for t in result.details["triggers"])
    return names or "-", str(result.details["decision"])


def _one_day(
    settings: Settings,
    index: int,
    day: pd.Timestamp,
    world: pd.DataFrame,
    drifted_input: bool,
) -> ReplayDay:
    """Ingest, validate, score, monitor and maybe retrain one day."""
    started = time.perf_counter()
    rows = world[world["date"] == day]
    delivery = settings.home / "replay" / f"date={day:%Y-%m-%d}.parquet"
    delivery.parent.mkdir(parents=True, exist_ok=True)
    rows.to_parquet(delivery, index=False)
    with stage_context("ingest"):
        ingest.run(settings, WORKLOAD, day=day.date(), source=delivery)
    with stage_context("validate"):
        validate.run(settings, WORKLOAD)  # a refused day raises StageError
    with stage_context("batch"):
        _score_next_day(settings, day, world[world["date"] == day + ONE_DAY])
    with stage_context("monitor"):
        monitor.run(settings, WORKLOAD, day.date())
    doc = _monitored(settings, day)
    with stage_context("retrain"):
        trigger, decision = _retrain(settings, day)
    prediction = doc.get("prediction_drift") or {}
    performance = doc.get("performance") or {}
    champion = get_alias(WORKLOAD, CHAMPION)
    return ReplayDay(
        day=index,
        date=day.date().isoformat(),
        drifted_input=drifted_input,
        rows=len(rows),
        drift_share=float(doc["drift"]["share"]),
        drifted=[*doc["drift"]["drifted"]]
        + (["predictions"] if prediction.get("drifted") else []),
        top_score=_top_score(doc),
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
        f"# Replay: {report.n_days} days of demand from {report.first_date} ({drift})",
        "",
        f"{len(report.retrains)} retrain(s); {report.seconds:.0f} s in all.",
        "",
        "| day | date | drifted input | drift share | largest score | drifted "
        "| live WAPE ratio (n) | trigger | decision | champion |",
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


def run(
    settings: Settings,
    workload_name: str,
    days: int,
    drift_from: int | None = None,
    on_day: Callable[[ReplayDay], None] | None = None,
) -> ReplayReport:
    """Replay ``days`` generated days after the history through the daily loop.

    Args:
        settings: the active settings (the demand generator's size, the
            monitor's windows, the retrain policy).
        days: how many days to replay.
        drift_from: the replay day (1-based) from which the generated data
            drifts; ``None`` for none.
        on_day: called after each day (for progress output).

    Returns:
        The per-day table and where its JSON and Markdown went.

    Raises:
        StageError: not the generated dataset, no champion could be made, or
            a stage other than retrain failed.
        ValueError: ``days`` or ``drift_from`` out of range.
    """
    if days < 1 or (drift_from is not None and not 1 <= drift_from <= days):
        raise ValueError(f"need days >= 1 and 1 <= drift_from <= days ({days})")
    if DemandSettings.of(settings).dataset != "generated":
        raise StageError(
            f"only the generated demand dataset can be replayed, not "
            f"{DemandSettings.of(settings).dataset!r}: real data has no days "
            "after its end"
        )
    started = time.perf_counter()
    _ensure_champion(settings)
    validated = settings.data_dir(WORKLOAD) / "validated.parquet"
    last = pd.Timestamp(pd.read_parquet(validated, columns=["date"])["date"].max())
    world = _world(settings, last, days, drift_from)
    log.info(
        "replaying %d days after %s (drift from %s)", days, last.date(), drift_from
    )
    done: list[ReplayDay] = []
    for index in range(1, days + 1):
        day = last + index * ONE_DAY
        drifted = drift_from is not None and index >= drift_from
        done.append(_one_day(settings, index, day, world, drifted))
        if on_day:
            on_day(done[-1])
    first = (last + ONE_DAY).date().isoformat()
    stem = f"replay-{first}-{days}d" + (
        "" if drift_from is None else f"-drift{drift_from}"
    )
    folder = settings.home / "reports" / WORKLOAD
    paths = {"json": folder / f"{stem}.json", "md": folder / f"{stem}.md"}
    report = ReplayReport(
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
        "replayed %d days in %.0fs: %d retrains",
        days,
        report.seconds,
        len(report.retrains),
    )
    return report
