"""What is in production now: champion, its metrics, and the last run."""

from __future__ import annotations

import json
from typing import Any

from mlflow import MlflowClient

from loopml.config import Settings
from loopml.registry import CHALLENGER, CHAMPION, get_alias
from loopml.tracking import setup_mlflow
from loopml.workloads.base import WORKLOADS, get_workload


def _version_info(workload_name: str, alias: str) -> dict[str, Any] | None:
    version = get_alias(workload_name, alias)
    if version is None:
        return None
    workload = get_workload(workload_name)
    run = MlflowClient().get_run(version.run_id) if version.run_id else None
    metrics = run.data.metrics if run else {}
    keys = [k for k in workload.key_metrics if k in metrics]
    tags = version.tags or {}
    return {
        "version": str(version.version),
        "run_id": version.run_id,
        "metrics": {k: metrics[k] for k in keys},
        "data_version": tags.get("loopml.data_version"),
        "git_commit": tags.get("loopml.git_commit"),
        "registered_at": version.creation_timestamp,
    }


def collect(settings: Settings) -> dict[str, Any]:
    """Build the status document, stable in shape for scripts.

    Returns:
        ``{"profile": ..., "workloads": {name: {"champion": ..., "challenger":
        ..., "last_run": ...}}}``; absent things are ``null``.
    """
    setup_mlflow(settings)
    workloads: dict[str, Any] = {}
    for name in WORKLOADS:
        last_run_file = settings.state_dir(name) / "last_run.json"
        last_run = (
            json.loads(last_run_file.read_text(encoding="utf-8"))
            if last_run_file.is_file()
            else None
        )
        workloads[name] = {
            "champion": _version_info(name, CHAMPION),
            "challenger": _version_info(name, CHALLENGER),
            "last_run": last_run,
        }
    return {
        "profile": settings.profile,
        "home": str(settings.home),
        "tracking_uri": settings.tracking_uri,
        "workloads": workloads,
    }
