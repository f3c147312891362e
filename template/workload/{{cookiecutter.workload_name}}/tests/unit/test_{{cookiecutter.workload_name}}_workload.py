"""The workload is registered with loopml and runs train and evaluate end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd
from loopml.core.config import Settings
from loopml.sdk.workload import WORKLOADS, get_workload

from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }} import evaluate
from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.workload import (
    {{ cookiecutter.__class_name }}Workload,
)
from utils.{{ cookiecutter.workload_name }}_factory import small_config, small_raw


def test_loopml_finds_the_workload_through_its_entry_point() -> None:
    assert "{{ cookiecutter.workload_name }}" in WORKLOADS
    assert isinstance(get_workload("{{ cookiecutter.workload_name }}"), {{ cookiecutter.__class_name }}Workload)


def test_train_gives_a_model_that_answers_its_input_example() -> None:
    workload = {{ cookiecutter.__class_name }}Workload(small_config())
    data = workload.validate(small_raw())
    output = workload.train(Settings(), data)
    prediction = output.model.predict(None, output.input_example)
    assert isinstance(prediction, pd.DataFrame)
    assert len(prediction) == len(output.input_example)
    assert np.isfinite(prediction["prediction"]).all()
    assert output.params["n_training_rows"] > 0


def test_evaluate_reports_model_and_baseline_on_the_primary_metric() -> None:
    workload = {{ cookiecutter.__class_name }}Workload(small_config())
    result = workload.evaluate(Settings(), workload.validate(small_raw()))
    key = evaluate.PRIMARY_METRIC
    assert {key, f"baseline_{key}"} <= result.metrics.keys()
    assert set(workload.key_metrics) <= result.metrics.keys()
    assert "holdout" in result.figures
