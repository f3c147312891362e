"""``loopml tune`` on tiny demand data: real Ray, real MLflow, nested runs.

4 trials, 2 at once, 2 backtest folds each (ASHA may stop a trial after the
first); the best parameters land in ``tuned.json`` and reach the next train.
The tests run in one process, each in its own home (see ``tiny_env``), on one
local Ray started once for the module (2 CPUs) under its own home: the stage
uses a Ray it finds running, and leaves it running.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

import conftest
from loopml.core.config import load_settings
from loopml.core.params import PARAMS_ENV
from loopml.core.ray_session import ray_session
from loopml.core.runtime import configure_environment
from loopml.sdk.workload import get_workload
from loopml.stages.runner import run_stage
from loopml.stages.tune import apply_tuned, tuned_path
from loopml.workloads.demand.config import DemandSettings

log = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def ray_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One local Ray (2 CPUs) for the module's tests, under its own home."""
    home = tmp_path_factory.mktemp("ray-home")
    with pytest.MonkeyPatch.context() as patch:
        conftest.set_tiny_env(patch, home)
        settings = load_settings("default")
        configure_environment(settings.home)
        with ray_session(settings, num_cpus=2):
            yield home


@pytest.fixture()
def tiny_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ray_home: Path) -> Path:
    """A tiny home per test; Ray is the module's."""
    return conftest.set_tiny_env(monkeypatch, tmp_path / "home")


def test_tune_runs_parallel_nested_trials_and_keeps_the_best(
    tiny_env: Path, monkeypatch: pytest.MonkeyPatch, ray_home: Path
) -> None:
    monkeypatch.delenv(PARAMS_ENV, raising=False)
    monkeypatch.setenv("LOOPML_TUNE__NUM_SAMPLES", "4")
    monkeypatch.setenv("LOOPML_TUNE__MAX_CONCURRENT", "2")
    settings = load_settings("default")
    configure_environment(settings.home)
    for stage in ("ingest", "validate"):
        run_stage(stage, settings, "demand")
    token_before = os.environ.get("RAY_AUTH_TOKEN_PATH")

    started = time.perf_counter()
    timed = run_stage("tune", settings, "demand")
    log.info(
        "tune stage: %.1fs: %s", time.perf_counter() - started, timed.result.summary
    )

    record = json.loads(tuned_path(settings, "demand").read_text(encoding="utf-8"))
    space = get_workload("demand").search_space(settings)
    assert set(record["params"]) == set(space)
    for name, param in space.items():
        assert param.low <= record["params"][name] <= param.high
    assert record["n_trials"] == 4

    client = MlflowClient(settings.tracking_uri)
    parent = client.get_run(record["parent_run_id"])
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["loopml.stage"] == "tune"
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'",
    )
    assert len(children) == 4
    assert {c.info.status for c in children} <= {"FINISHED", "KILLED"}
    completed = [
        c for c in children if c.data.tags["loopml.tune.status"] == "completed"
    ]
    assert completed
    for child in completed:
        history = client.get_metric_history(child.info.run_id, "wape")
        assert [m.step for m in history] == [1, 2]  # one report per fold
    best = min(c.data.metrics["wape"] for c in completed)
    assert record["best_trial_value"] == pytest.approx(best)
    # Never worse: the profile's parameters were scored on the same folds,
    # and the kept configuration is the better of the two.
    current = record["current_value"]
    assert record["current_params"] == get_workload("demand").current_params(settings)
    assert parent.data.metrics["current_wape"] == pytest.approx(current)
    assert record["value"] == pytest.approx(min(best, current))
    assert parent.data.metrics["best_wape"] == pytest.approx(record["value"])
    assert record["kept"] == ("tuned" if best < current else "current")
    if record["kept"] == "current":
        assert record["params"] == record["current_params"]

    # Two trials at once: some trial started before another one had finished.
    spans = sorted((c.info.start_time, c.info.end_time) for c in children)
    assert any(
        later[0] < earlier[1] for earlier, later in zip(spans, spans[1:], strict=False)
    )

    # Tune's files under the home; the running Ray (the module's, under its
    # own home) was used and left as it was.
    assert (settings.home / "ray_results").is_dir()
    assert os.environ.get("RAY_AUTH_TOKEN_PATH") == token_before
    import ray

    assert ray.is_initialized()
    temp_dir = Path(ray.get_runtime_context().get_temp_dir())
    assert temp_dir.resolve() == (ray_home / "ray").resolve()
    assert (ray_home / "ray" / "auth_token").is_file()

    tuned = apply_tuned(settings, "demand")
    model = DemandSettings.of(tuned).model
    assert model.num_leaves == record["params"]["num_leaves"]
    assert model.learning_rate == record["params"]["learning_rate"]


def test_a_worse_search_keeps_the_current_parameters(
    tiny_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trials of a space far from the defaults lose: tuned.json keeps the current."""
    from loopml.sdk.tuning import SearchParam
    from loopml.workloads.demand import tuning

    monkeypatch.delenv(PARAMS_ENV, raising=False)
    monkeypatch.setenv("LOOPML_TUNE__NUM_SAMPLES", "2")
    # Two-tree models at a tiny rate: far worse than the profile's 60 trees.
    monkeypatch.setattr(
        tuning,
        "SEARCH_SPACE",
        {
            "n_estimators": SearchParam("int", 2, 3),
            "learning_rate": SearchParam("float", 0.001, 0.002),
        },
    )
    settings = load_settings("default")
    configure_environment(settings.home)
    for stage in ("ingest", "validate"):
        run_stage(stage, settings, "demand")
    timed = run_stage("tune", settings, "demand")
    record = json.loads(tuned_path(settings, "demand").read_text(encoding="utf-8"))
    assert record["kept"] == "current", record
    assert record["value"] == pytest.approx(record["current_value"])
    assert record["best_trial_value"] > record["current_value"]
    assert record["params"] == {"n_estimators": 60, "learning_rate": 0.05}
    assert "kept the current parameters" in timed.result.summary


def test_run_tunes_once_per_data_version(
    tiny_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopml.orchestration.runner import run_loop

    monkeypatch.delenv(PARAMS_ENV, raising=False)
    monkeypatch.setenv("LOOPML_TUNE__IN_RUN", "true")
    monkeypatch.setenv("LOOPML_TUNE__NUM_SAMPLES", "1")
    settings = load_settings("default")
    configure_environment(settings.home)

    first = {t.result.stage: t.result for t in run_loop(settings, ["demand"])}
    assert first["tune"].status == "ok", first["tune"].summary
    assert first["train"].status == "ok"
    record = json.loads(tuned_path(settings, "demand").read_text(encoding="utf-8"))

    again = {t.result.stage: t.result for t in run_loop(settings, ["demand"])}
    assert again["tune"].status == "skipped"
    assert "tuned on this data version reused" in again["tune"].summary
    assert again["train"].status == "skipped"  # same data and tuned parameters
    after = json.loads(tuned_path(settings, "demand").read_text(encoding="utf-8"))
    assert after == record
