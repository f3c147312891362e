"""Promote rules on the challenger the last evaluate scored, and no other.

``promote`` reads ``evaluate.json``; when a newer challenger was trained
since (or evaluate was cut short), it promoted the older version that
evaluate had scored, not the registry's challenger.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from loopml.core.config import load_settings
from loopml.core.errors import StageError
from loopml.models.registry import get_alias
from loopml.models.tracking import setup_mlflow
from loopml.orchestration.runner import run_stage


def test_promote_refuses_an_evaluation_of_another_version(demand_home: Path) -> None:
    settings = load_settings("default")
    setup_mlflow(settings)
    champion = str(get_alias("demand", "champion").version)  # type: ignore[union-attr]
    run_stage("train", settings, "demand")
    run_stage("evaluate", settings, "demand")
    evaluated = str(get_alias("demand", "challenger").version)  # type: ignore[union-attr]
    run_stage("train", settings, "demand")  # a newer challenger, not evaluated
    newer = str(get_alias("demand", "challenger").version)  # type: ignore[union-attr]
    assert newer != evaluated
    with pytest.raises(StageError, match=f"evaluate was of v{evaluated}, but the"):
        run_stage("promote", settings, "demand")
    assert str(get_alias("demand", "champion").version) == champion  # type: ignore[union-attr]
    run_stage("evaluate", settings, "demand")
    done = run_stage("promote", settings, "demand").result
    assert done.details["version"] == newer, done
