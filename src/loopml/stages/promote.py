"""Promote: make the candidate ``champion`` only if it beats the bar.

This first gate compares the candidate's backtest metric with the baseline's
(the rule the business used before) and, when a champion exists, with the
champion's recorded metric. It says why, either way, and records the decision.
"""

from __future__ import annotations

import logging

from mlflow import MlflowClient

from loopml.config import Settings
from loopml.registry import CHAMPION, Decision, get_alias, record, set_alias
from loopml.stages.common import StageResult, read_json
from loopml.tracking import setup_mlflow
from loopml.workloads.base import Workload, get_workload

log = logging.getLogger(__name__)


def _champion_metric(workload: Workload, run_id: str) -> float | None:
    metrics = MlflowClient().get_run(run_id).data.metrics
    return metrics.get(workload.primary_metric)


def decide(
    workload: Workload, metrics: dict[str, float], champion_metric: float | None
) -> tuple[bool, str]:
    """Apply the gate to a candidate's metrics.

    Args:
        workload: supplies the primary metric and its direction.
        metrics: the candidate's evaluation metrics (model and baseline).
        champion_metric: the current champion's primary metric, if any.

    Returns:
        Whether to promote, and the reason in one sentence.
    """
    key = workload.primary_metric
    value, baseline = metrics[key], metrics[f"baseline_{key}"]
    if not workload.beats(value, baseline):
        return False, f"{key} {value:.4f} does not beat the baseline's {baseline:.4f}"
    if champion_metric is not None and not workload.beats(value, champion_metric):
        return False, (
            f"{key} {value:.4f} does not beat the champion's {champion_metric:.4f}"
        )
    versus = (
        "" if champion_metric is None else f" and the champion's {champion_metric:.4f}"
    )
    return True, f"{key} {value:.4f} beats the baseline's {baseline:.4f}{versus}"


def run(settings: Settings, workload_name: str) -> StageResult:
    """Promote the evaluated candidate if the gate lets it through."""
    workload = get_workload(workload_name)
    evaluated = read_json(
        settings.state_dir(workload_name) / "evaluate.json", "evaluate"
    )
    setup_mlflow(settings)
    version = str(evaluated["version"])
    champion = get_alias(workload_name, CHAMPION)
    if champion is not None and champion.version == version:
        reason = f"version {version} is already the champion"
        return StageResult("promote", workload_name, "skipped", reason)
    champion_metric = (
        _champion_metric(workload, champion.run_id)
        if champion is not None and champion.run_id
        else None
    )
    promoted, reason = decide(workload, evaluated["metrics"], champion_metric)
    if promoted:
        set_alias(workload_name, CHAMPION, version)
    decision = Decision(
        workload=workload_name,
        action="promote" if promoted else "reject",
        promoted=promoted,
        from_version=None if champion is None else str(champion.version),
        to_version=version,
        reason=reason,
        metrics={k: float(v) for k, v in evaluated["metrics"].items()},
    )
    record(decision, settings.state_dir(workload_name) / "history.jsonl")
    verdict = "promoted to champion" if promoted else "not promoted"
    log.info("version %s %s: %s", version, verdict, reason)
    return StageResult(
        "promote",
        workload_name,
        "ok" if promoted else "rejected",
        f"v{version} {verdict}: {reason}",
        details={"version": version, "promoted": promoted, "reason": reason},
    )
