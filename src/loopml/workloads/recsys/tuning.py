"""Tuning the two-stage recommender: its search space and its objective.

A trial fits the ranker on the history before ``evaluate``'s test period,
minus one more ``test_days`` window that serves as validation: NDCG@10 on
that window is the objective, so the test period that judges the tuned
candidate never chose its parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from loopml.sdk.tuning import Report, SearchParam
from loopml.workloads.recsys.config import RecsysSettings
from loopml.workloads.recsys.evaluate import evaluate_recommender, time_split
from loopml.workloads.recsys.models import Recommender
from loopml.workloads.recsys.tables import RecsysData

if TYPE_CHECKING:
    from loopml.core.config import Settings

METRIC = "ndcg_at_10"
#: Ranges around the defaults (200 trees at 0.05; 32 factors, penalty 10).
SEARCH_SPACE: dict[str, SearchParam] = {
    "ranker_n_estimators": SearchParam("int", 50, 400, log=True),
    "ranker_learning_rate": SearchParam("float", 0.01, 0.2, log=True),
    "als_factors": SearchParam("int", 8, 64, log=True),
    "als_regularization": SearchParam("float", 0.1, 50.0, log=True),
}


def with_params(settings: Settings, params: Mapping[str, Any]) -> Settings:
    """Settings whose ``recsys`` section takes ``params`` (validated).

    Raises:
        pydantic.ValidationError: for a value the recsys settings refuse.
    """
    RecsysSettings.model_validate(
        {**RecsysSettings.of(settings).model_dump(), **params}
    )
    return settings.with_section("recsys", dict(params))


def objective(
    settings: Settings,
    data: pd.DataFrame,
    make_model: Callable[[], Recommender],
    report: Report | None = None,
) -> float:
    """NDCG@10 on the validation window before ``evaluate``'s test period.

    Args:
        settings: settings with the trial's parameters applied.
        data: the validated event log.
        make_model: builds the unfitted recommender.
        report: receives ``(1, {"ndcg_at_10": value})``.

    Returns:
        NDCG@10 of the users active in the validation window.
    """
    cfg = RecsysSettings.of(settings)
    tables = RecsysData.from_frame(data)
    history, _ = time_split(tables.interactions, cfg.test_days)
    train, valid = time_split(history, cfg.test_days)
    model = make_model().fit(tables.with_interactions(train))
    metrics = evaluate_recommender(
        model,
        train,
        valid,
        tables.users,
        k_values=(10,),
        cold_threshold=cfg.cold_threshold,
        slice_k=10,
    )
    value = float(metrics[METRIC])
    if report is not None:
        report(1, {METRIC: value})
    return value
