"""The capabilities loopml plugs in: online scorer, batch scorer, monitor, day source.

They run here in-process on a model trained on small data; loopml's own
``check_workload`` (tests/integration) runs them through the real
stages and the served API.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from loopml.core.config import Settings
from loopml.sdk.capabilities import InvalidRowsError, MonitorContext, ScoringContext

from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.data import LABEL, TIME_COLUMN
from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.evaluate import PRIMARY_METRIC
from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.pyfunc import SCORE_COLUMN
from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.workload import (
    {{ cookiecutter.__class_name }}Workload,
)
from utils.{{ cookiecutter.workload_name }}_factory import small_raw, small_settings

WORKLOAD = {{ cookiecutter.__class_name }}Workload()


@pytest.fixture(scope="module")
def settings() -> Settings:
    return small_settings()


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return WORKLOAD.validate(small_raw())


@pytest.fixture(scope="module")
def model(settings: Settings, data: pd.DataFrame) -> Any:
    return WORKLOAD.train(settings, data).model


def _context(settings: Settings) -> ScoringContext:
    return ScoringContext("{{ cookiecutter.workload_name }}", "1", None, settings)


def test_the_online_scorer_answers_every_output_per_row(
    model: Any, settings: Settings
) -> None:
    scorer = WORKLOAD.online_scorer()
    examples = scorer.example_rows(model)
    rows = [scorer.row.model_validate_json(json.dumps(row)) for row in examples]
    assert rows
    scores = scorer.score(model, rows, _context(settings))
    for output in scorer.outputs:
        assert len(scores.columns[output.name]) == len(rows)
    json.dumps(scores.columns)  # plain values: every protocol can send them
    primary = np.asarray(scores.columns[scorer.outputs[0].name], dtype=float)
    assert np.isfinite(primary).all()


def test_the_online_scorer_turns_a_contract_failure_into_invalid_rows(
    model: Any, settings: Settings
) -> None:
    scorer = WORKLOAD.online_scorer()
    good = scorer.row(**scorer.example_rows(model)[0])
    field = next(k for k, v in good.model_dump().items() if isinstance(v, int | float))
    # A row that skipped the service's validation: the contract still holds.
    bad = good.model_copy(update={field: -(10**6)})
    with pytest.raises(InvalidRowsError) as caught:
        scorer.score(model, [good, bad], _context(settings))
    assert caught.value.errors[0][:2] == (1, field)
    json.dumps(caught.value.errors)


def test_the_batch_scores_every_entity_of_its_day_in_its_schema(
    model: Any, settings: Settings, data: pd.DataFrame
) -> None:
    scorer = WORKLOAD.batch_scorer()
    day = scorer.default_day(settings, data, TIME_COLUMN)
    frames = list(scorer.score(model, settings, data, day))
    result = pd.concat(frames, ignore_index=True)
    assert len(result) > 0
    table = pa.Table.from_pandas(result, schema=scorer.schema, preserve_index=False)
    assert table.num_rows == len(result)
    assert not result.duplicated(list(scorer.key_columns)).any()


def _mean_shift(
    reference: pd.DataFrame, current: pd.DataFrame, numerical: list[str], _: list[str]
) -> dict[str, Any]:
    """A stand-in for loopml's drift test: the mean's move in reference SDs."""
    verdicts = {}
    for column in numerical:
        sd = float(reference[column].std()) or 1.0
        moved = abs(float(current[column].mean() - reference[column].mean())) / sd
        verdicts[column] = {"score": moved, "threshold": 0.6, "drifted": moved > 0.6}
    return verdicts


def test_the_monitor_samples_its_columns_and_measures_live_performance(
    model: Any, settings: Settings, data: pd.DataFrame
) -> None:
    monitor = WORKLOAD.monitor()
    cfg = settings.monitor
    day = data[TIME_COLUMN].max()
    reference_end = day - pd.Timedelta(days=cfg.window_days)
    reference, current = monitor.samples(data, reference_end, day, cfg)
    columns = [*monitor.numerical, *monitor.categorical]
    assert list(reference.columns) == list(current.columns) == columns
    assert len(current) > 0 and len(reference) > len(current)
    quality = monitor.quality(data, day, cfg.window_days)
    assert quality["days"] == cfg.window_days
    assert quality["missing_share"] == 0.0
    context = MonitorContext(
        settings=settings,
        data=data,
        day=day,
        reference_end=reference_end,
        version="1",
        tags={f"metric.{PRIMARY_METRIC}": "0.5"},
        model=lambda: model,
        logged=lambda days: pd.DataFrame(),
        detect=_mean_shift,
    )
    live = monitor.live(context)
    assert live["prediction_drift"]["source"] == "champion on the window"
    performance = live["performance"]
    assert performance["metric"] == PRIMARY_METRIC
    assert performance["n"] == quality["rows"]
    assert np.isfinite(performance["ratio"])


def test_the_day_source_gives_valid_new_days_and_the_daily_answers(
    model: Any, settings: Settings, data: pd.DataFrame
) -> None:
    source = WORKLOAD.day_source()
    first = data[TIME_COLUMN].max() + pd.Timedelta(days=1)
    new = source.days(settings, first, 3, drift_from=2)
    assert sorted(new[TIME_COLUMN].dt.normalize().unique()) == list(
        pd.date_range(first, periods=3)
    )
    WORKLOAD.validate(pd.concat([data, new], ignore_index=True))
    answers = source.daily_predictions(model, data, new, first)
    assert answers is not None and len(answers) == len(new)
    assert SCORE_COLUMN in answers.columns and LABEL not in answers.columns
