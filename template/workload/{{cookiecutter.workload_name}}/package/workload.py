"""The {{ cookiecutter.workload_name }} workload, as loopml's stages see it.

loopml finds it through the entry point in ``pyproject.toml``
(``[project.entry-points."loopml.workloads"]``), so ``loopml run -w
{{ cookiecutter.workload_name }}`` runs ingest, validate, train, evaluate and
promote on it. Each step has its own module: ``data`` (the raw table),
``schema`` (its contract), ``features``, ``models/`` (the baseline and the
LightGBM model), ``evaluate`` (a time-ordered holdout) and ``pyfunc`` (the
model MLflow logs and serves).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from loopml.sdk.batch import BatchSpec
from loopml.sdk.workload import EvalOutput, TrainOutput, Workload

from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }} import (
    data,
    evaluate,
    features,
    pyfunc,
    schema,
)
from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.config import (
    {{ cookiecutter.__class_name }}Config,
)
from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.models import make_model

if TYPE_CHECKING:
    from loopml.core.config import Settings

log = logging.getLogger(__name__)


class {{ cookiecutter.__class_name }}Workload(Workload):
    """{{ cookiecutter.workload_kind.title() }} workload; its settings come from ``{{ cookiecutter.__env_prefix }}*``."""

    name = "{{ cookiecutter.workload_name }}"
    primary_metric = evaluate.PRIMARY_METRIC
    higher_is_better = evaluate.HIGHER_IS_BETTER
    key_metrics = evaluate.KEY_METRICS
    batch_spec = BatchSpec(
        time_column=data.TIME_COLUMN,
        sort_columns=data.SORT_COLUMNS,
        personal_columns=data.PERSONAL_COLUMNS,
    )

    def __init__(self, config: {{ cookiecutter.__class_name }}Config | None = None) -> None:
        """Use ``config``, or read it from the environment."""
        self.config = config or {{ cookiecutter.__class_name }}Config()

    def load_raw(self, settings: Settings) -> pd.DataFrame:
        """Generate (or load) the raw table with the run's seed."""
        return data.load(self.config, settings.seed)

    def load_day(self, settings: Settings, day: pd.Timestamp) -> pd.DataFrame:
        """One day's batch from the source (``loopml ingest --date``)."""
        return data.load_day(self.config, day, settings.seed)

    def validate(self, raw: pd.DataFrame) -> pd.DataFrame:
        """Check the raw table; raises ``DataValidationError``."""
        return schema.validate_raw(raw)

    def train(self, settings: Settings, data: pd.DataFrame) -> TrainOutput:
        """Fit the LightGBM model on the validated data before the holdout.

        The last ``holdout_days`` days are kept out, so that the promotion
        gate (:meth:`holdout_metrics`) judges every model on days it has not
        seen.
        """
        before, _ = evaluate.split(data, self.config.holdout_days)
        x, y = features.training_set(before, self.config)
        model = make_model("lightgbm", self.config, settings.seed).fit(x, y)
        log.info("trained on %d rows", len(x))
        params = {
            "model": "lightgbm",
            "seed": settings.seed,
            "n_training_rows": len(x),
            **{f"lgbm_{k}": v for k, v in model.get_params().items()},
        }
        return TrainOutput(
            pyfunc.wrap(model, data, self.config),
            params,
            pyfunc.input_example(data, self.config),
        )

    def evaluate(self, settings: Settings, data: pd.DataFrame) -> EvalOutput:
        """Score model and baseline on the same time-ordered holdout."""
        result = evaluate.holdout(data, self.config, settings.seed)
        return EvalOutput(
            metrics=result.metrics,
            figures={"holdout": evaluate.plot(result.predictions)},
        )

    def holdout_metrics(
        self, settings: Settings, data: pd.DataFrame, models: Mapping[str, Any]
    ) -> dict[str, dict[str, float]]:
        """Registered models (and a fresh baseline) scored on the latest holdout."""

        def predictor(model: Any) -> Callable[[pd.DataFrame], Any]:
            return lambda rows: model.predict(None, rows)["prediction"].to_numpy()

        return evaluate.gate_scores(
            data,
            self.config,
            settings.seed,
            {name: predictor(model) for name, model in models.items()},
        )

    def check_model(
        self, settings: Settings, model: Any, example: pd.DataFrame | None
    ) -> list[str]:
        """The model answers its input example with one finite value per row."""
        if example is None or example.empty:
            return ["the model was logged without an input example"]
        try:
            answer = model.predict(None, example)
        except Exception as error:  # any failure is a reason to refuse it
            return [f"the model fails on its input example: {error}"]
        values = pd.to_numeric(answer["prediction"], errors="coerce")
        problems = []
        if len(values) != len(example):
            problems.append(f"{len(values)} answers for {len(example)} rows")
        if not np.isfinite(values.to_numpy(dtype=float)).all():
            problems.append("non-finite predictions on the input example")
        return problems
