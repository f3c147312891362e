"""The models: two simple alternatives to beat, and the LightGBM model."""

from __future__ import annotations

from collections.abc import Callable

from .baseline import PriorRate
from .lightgbm_model import CalibratedLightGBM
from .logistic import Logistic
from ..settings import {{ cookiecutter.__class_name }}Settings

Model = PriorRate | Logistic | CalibratedLightGBM
#: every model with its default parameters (the contract test runs them all).
MODELS: dict[str, Callable[[], Model]] = {
    "prior_rate": PriorRate,
    "logistic": Logistic,
    "lightgbm": CalibratedLightGBM,
}
#: the simple alternatives the model must beat (the strongest is the gate's bar).
ALTERNATIVES = ("prior_rate", "logistic")


def make_model(name: str, cfg: {{ cookiecutter.__class_name }}Settings, seed: int) -> Model:
    """Build a model with the configured parameters.

    Raises:
        KeyError: for an unknown name.
    """
    if name == "prior_rate":
        return PriorRate()
    if name == "logistic":
        return Logistic(c=cfg.logistic_c)
    if name == "lightgbm":
        return CalibratedLightGBM(
            n_estimators=cfg.n_estimators,
            learning_rate=cfg.learning_rate,
            num_leaves=cfg.num_leaves,
            min_child_samples=cfg.min_child_samples,
            calibration_share=cfg.calibration_share,
            calibration=cfg.calibration,
            seed=seed,
        )
    raise KeyError(f"unknown model {name!r}; known: {sorted(MODELS)}")
