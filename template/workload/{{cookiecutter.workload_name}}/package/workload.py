"""The {{ cookiecutter.workload_name }} workload, as loopml sees it.

loopml finds it through the entry point in ``pyproject.toml``
(``[project.entry-points."loopml.workloads"]``), so ``loopml run -w
{{ cookiecutter.workload_name }}`` runs ingest, validate, train, evaluate and
promote on it, and the capabilities below plug it into the rest of the loop:
``online_scorer`` (``loopml serve``), ``batch_scorer`` (``loopml batch``),
``monitor`` (``loopml monitor``) and ``day_source`` (``loopml replay``);
the tuning methods give it ``loopml tune`` (which ``loopml run`` also runs
before train, once per data version).
Each step has its own module: ``settings``, ``data`` (the raw table),
``schema`` (its contract), ``features``, ``models/``, ``evaluate`` (a
time-ordered holdout), ``tuning`` (search space and objective), ``pyfunc``
(the model MLflow logs), ``online``, ``batch``, ``monitoring`` and ``days``.
Workload code imports only ``loopml.sdk`` and ``loopml.core`` (``make lint``
checks it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import pandas as pd
from loopml.core.config import Settings
from loopml.sdk.batch import BatchSpec, DailyBatch
from loopml.sdk.tuning import Report, SearchParam
from loopml.sdk.workload import EvalOutput, TrainOutput, Workload
from pydantic import BaseModel

from . import data as source
from . import evaluate, features, pyfunc, schema, tuning
from .batch import {{ cookiecutter.__class_name }}BatchScorer
from .days import {{ cookiecutter.__class_name }}DaySource
from .models import MODELS, make_model
from .monitoring import {{ cookiecutter.__class_name }}Monitor
from .online import {{ cookiecutter.__class_name }}OnlineScorer
from .settings import {{ cookiecutter.__class_name }}Settings

log = logging.getLogger(__name__)


class {{ cookiecutter.__class_name }}Workload(Workload):
{%- if cookiecutter.workload_kind == "classification" %}
    """Churn: the calibrated probability that a subscriber cancels at renewal."""
{%- else %}
    """Delivery time: the minutes an order will take (regression)."""
{%- endif %}

    name = "{{ cookiecutter.workload_name }}"
    settings_class: ClassVar[type[BaseModel] | None] = {{ cookiecutter.__class_name }}Settings
    primary_metric = evaluate.PRIMARY_METRIC
    higher_is_better = evaluate.HIGHER_IS_BETTER
    key_metrics = evaluate.KEY_METRICS
    guard_metrics: ClassVar[dict[str, bool]] = evaluate.GUARD_METRICS
    batch_spec: ClassVar[BatchSpec] = BatchSpec(
        time_column=source.TIME_COLUMN,
        sort_columns=source.SORT_COLUMNS,
        personal_columns=source.PERSONAL_COLUMNS,
    )
{%- if cookiecutter.workload_kind == "classification" %}
    intended_use = (
        "Ranks the subscribers up for renewal by their probability of "
        "cancelling, so a retention team calls the riskiest first; the "
        "probability is calibrated, so it can be read as a rate."
    )
    limitations = (
        "Learns from the plans, channels and behaviour it saw; a new plan or "
        "a price change outside the training range is not anticipated. The "
        "label uses a fixed threshold (`threshold`), not a cost trade-off."
    )
{%- else %}
    intended_use = (
        "Estimates how many minutes an order will take, to promise a "
        "delivery time and plan couriers; one estimate per order."
    )
    limitations = (
        "A mean estimate (no interval). Learns from the distances, loads and "
        "weather it saw; a larger delivery area or a new kind of order is "
        "not anticipated (the monitor watches the inputs for that)."
    )
{%- endif %}

    # Data -----------------------------------------------------------------

    def load_raw(self, settings: Settings) -> pd.DataFrame:
        """Generate (or load) the raw table with the run's seed."""
        cfg = {{ cookiecutter.__class_name }}Settings.of(settings)
        return source.load(cfg, settings.seed)

    def load_day(self, settings: Settings, day: pd.Timestamp) -> pd.DataFrame:
        """One day's batch from the source (``loopml ingest --date``)."""
        cfg = {{ cookiecutter.__class_name }}Settings.of(settings)
        return source.load_day(cfg, day, settings.seed)

    def validate(self, raw: pd.DataFrame) -> pd.DataFrame:
        """Check the raw table; raises ``DataValidationError``."""
        return schema.validate_raw(raw)

    def validate_batch(
        self, settings: Settings, raw: pd.DataFrame, batch: DailyBatch
    ) -> pd.DataFrame:
        """Check the table and the new days of a daily batch (volume, no gap)."""
        cfg = {{ cookiecutter.__class_name }}Settings.of(settings)
        return schema.validate_raw(
            raw,
            new_days=batch.days,
            reference_rows_per_day=batch.reference_rows_per_day,
            min_rows_ratio=cfg.min_rows_ratio,
            max_rows_ratio=cfg.max_rows_ratio,
        )

    # Training and evaluation ------------------------------------------------

    def models(self) -> Mapping[str, Callable[[], Any]]:
        """Every model with its default parameters (baselines too)."""
        return MODELS

    def train(self, settings: Settings, data: pd.DataFrame) -> TrainOutput:
        """Fit the model on the validated data before the holdout.

        The last ``holdout_days`` days are kept out, so that the promotion
        gate (:meth:`holdout_metrics`) judges every model on days it has not
        seen.
        """
        cfg = {{ cookiecutter.__class_name }}Settings.of(settings)
        before, _ = evaluate.split(data, cfg.holdout_days)
        x, y = features.training_set(before, cfg)
        model = make_model("lightgbm", cfg, settings.seed).fit(x, y)
        log.info("trained on %d rows", len(x))
        params = {
            "model": "lightgbm",
            "seed": settings.seed,
            "n_training_rows": len(x),
            "train_until": str(pd.Timestamp(before[source.TIME_COLUMN].max()).date()),
            **{f"lgbm_{k}": v for k, v in model.get_params().items()},
        }
        return TrainOutput(
            pyfunc.wrap(model, data, cfg), params, pyfunc.input_example(data, cfg)
        )

    def evaluate(self, settings: Settings, data: pd.DataFrame) -> EvalOutput:
        """Score the model and the simple alternatives on the same holdout."""
        cfg = {{ cookiecutter.__class_name }}Settings.of(settings)
        result = evaluate.holdout(data, cfg, settings.seed)
        return EvalOutput(
            metrics=result.metrics,
            figures={"holdout": evaluate.plot(result.predictions)},
        )

    def holdout_metrics(
        self, settings: Settings, data: pd.DataFrame, models: Mapping[str, Any]
    ) -> dict[str, dict[str, float]]:
        """Registered models (and a fresh baseline) scored on the latest holdout."""

        def predictor(model: Any) -> Callable[[pd.DataFrame], Any]:
            wrapped = pyfunc.python_model(model)
            return lambda rows: wrapped.predict(None, rows)[pyfunc.SCORE_COLUMN]

        cfg = {{ cookiecutter.__class_name }}Settings.of(settings)
        return evaluate.gate_scores(
            data,
            cfg,
            settings.seed,
            {name: predictor(model) for name, model in models.items()},
        )

    def check_model(
        self, settings: Settings, model: Any, example: pd.DataFrame | None
    ) -> list[str]:
        """The model answers its input example with one valid value per row."""
        if example is None or example.empty:
            return ["the model was logged without an input example"]
        try:
            answer = pyfunc.python_model(model).predict(None, example)
        except Exception as error:  # any failure is a reason to refuse it
            return [f"the model fails on its input example: {error}"]
        return pyfunc.check_answer(answer, len(example))

    # Tuning (``loopml tune``) -----------------------------------------------

    def search_space(self, settings: Settings) -> dict[str, SearchParam]:
        """The LightGBM settings ``loopml tune`` searches (``tuning.py``)."""
        return dict(tuning.SEARCH_SPACE)

    def with_params(self, settings: Settings, params: Mapping[str, Any]) -> Settings:
        """Settings with ``params`` laid over the workload's section."""
        return tuning.with_params(settings, params)

    def current_params(self, settings: Settings) -> dict[str, Any]:
        """The values ``settings`` give the searched parameters."""
        return tuning.current_params(settings)

    def tune_steps(self, settings: Settings) -> int:
        """One report per tuning fold, so ASHA can stop a trial between folds."""
        return settings.tune.n_folds

    def tune_objective(
        self,
        settings: Settings,
        data: pd.DataFrame,
        params: Mapping[str, Any],
        report: Report | None = None,
    ) -> float:
        """The primary metric of ``params`` on folds before the holdout."""
        return tuning.objective(self.with_params(settings, params), data, report)

    # Capabilities -----------------------------------------------------------

    def online_scorer(self) -> {{ cookiecutter.__class_name }}OnlineScorer:
        """Request rows in, answers out (``loopml serve``)."""
        return {{ cookiecutter.__class_name }}OnlineScorer()

    def batch_scorer(self) -> {{ cookiecutter.__class_name }}BatchScorer:
        """The daily batch (``loopml batch``)."""
        return {{ cookiecutter.__class_name }}BatchScorer()

    def monitor(self) -> {{ cookiecutter.__class_name }}Monitor:
        """Drift, data quality and live performance (``loopml monitor``)."""
        return {{ cookiecutter.__class_name }}Monitor()

    def day_source(self) -> {{ cookiecutter.__class_name }}DaySource:
        """New days of the source (``loopml replay``)."""
        return {{ cookiecutter.__class_name }}DaySource()
