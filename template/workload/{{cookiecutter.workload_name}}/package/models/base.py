"""The contract every model follows, the baseline included.

``__init__`` stores its arguments and nothing else (``get_params`` returns
them), ``fit(x, y)`` learns attributes ending in ``_`` and returns ``self``,
``predict`` refuses an unfitted model (loopml's model contract,
``loopml.sdk.contract``). ``tests/unit/test_{{ cookiecutter.workload_name }}_models.py``
holds every model in ``MODELS`` to it.
"""

from __future__ import annotations

import inspect
from typing import Any

from loopml.sdk.contract import check_fitted


class ModelContract:
    """``get_params`` and the fitted check, shared by every model."""

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
