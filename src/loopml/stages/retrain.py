"""Retrain: when the policy says so, train, evaluate and promote again.

The stage gathers the facts (today, the champion and its data end, the
version tag ``loopml.data_end``; the last retrain; the latest ``loopml
monitor`` report up to today), asks
``loopml.monitoring.retrain_policy`` and, when a trigger fires, runs
``features``, ``train``, ``evaluate`` and ``promote`` through
``loopml.stages.runner.run_stage``, the path ``loopml run`` takes
(``features`` first, so the training set holds the days validated since the
last run). The gate decides as always.

Recorded for a completed retrain:

* tags ``loopml.retrain.triggers`` / ``loopml.retrain.date`` on the new run
  and model version;
* a ``retrain`` line in ``history.jsonl`` (``loopml history``): the triggers
  and the gate's decision;
* a JSON line in ``<home>/state/<w>/retrain.jsonl``: date, triggers, the
  policy's other answers, decision, versions, stage timings. The last such
  line with a decision starts the cool-down.

No trigger: nothing is run or written. A failed stage: the champion is
untouched (only ``promote`` moves it), a ``failed`` line goes to the retrain
log, and :class:`StageError` names the stage.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow import MlflowClient

from loopml.core.config import Settings
from loopml.core.errors import StageError
from loopml.core.io import require_file
from loopml.models.registry import CHAMPION, Decision, get_alias, record
from loopml.models.tracking import DATA_END_TAG, setup_mlflow
from loopml.monitoring.retrain_policy import Facts, Verdict, decide
from loopml.sdk.workload import Workload, get_workload
from loopml.stages.common import StageResult

log = logging.getLogger(__name__)

#: The stages of a retrain, in ``loopml run``'s order.
STAGES = ("features", "train", "evaluate", "promote")
LOG_NAME = "retrain.jsonl"
#: Outcomes of a retrain that ran to the gate's decision (they start a cool-down).
DECIDED = ("promoted", "rejected")


def log_path(settings: Settings, workload: str) -> Path:
    """The retrain log of a workload: one JSON line per retrain."""
    return settings.state_dir(workload) / LOG_NAME


def read_log(settings: Settings, workload: str) -> list[dict[str, Any]]:
    """Every retrain recorded for a workload, oldest first."""
    path = log_path(settings, workload)
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _append(settings: Settings, workload: str, entry: dict[str, Any]) -> None:
    path = log_path(settings, workload)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, default=str) + "\n")


def _today(settings: Settings, workload: Workload, day: dt.date | None) -> dt.date:
    """``day``, or the last validated day; a day after that is refused.

    Raises:
        StageError: ``day`` has no validated data yet (as batch and monitor
            refuse it): a retraining for it would train on older days only.
    """
    path = require_file(
        settings.data_dir(workload.name) / "validated.parquet", "validate"
    )
    column = workload.batch_spec.time_column
    try:
        last: dt.date = pd.Timestamp(
            pd.read_parquet(path, columns=[column])[column].max()
        ).date()
    except (OSError, ValueError):  # unreadable: the stages say so, in their words
        if day is None:
            raise
        return day
    if day is not None and day > last:
        raise StageError(f"no validated data for {day} yet (last: {last})")
    return last if day is None else day


def latest_report(
    settings: Settings, workload: str, day: dt.date
) -> dict[str, Any] | None:
    """The monitor report of ``day``, else the latest one before it."""
    folder = settings.home / "reports" / workload
    dated = []
    for path in folder.glob("monitor-*.json"):
        try:
            when = dt.date.fromisoformat(path.stem.removeprefix("monitor-"))
        except ValueError:
            continue
        if when <= day:
            dated.append((when, path))
    if not dated:
        return None
    report: dict[str, Any] = json.loads(max(dated)[1].read_text(encoding="utf-8"))
    return report


def gather(settings: Settings, workload: str, day: dt.date | None = None) -> Facts:
    """Collect what the policy needs for ``day`` (default: the last validated day)."""
    spec = get_workload(workload)
    today = _today(settings, spec, day)
    setup_mlflow(settings)
    champion = get_alias(workload, CHAMPION)
    # Unknown (None) for a version trained before the tag: no age trigger.
    end = None if champion is None else (champion.tags or {}).get(DATA_END_TAG)
    data_end = None if end is None else pd.Timestamp(end).date()
    if data_end is not None and today < data_end:
        raise StageError(
            f"{today} is inside the champion's training data (up to {data_end}): "
            f"decide for a day from {data_end} on"
        )
    decided = [
        dt.date.fromisoformat(e["date"])
        for e in read_log(settings, workload)
        if e.get("decision") in DECIDED and dt.date.fromisoformat(e["date"]) <= today
    ]
    return Facts(
        today=today,
        champion_version=None if champion is None else str(champion.version),
        champion_data_end=data_end,
        last_retrain=max(decided, default=None),
        monitor=latest_report(settings, workload, today),
        higher_is_better=spec.higher_is_better,
    )


def _tag(settings: Settings, workload: str, version: str, tags: dict[str, str]) -> None:
    """Tag the new version and its run with the retrain's triggers."""
    client = MlflowClient()
    run_id = client.get_model_version(workload, version).run_id
    for key, value in tags.items():
        client.set_model_version_tag(workload, version, key, value)
        if run_id:
            client.set_tag(run_id, key, value)


def _run_stages(
    settings: Settings, workload: str, verdict: Verdict, today: dt.date
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run the retrain's stages; returns the promote details and the timings."""
    from loopml.stages.runner import run_stage

    timings: list[dict[str, Any]] = []
    details: dict[str, Any] = {}
    for name in STAGES:
        timed = run_stage(name, settings, workload)
        timings.append(
            {
                "stage": name,
                "status": timed.result.status,
                "seconds": round(timed.seconds, 2),
            }
        )
        if name == "train":
            tags = {
                "loopml.retrain.triggers": ",".join(t.name for t in verdict.triggers),
                "loopml.retrain.reason": verdict.summary()[:5000],
                "loopml.retrain.date": today.isoformat(),
            }
            _tag(settings, workload, str(timed.result.details["version"]), tags)
        details = timed.result.details
    return details, timings


def run(
    settings: Settings, workload_name: str, day: dt.date | None = None
) -> StageResult:
    """Retrain a workload if the policy's triggers say so.

    Args:
        settings: the active settings (``retrain:`` is the policy).
        workload_name: a registered workload.
        day: the day to decide for; default the last validated day.

    Returns:
        ``skipped`` (no trigger; nothing changed), ``ok`` (a new champion) or
        ``rejected`` (the gate kept the champion); the triggers in ``details``.

    Raises:
        StageError: a stage of the retrain failed (the champion is untouched).
    """
    started = time.perf_counter()
    facts = gather(settings, workload_name, day)
    verdict = decide(settings.retrain, facts)
    base: dict[str, Any] = {
        "date": facts.today.isoformat(),
        "champion": facts.champion_version,
        "triggers": [{"name": t.name, "reason": t.reason} for t in verdict.triggers],
        "quiet": verdict.quiet,
    }
    if not verdict.fire:
        log.info(
            "no retrain of %s on %s: %s", workload_name, facts.today, verdict.summary()
        )
        return StageResult(
            "retrain",
            workload_name,
            "skipped",
            f"no trigger on {facts.today}: {verdict.summary()}",
            details={**base, "decision": "none"},
        )
    log.info("retraining %s on %s: %s", workload_name, facts.today, verdict.summary())
    when = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    try:
        details, timings = _run_stages(settings, workload_name, verdict, facts.today)
    except (StageError, FileNotFoundError, ValueError) as error:
        _append(
            settings,
            workload_name,
            {**base, "when": when, "decision": "failed", "error": str(error)},
        )
        raise StageError(
            f"retrain of {workload_name} failed, the champion is unchanged "
            f"(v{facts.champion_version}): {error}"
        ) from error
    promoted = bool(details.get("promoted"))
    decision = "promoted" if promoted else "rejected"
    version = str(details.get("version"))
    names = ",".join(t.name for t in verdict.triggers)
    verb = "promoted" if promoted else "refused"
    gate = f"gate {verb} v{version}: {details.get('reason')}"
    record(
        Decision(
            workload=workload_name,
            action="retrain",
            promoted=promoted,
            from_version=facts.champion_version,
            to_version=version,
            reason=f"retrain on {facts.today} triggered by {verdict.summary()}; {gate}",
        ),
        settings.state_dir(workload_name) / "history.jsonl",
        tag=False,
    )
    seconds = time.perf_counter() - started
    _append(
        settings,
        workload_name,
        {
            **base,
            "when": when,
            "decision": decision,
            "version": version,
            "reason": details.get("reason"),
            "stages": timings,
            "seconds": round(seconds, 2),
        },
    )
    return StageResult(
        "retrain",
        workload_name,
        "ok" if promoted else "rejected",
        f"{names} on {facts.today} -> v{version} {decision}: {details.get('reason')}",
        details={**base, "decision": decision, "version": version},
    )
