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


def test_train_refuses_a_feature_store_of_other_data(demand_home: Path) -> None:
    """A new validate without features: train read the old offline tables
    and tagged the model with the new data version."""
    import pandas as pd

    import conftest
    from loopml.stages import ingest, validate

    settings = load_settings("default")
    setup_mlflow(settings)
    day = (conftest.demand_origin(settings) + pd.Timedelta(days=1)).date()
    ingest.run(settings, "demand", day=day)
    validate.run(settings, "demand")
    with pytest.raises(StageError, match="run `loopml features -w demand` first"):
        run_stage("train", settings, "demand")
    run_stage("features", settings, "demand")
    assert run_stage("train", settings, "demand").result.status == "ok"
