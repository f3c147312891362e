"""A LightGBM booster's predictions on a few rows, fast: its trees compiled.

LightGBM's ``predict`` walks its trees through a generic interpreter; for the
few rows of an online request that walk is most of the model's cost (the
demand champion's 222 trees: 61 us for 28 rows; the recsys ranker's 63 trees
on one user's ~110 candidates: 65-120 us). `lleaves <https://github.com/
siboehm/lleaves>`_ compiles a LightGBM model file to native code with LLVM
(``llvmlite``, a wheel: no compiler on the machine): 9 us for either, once
compiled (0.1-0.7 s per model, done when a version is loaded for serving).

:class:`TreePredictor` predicts with the compiled trees when asked and
``lleaves`` compiles the model, else with LightGBM's own predictor (one
thread, kept across calls: ``Booster.predict`` builds one per call). The
two agree to the last bits of a float64 (they sum the trees in another
order: about 1e-15 relative; ``tests/unit/test_trees.py``), so a served
version may rank two candidates whose scores tie to 1e-15 in the other
order than the batch stage, which predicts with LightGBM.

Compiled models are kept per process by the text of the model (a model
loaded again, e.g. by each test's app, is compiled once).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from typing import Any

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)
FloatArray = npt.NDArray[np.float64]
#: Compiled models kept per process (LRU, by the model text's SHA-256).
KEEP = 16
#: ``LOOPML_COMPILED_TREES=0`` turns compilation off (LightGBM predicts).
SWITCH = "LOOPML_COMPILED_TREES"
_COMPILED: OrderedDict[str, Any] = OrderedDict()
_LOCK = threading.Lock()


def compiled_trees_on() -> bool:
    """Whether serving compiles trees (``LOOPML_COMPILED_TREES``, on by default)."""
    return os.environ.get(SWITCH, "1").strip().lower() not in {"0", "false", "no"}


class TreePredictor:
    """``booster.predict(matrix, num_threads=1)``, compiled when asked and possible."""

    def __init__(self, booster: Any, compiled: bool = False) -> None:
        """Prepare LightGBM's predictor; compile the trees if ``compiled``."""
        self.booster = booster
        self.iteration = int(booster.best_iteration)
        self._lightgbm: Any = None
        try:
            from lightgbm.basic import _InnerPredictor

            self._lightgbm = _InnerPredictor.from_booster(booster, {"num_threads": 1})
        except (ImportError, AttributeError, TypeError):  # another LightGBM
            self._lightgbm = None
        self._native: Any = _compile(booster) if compiled else None

    @property
    def compiled(self) -> bool:
        """Whether predictions come from the compiled trees."""
        return self._native is not None

    def __call__(self, matrix: FloatArray) -> FloatArray:
        """The booster's predictions of ``matrix``'s rows (float64)."""
        if self._native is not None:
            data = np.ascontiguousarray(matrix, dtype=np.float64)
            return np.asarray(self._native.predict(data, n_jobs=1), dtype=np.float64)
        if self._lightgbm is None:
            raw = self.booster.predict(matrix, num_threads=1)
        else:
            # Booster.predict's default: its best iteration (0 or less: all).
            raw = self._lightgbm.predict(matrix, num_iteration=self.iteration)
        return np.asarray(raw, dtype=np.float64)


def _compile(booster: Any) -> Any:
    """The booster compiled by lleaves (kept per process), or None if it cannot be."""
    try:
        import lleaves
    except ImportError as error:
        log.info("trees not compiled (%s): LightGBM predicts", error)
        return None
    # What Booster.predict uses: the best iteration if any, else every tree.
    text = booster.model_to_string()
    key = hashlib.sha256(text.encode()).hexdigest()
    with _LOCK:
        found = _COMPILED.get(key)
        if found is not None:
            _COMPILED.move_to_end(key)
            return found
        try:
            with tempfile.TemporaryDirectory(prefix="loopml-trees-") as scratch:
                path = os.path.join(scratch, "model.txt")
                with open(path, "w", encoding="utf-8") as handle:
                    handle.write(text)
                model = lleaves.Model(model_file=path)
                model.compile()
        except Exception as error:  # an unsupported model: LightGBM predicts
            log.warning("trees not compiled (%s): LightGBM predicts", error)
            return None
        _COMPILED[key] = model
        while len(_COMPILED) > KEEP:
            _COMPILED.popitem(last=False)
        return model
