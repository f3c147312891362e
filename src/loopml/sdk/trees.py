"""A LightGBM booster's predictions on a few rows, fast: its trees compiled.

LightGBM's ``predict`` walks its trees through a generic interpreter; for the
few rows of an online request that walk is most of the model's cost (the
demand champion's 222 trees: 61 us for 28 rows; the recsys ranker's 63 trees
on one user's ~110 candidates: 65-120 us). `lleaves <https://github.com/
siboehm/lleaves>`_ compiles a LightGBM model file to native code with LLVM
(``llvmlite``, a wheel: no compiler on the machine): 9 us for either, once
compiled (0.1-0.7 s for these two).

:class:`TreePredictor` predicts with the compiled trees when asked and
``lleaves`` compiles the model, else with LightGBM's own predictor (one
thread, kept across calls: ``Booster.predict`` builds one per call). The
two agree to the last bits of a float64 (they sum the trees in another
order: about 1e-15 relative; ``tests/unit/test_trees.py``), so a served
version may rank two candidates whose scores tie to 1e-15 in the other
order than the batch stage, which predicts with LightGBM.

Compiling grows faster than the model: 0.65 s for the demand champion's
1,554 leaves, 49 s for 500 trees of 63 leaves (31,500 leaves) with lleaves'
inlining, 5.8 s without it (28 rows then take 73 us, against 25 inlined and
250 through LightGBM). So a model of up to :data:`INLINE_LEAVES` leaves is
compiled inlined before the predictor is returned; a larger one without
inlining in a background thread (a daemon: a process that ends does not wait
for it), while LightGBM's predictor answers: a version is never held back
from serving by its compilation.

Compiled models are kept per process by the text of the model (a model
loaded again, e.g. by each test's app, is compiled once).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import threading
from collections import OrderedDict
from concurrent.futures import Future
from typing import Any

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)
FloatArray = npt.NDArray[np.float64]
#: Compiled models kept per process (LRU, by the model text's SHA-256).
KEEP = 16
#: ``LOOPML_COMPILED_TREES=0`` turns compilation off (LightGBM predicts).
SWITCH = "LOOPML_COMPILED_TREES"
#: Models of up to this many leaves in all are compiled inlined, at once.
INLINE_LEAVES = 4_000
_COMPILED: OrderedDict[str, Future[Any]] = OrderedDict()
_LOCK = threading.Lock()


def compiled_trees_on() -> bool:
    """Whether serving compiles trees (``LOOPML_COMPILED_TREES``, on by default)."""
    return os.environ.get(SWITCH, "1").strip().lower() not in {"0", "false", "no"}


class TreePredictor:
    """``booster.predict(matrix, num_threads=1)``, compiled when asked and possible."""

    def __init__(self, booster: Any, compiled: bool = False) -> None:
        """Prepare LightGBM's predictor; compile the trees if ``compiled`` and
        ``LOOPML_COMPILED_TREES`` allows it."""
        self.booster = booster
        self.iteration = int(booster.best_iteration)
        self._lightgbm: Any = None  # kept: Booster.predict builds one per call
        try:
            from lightgbm.basic import _InnerPredictor

            self._lightgbm = _InnerPredictor.from_booster(booster, {"num_threads": 1})
        except (ImportError, AttributeError, TypeError):  # another LightGBM
            pass
        self._native: Any = None
        self._compiling: Future[Any] | None = None
        if compiled and compiled_trees_on():
            self._compiling = _compiled(booster)
            self._compiling.add_done_callback(self._take)

    def _take(self, done: Future[Any]) -> None:
        """Predict with the compiled trees from now on (None: not compiled)."""
        self._native = done.result()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a compilation running in the background; whether compiled."""
        if self._compiling is not None:
            self._native = self._compiling.result(timeout)
        return self.compiled

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


def _compiled(booster: Any) -> Future[Any]:
    """The booster's compilation (kept per process): done at once for a small
    model, else running in the background. Its result is None if it failed."""
    text = booster.model_to_string()  # Booster.predict's trees: the best iteration
    key = hashlib.sha256(text.encode()).hexdigest()
    with _LOCK:
        found = _COMPILED.get(key)
        if found is not None:
            _COMPILED.move_to_end(key)
            return found
        leaves = sum(int(n) for n in re.findall(r"^num_leaves=(\d+)$", text, re.M))
        if leaves <= INLINE_LEAVES:
            future: Future[Any] = Future()
            future.set_result(_compile(text, inline=True))
        else:
            log.info("compiling %d leaves in the background", leaves)
            future = Future()
            threading.Thread(
                target=lambda: future.set_result(_compile(text, inline=False)),
                name="loopml-trees",
                daemon=True,
            ).start()
        _COMPILED[key] = future
        while len(_COMPILED) > KEEP:
            _COMPILED.popitem(last=False)
        return future


def _compile(text: str, inline: bool) -> Any:
    """The model text compiled by lleaves, or None if it cannot be."""
    try:
        import lleaves
    except ImportError as error:
        log.info("trees not compiled (%s): LightGBM predicts", error)
        return None
    try:
        with tempfile.TemporaryDirectory(prefix="loopml-trees-") as scratch:
            path = os.path.join(scratch, "model.txt")
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
            model = lleaves.Model(model_file=path)
            model.compile(finline=inline)
    except Exception as error:  # an unsupported model: LightGBM predicts
        log.warning("trees not compiled (%s): LightGBM predicts", error)
        return None
    return model
