"""Promote: the gate between the registered challenger and ``champion``.

The challenger (the version ``evaluate`` judged) and the current champion are
loaded from the registry and scored afresh on the same, latest holdout of the
validated data, next to the workload's baseline; stored metrics are never
trusted. ``loopml.models.gate`` decides; the decision, every check and the metrics of
both sides go to the model-version tags, the challenger's run and
``history.jsonl``. Without a champion, beating the baseline is enough.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from mlflow import MlflowClient

from loopml.core.config import Settings
from loopml.core.errors import DataValidationError, StageError
from loopml.core.io import read_json, read_table, require_file
from loopml.models import card as model_card
from loopml.models import gate
from loopml.models.integrity import load_verified
from loopml.models.registry import (
    CHALLENGER,
    CHAMPION,
    Decision,
    get_alias,
    record,
    set_alias,
)
from loopml.models.tracking import setup_mlflow
from loopml.sdk.workload import Workload, get_workload
from loopml.stages.common import StageResult

log = logging.getLogger(__name__)
#: The gate's checks are tags ``loopml.gate.<check>`` (pass / fail) of the
#: version it ruled on.
GATE_TAG = "loopml.gate."


def _load(name: str, version: str) -> tuple[Any, pd.DataFrame | None]:
    """A registered version's python model and input example."""
    pyfunc = load_verified(name, version)
    return pyfunc.unwrap_python_model(), pyfunc.input_example


def _headline(
    workload: Workload, scores: dict[str, dict[str, float]]
) -> dict[str, float]:
    """Primary and guard metrics of every side, flat, for history and run."""
    keys = [workload.primary_metric, *workload.guard_metrics]
    return {
        f"{side}_{key}": float(metrics[key])
        for side, metrics in scores.items()
        for key in keys
        if key in metrics
    }


def run(settings: Settings, workload_name: str) -> StageResult:
    """Promote the evaluated challenger if it passes the gate.

    Raises:
        StageError: when the holdout data fails its schema, or the models
            cannot be scored on it.
    """
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
    challenger_now = get_alias(workload_name, CHALLENGER)
    if challenger_now is None or str(challenger_now.version) != version:
        now = "none" if challenger_now is None else f"v{challenger_now.version}"
        raise StageError(
            f"the last evaluate was of v{version}, but the challenger is {now}: "
            f"run `loopml evaluate -w {workload_name}` first"
        )
    data_path = require_file(
        settings.data_dir(workload_name) / "validated.parquet", "validate"
    )
    try:  # the data invariants: the holdout must still pass its schema
        data = workload.validate(read_table(data_path, "validate"))
    except DataValidationError as error:
        raise StageError(f"the holdout data failed its schema: {error}") from error
    challenger, example = _load(workload_name, version)
    models = {gate.CHALLENGER: challenger}
    if champion is not None:
        models[gate.CHAMPION] = _load(workload_name, str(champion.version))[0]
    problems = workload.check_model(settings, challenger, example)
    try:
        scores = workload.holdout_metrics(settings, data, models)
    except ValueError as error:
        raise StageError(f"cannot score the holdout: {error}") from error
    except NotImplementedError as error:  # a workload without holdout_metrics
        raise StageError(
            f"{error} (Workload.holdout_metrics): nothing passes the gate, so "
            "nothing is promoted"
        ) from error
    found = gate.checks(workload, scores, settings.gate, problems)
    promoted, reason = gate.verdict(found)
    if promoted:
        set_alias(workload_name, CHAMPION, version)
    headline = _headline(workload, scores)
    _log_gate(workload_name, version, headline, found)
    decision = Decision(
        workload=workload_name,
        action="promote" if promoted else "reject",
        promoted=promoted,
        from_version=None if champion is None else str(champion.version),
        to_version=version,
        reason=reason,
        metrics=headline,
    )
    record(decision, settings.state_dir(workload_name) / "history.jsonl")
    if promoted:
        registered = MlflowClient().get_model_version(workload_name, version)
        params = (
            MlflowClient().get_run(registered.run_id).data.params
            if registered.run_id
            else {}
        )
        card = model_card.render(workload, registered, scores, found, decision, params)
        model_card.log_card(registered, card)
    verdict = "promoted to champion" if promoted else "not promoted"
    log.info("version %s %s: %s", version, verdict, reason)
    return StageResult(
        "promote",
        workload_name,
        "ok" if promoted else "rejected",
        f"v{version} {verdict}: {reason}",
        details={
            "version": version,
            "promoted": promoted,
            "reason": reason,
            "checks": [
                {"name": c.name, "passed": c.passed, "message": c.message}
                for c in found
            ],
            "holdout": scores,
        },
    )


def _log_gate(
    name: str, version: str, headline: dict[str, float], found: list[gate.Check]
) -> None:
    """The gate's metrics on the challenger's run, checks as version tags."""
    client = MlflowClient()
    run_id = client.get_model_version(name, version).run_id
    if run_id:
        for key, value in headline.items():
            client.log_metric(run_id, f"gate_{key}", value)
    for check in found:
        tag = GATE_TAG + check.name.replace(" ", "_")
        client.set_model_version_tag(
            name, version, tag, "pass" if check.passed else "fail"
        )
