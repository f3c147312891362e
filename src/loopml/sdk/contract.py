"""The contract every model follows, baselines included (scikit-learn's habit).

* ``__init__`` stores its arguments as same-named attributes and nothing else;
  ``get_params()`` returns them, so ``type(m)(**m.get_params())`` rebuilds it.
* ``fit(...)`` learns, sets attributes whose names end in ``_`` (never touches
  the parameters) and returns ``self``.
* ``predict`` / ``recommend`` on an unfitted model raise
  :class:`~loopml.core.errors.NotFittedError` (see :func:`check_fitted`).

:func:`registered_models` lists every model of every registered workload
(``Workload.models()``), so one
parametrised test (``tests/model/test_contract.py``) holds them all to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from loopml.core.errors import NotFittedError


@runtime_checkable
class Model(Protocol):
    """What every model shares, whatever it predicts."""

    def get_params(self) -> dict[str, object]:
        """The constructor arguments."""
        ...


def check_fitted(model: object, attribute: str) -> None:
    """Refuse a model that has not learned ``attribute`` yet.

    Args:
        model: the model asked to predict or recommend.
        attribute: a ``_``-suffixed attribute that ``fit`` sets.

    Raises:
        NotFittedError: naming the model and what to call first.
    """
    if getattr(model, attribute, None) is None:
        raise NotFittedError(
            f"{type(model).__name__} is not fitted yet: call fit(...) before "
            "predicting or recommending"
        )


def registered_models() -> dict[str, Callable[[], Any]]:
    """Every model of every registered workload as ``"<workload>.<model>"``."""
    from loopml.sdk.workload import get_workload, workload_names

    models: dict[str, Callable[[], Any]] = {}
    for workload in workload_names():
        registry = get_workload(workload).models()
        models.update({f"{workload}.{name}": f for name, f in registry.items()})
    return models
