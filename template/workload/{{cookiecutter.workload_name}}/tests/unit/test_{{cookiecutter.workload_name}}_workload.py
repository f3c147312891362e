"""The workload is registered, reads its settings section, trains and evaluates."""

from __future__ import annotations

import numpy as np
import pytest
from loopml.core.config import Settings
from loopml.sdk.capabilities import CAPABILITIES
from loopml.sdk.workload import get_workload, workload_names

from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }} import evaluate
from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.settings import (
    {{ cookiecutter.__class_name }}Settings,
)
from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.workload import (
    {{ cookiecutter.__class_name }}Workload,
)
from utils.{{ cookiecutter.workload_name }}_factory import small_raw, small_settings


def test_loopml_finds_the_workload_through_its_entry_point() -> None:
    assert "{{ cookiecutter.workload_name }}" in workload_names()
    workload = get_workload("{{ cookiecutter.workload_name }}")
    assert isinstance(workload, {{ cookiecutter.__class_name }}Workload)
    assert workload.settings_class is {{ cookiecutter.__class_name }}Settings


def test_it_offers_every_capability_but_feature_views() -> None:
    workload = {{ cookiecutter.__class_name }}Workload()
    offered = {name for name in CAPABILITIES if getattr(workload, name)() is not None}
    assert offered == {"online_scorer", "batch_scorer", "monitor", "day_source"}
    assert set(workload.models()) >= {"lightgbm"}


def test_settings_come_from_the_workloads_section_and_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert {{ cookiecutter.__class_name }}Settings.of(small_settings(n_rows=777)).n_rows == 777
    with pytest.raises(ValueError, match=r"workloads\.{{ cookiecutter.workload_name }}\.n_rows"):
        {{ cookiecutter.__class_name }}Settings.of(small_settings(n_rows=-1))
    monkeypatch.setenv("{{ cookiecutter.__env_prefix }}N_ROWS", "321")
    assert {{ cookiecutter.__class_name }}Settings.of(Settings()).n_rows == 321


def test_train_gives_a_model_that_passes_its_checks() -> None:
    settings = small_settings()
    workload = {{ cookiecutter.__class_name }}Workload()
    data = workload.validate(small_raw())
    output = workload.train(settings, data)
    assert workload.check_model(settings, output.model, output.input_example) == []
    answer = output.model.predict(None, output.input_example)
    assert len(answer) == len(output.input_example)
    assert output.params["n_training_rows"] > 0
    assert output.params["train_until"] < str(data["date"].max().date())


def test_evaluate_reports_model_and_baseline_on_the_primary_metric() -> None:
    settings = small_settings()
    workload = {{ cookiecutter.__class_name }}Workload()
    result = workload.evaluate(settings, workload.validate(small_raw()))
    key = evaluate.PRIMARY_METRIC
    assert {key, f"baseline_{key}"} <= result.metrics.keys()
    assert set(workload.key_metrics) <= result.metrics.keys()
    assert np.isfinite(list(result.metrics.values())).all()
    assert "holdout" in result.figures


def test_the_gate_scores_registered_models_and_a_fresh_baseline() -> None:
    settings = small_settings()
    workload = {{ cookiecutter.__class_name }}Workload()
    data = workload.validate(small_raw())
    model = workload.train(settings, data).model
    scores = workload.holdout_metrics(settings, data, {"challenger": model})
    key = evaluate.PRIMARY_METRIC
    assert workload.beats(scores["challenger"][key], scores["baseline"][key])
