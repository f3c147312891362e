"""The contract every model follows, the baseline included.

``__init__`` stores its arguments and nothing else (``get_params`` returns
them), ``fit(x, y)`` learns attributes ending in ``_`` and returns ``self``,
``predict`` refuses an unfitted model (loopml's model contract,
``loopml.sdk.contract``). ``tests/unit/test_{{ cookiecutter.workload_name }}_models.py``
holds every model in ``MODELS`` to it.

A fitted model also remembers the feature columns it was fitted on
(``feature_columns_``) and predicts from exactly those: a registered model
keeps answering the same after a feature is added to ``features.py``, and
names the columns it lacks after one is removed or renamed.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
from loopml.core.errors import DataValidationError
from loopml.sdk.contract import check_fitted
from loopml.sdk.failures import failure_row


log = logging.getLogger(__name__)

#: The name loopml gives the version under judgement in ``holdout_metrics``.
CHALLENGER = "challenger"


def gate_answers(
    predictors: Mapping[str, Callable[[pd.DataFrame], Any]], rows: pd.DataFrame
) -> dict[str, Any]:
    """Each predictor's answer to the holdout's ``rows``, by name.

    A registered model fitted on features the current code no longer builds
    (removed or renamed since it was trained) cannot answer anywhere: it is
    left out with a warning, so the challenger is judged without it.

    Raises:
        MissingFeaturesError: when the challenger itself lacks features.
    """
    answers = {}
    for name, predict in predictors.items():
        try:
            answers[name] = predict(rows)
        except MissingFeaturesError as error:
            if name == CHALLENGER:
                raise
            log.warning("%s left out of the gate: %s", name, error)
    return answers


class MissingFeaturesError(DataValidationError, ValueError):
    """The features lack columns a fitted model was fitted on.

    The model's fault, not the request's: a feature was removed or renamed
    in ``features.py`` after the model was trained. Retrain and promote.
    """


class ModelContract:
    """What every model shares: parameters, fitted check, fitted columns."""

    def get_params(self) -> dict[str, Any]:
        """The constructor's arguments, by name."""
        names = inspect.signature(type(self).__init__).parameters
        return {name: getattr(self, name) for name in names if name != "self"}

    def check_fitted(self, attribute: str) -> None:
        """Refuse to predict before ``fit`` has set ``attribute``.

        Raises:
            NotFittedError: naming the model.
        """
        check_fitted(self, attribute)

    def remember_features(self, x: pd.DataFrame) -> pd.DataFrame:
        """Keep ``x``'s columns, in order, as ``feature_columns_`` (call in ``fit``).

        Returns:
            ``x`` unchanged.
        """
        self.feature_columns_ = [str(column) for column in x.columns]
        return x

    def fitted_features(self, x: pd.DataFrame) -> pd.DataFrame:
        """The columns of ``x`` the model was fitted on, in the fitted order.

        Columns added since (a new feature) are left out, so the answers are
        those of the model as it was fitted.

        Raises:
            MissingFeaturesError: naming every fitted column ``x`` lacks.
        """
        missing = [c for c in self.feature_columns_ if c not in x.columns]
        if missing:
            name = type(self).__name__
            message = (
                f"{name} was fitted on feature columns the features no longer "
                f"have: {missing} (removed or renamed in features.py since it "
                "was trained); retrain and promote a model on the current features"
            )
            failures = pd.DataFrame(
                [failure_row("fitted_feature_present", c, message) for c in missing]
            )
            raise MissingFeaturesError(message, failures)
        return x[self.feature_columns_]
