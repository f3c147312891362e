"""The production profile: the same stages against the local PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from mlflow import MlflowClient

import conftest
from loopml.core.config import load_settings
from loopml.core.runtime import configure_environment
from loopml.feature_store.store import drop_project
from loopml.models.registry import CHALLENGER, get_alias
from loopml.sdk.feast import open_store
from loopml.stages.runner import run_stage

PG_URI = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


@pytest.mark.postgres
def test_train_registers_in_postgres(
    tiny_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reason = conftest.postgres_unreachable()
    if reason:
        pytest.skip(reason)
    # A fresh experiment per test run, so artefacts land in this temp home.
    monkeypatch.setenv("LOOPML_MLFLOW__EXPERIMENT", f"it-{uuid.uuid4().hex[:8]}")
    # Its own Feast project in the shared SQL registry and Redis, dropped after.
    monkeypatch.setenv("LOOPML_FEATURE_STORE__PROJECT", f"it_{uuid.uuid4().hex[:8]}")
    settings = load_settings("production", home=tiny_env)
    assert settings.tracking_uri == PG_URI
    assert settings.feature_store is not None
    assert settings.feature_store.online == "redis"
    configure_environment(settings.home)
    try:
        for stage in ("ingest", "validate", "features", "train"):
            run_stage(stage, settings, "demand")
    finally:
        drop_project(open_store(settings))
    challenger = get_alias("demand", CHALLENGER)
    assert challenger is not None
    run = MlflowClient().get_run(challenger.run_id)
    assert run.data.tags["loopml.workload"] == "demand"
    assert len(run.data.tags["loopml.data_version"]) == 32
    assert run.info.artifact_uri.startswith(settings.artifact_root.as_uri())
    # The training set came from Feast; the run records the view it used.
    assert run.data.params["feature_views"] == "demand_series_state"
    assert len(run.data.tags["loopml.feature_view.demand_series_state"]) == 12


@pytest.mark.postgres
def test_a_dropped_project_can_be_published_again(tiny_env: Path) -> None:
    reason = conftest.postgres_unreachable()
    if reason:
        pytest.skip(reason)
    project = f"it_{uuid.uuid4().hex[:8]}"
    settings = load_settings("production", home=tiny_env)
    assert settings.feature_store is not None
    settings = settings.model_copy(
        update={
            "feature_store": settings.feature_store.model_copy(
                update={"project": project}
            )
        }
    )
    configure_environment(settings.home)
    try:
        for stage in ("ingest", "validate", "features"):
            run_stage(stage, settings, "demand")
        drop_project(open_store(settings))
        # The SQL registry kept each view's version history after a drop, so
        # this failed with a duplicate key (benchmarks/scale.py --resume).
        again = run_stage("features", settings, "demand")
        assert again.result.status == "ok"
        assert open_store(settings).list_feature_views()
    finally:
        drop_project(open_store(settings))
