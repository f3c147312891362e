"""Compiled trees (loopml.sdk.trees) predict what LightGBM predicts."""

from __future__ import annotations

import threading

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from loopml.sdk import trees
from loopml.sdk.trees import TreePredictor


def _data(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(
        {
            "shop": pd.Categorical(rng.integers(0, 8, n).astype(str)),
            "a": rng.normal(size=n),
            "b": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
            "c": rng.integers(0, 5, n).astype(float),
        }
    )
    y = (
        2.0 * x["a"].to_numpy()
        + np.nan_to_num(x["b"].to_numpy())
        + x["shop"].cat.codes.to_numpy() % 3
        + rng.normal(scale=0.1, size=n)
    )
    return x, np.exp(y / 4)


def _matrix(x: pd.DataFrame) -> np.ndarray:
    """The frame as LightGBM sees it: category codes as floats (NaN unseen)."""
    out = x.copy()
    out["shop"] = x["shop"].cat.codes.astype(float).where(x["shop"].notna())
    return out.to_numpy(dtype=np.float64)


@pytest.fixture(scope="module")
def booster() -> lgb.Booster:
    x, y = _data(3_000)
    model = lgb.LGBMRegressor(
        objective="tweedie", n_estimators=40, num_leaves=15, verbose=-1
    )
    model.fit(x, y)
    return model.booster_


def test_compiled_trees_equal_lightgbm_to_the_last_bits(booster: lgb.Booster) -> None:
    x, _ = _data(500, seed=1)
    matrix = _matrix(x)
    matrix[:7, 0] = np.nan  # a category the model never saw
    matrix[7:9, 1] = np.nan
    compiled = TreePredictor(booster, compiled=True)
    plain = TreePredictor(booster)
    assert compiled.compiled and not plain.compiled
    expected = booster.predict(matrix, num_threads=1)
    np.testing.assert_array_equal(plain(matrix), expected)
    np.testing.assert_allclose(compiled(matrix), expected, rtol=1e-12, atol=0)
    # one row, and a non-contiguous matrix (a column order applied)
    np.testing.assert_allclose(compiled(matrix[:1]), expected[:1], rtol=1e-12)
    fortran = np.asfortranarray(matrix)
    np.testing.assert_allclose(compiled(fortran), expected, rtol=1e-12)


def test_compiled_trees_keep_the_best_iteration(booster: lgb.Booster) -> None:
    """A booster that stopped early predicts with its best iteration: so do they."""
    stopped = lgb.Booster(model_str=booster.model_to_string())
    stopped.best_iteration = 12  # as early stopping leaves it
    matrix = _matrix(_data(300, seed=3)[0])
    expected = stopped.predict(matrix, num_threads=1)
    assert not np.allclose(expected, stopped.predict(matrix, num_iteration=-1))
    np.testing.assert_allclose(
        TreePredictor(stopped, compiled=True)(matrix), expected, rtol=1e-12
    )
    np.testing.assert_array_equal(TreePredictor(stopped)(matrix), expected)


def test_a_model_is_compiled_once_per_process(booster: lgb.Booster) -> None:
    first = TreePredictor(booster, compiled=True)
    again = TreePredictor(lgb.Booster(model_str=booster.model_to_string()), True)
    assert first._native is again._native


def test_without_lleaves_lightgbm_predicts(
    booster: lgb.Booster, monkeypatch: pytest.MonkeyPatch
) -> None:
    import builtins

    real = builtins.__import__

    def no_lleaves(name: str, *args: object, **kwargs: object) -> object:
        if name == "lleaves":
            raise ImportError("no lleaves here")
        return real(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_lleaves)
    fresh = lgb.Booster(model_str=booster.model_to_string())
    fresh.best_iteration = 23  # another model text: not compiled in this process
    predictor = TreePredictor(fresh, compiled=True)
    assert not predictor.compiled
    matrix = _matrix(_data(50, seed=4)[0])
    np.testing.assert_array_equal(
        predictor(matrix), fresh.predict(matrix, num_threads=1)
    )


def test_a_large_model_compiles_in_the_background(
    booster: lgb.Booster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above INLINE_LEAVES: LightGBM answers until the compiled trees are ready,
    and the compilation runs in a daemon thread (a process need not wait)."""
    monkeypatch.setattr(trees, "INLINE_LEAVES", 0)
    release = threading.Event()
    real = trees._compile
    seen: dict[str, object] = {}

    def held(text: str, inline: bool) -> object:
        seen.update(inline=inline, daemon=threading.current_thread().daemon)
        assert release.wait(60)
        return real(text, inline)

    monkeypatch.setattr(trees, "_compile", held)
    other = lgb.Booster(model_str=booster.model_to_string())
    other.best_iteration = 17  # another model text: not compiled yet
    predictor = TreePredictor(other, compiled=True)
    matrix = _matrix(_data(200, seed=6)[0])
    expected = other.predict(matrix, num_threads=1)
    assert not predictor.compiled  # still compiling: LightGBM's predictions
    np.testing.assert_array_equal(predictor(matrix), expected)
    release.set()
    assert predictor.wait(timeout=120)
    assert seen == {"inline": False, "daemon": True}
    np.testing.assert_allclose(predictor(matrix), expected, rtol=1e-12)


def test_the_switch_turns_compilation_off(
    booster: lgb.Booster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(trees.SWITCH, "0")
    predictor = TreePredictor(booster, compiled=True)
    assert not predictor.compiled and not predictor.wait()
    matrix = _matrix(_data(50, seed=7)[0])
    np.testing.assert_array_equal(
        predictor(matrix), booster.predict(matrix, num_threads=1)
    )
