"""The models of the workload: the baseline to beat and the LightGBM model."""

from __future__ import annotations

from collections.abc import Callable

from ..settings import {{ cookiecutter.__class_name }}Settings
from .baseline import BandMedian
from .lightgbm_model import LightGBMRegressor

Model = BandMedian | LightGBMRegressor
#: every model with its default parameters (the contract test runs them all).
MODELS: dict[str, Callable[[], Model]] = {
    "baseline": BandMedian,
    "lightgbm": LightGBMRegressor,
}


def make_model(name: str, cfg: {{ cookiecutter.__class_name }}Settings, seed: int) -> Model:
    """Build a model with the configured parameters.

    Raises:
        KeyError: for an unknown name.
    """
    if name == "baseline":
        return BandMedian(n_bands=cfg.n_bands)
    if name == "lightgbm":
        return LightGBMRegressor(
            n_estimators=cfg.n_estimators,
            learning_rate=cfg.learning_rate,
            num_leaves=cfg.num_leaves,
            seed=seed,
        )
    raise KeyError(f"unknown model {name!r}; known: {sorted(MODELS)}")
