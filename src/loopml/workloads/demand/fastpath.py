"""Demand forecasts of a few rows without pandas: state arrays, one float matrix.

``features.build_features`` joins frames, derives calendar columns with the
``.dt`` accessors and makes ``category`` columns: right for the millions of
training rows, about 16 ms for the one row of an online request. Here the
same features come from numpy arrays prepared once per model version:

* :class:`SeriesStates`: each series' origin state (``lag_k``, rolling
  means, ``price_mean_28``, ``hist_0..27``) and last price as one row of a
  float matrix, with the series' origin day;
* :class:`FastForecaster`: the row of every model input, in the model's
  column order, with ``store_id`` / ``item_id`` mapped to the category codes
  the booster was fitted with (an unseen value is NaN, as LightGBM makes of a
  pandas category it does not know), then the booster's own ``predict`` on
  that float matrix with one thread.

``tests/unit/test_demand_fastpath.py`` proves the matrix equal to
``build_features`` (then to the forecaster's pandas ``predict``) on random
rows: every horizon, bundled and online states, unknown series, missing
prices.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from loopml.workloads.demand.features import FEATURE_COLUMNS, HIST_COLUMNS, LAGS

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Key = tuple[str, str]

#: The per-series numbers, in the order of a state row (Feast's order too).
STATE_NUMBERS: list[str] = [f"lag_{k}" for k in LAGS]
STATE_NUMBERS += ["rmean_7", "rmean_28", "rstd_28", "price_mean_28", *HIST_COLUMNS]
STATE_NUMBERS += ["last_price"]
_AT = {name: i for i, name in enumerate(STATE_NUMBERS)}
_HIST0 = _AT["hist_0"]
_LAST_PRICE = _AT["last_price"]
_PRICE_MEAN = _AT["price_mean_28"]
#: Model inputs copied from the state as they are.
_COPIED = [f"lag_{k}" for k in LAGS] + ["rmean_7", "rmean_28", "rstd_28"]
_EPOCH = dt.date(1970, 1, 1).toordinal()
#: The four same-weekday offsets of ``same_weekday_mean4``.
_WEEKS = np.arange(0, 28, 7)


def day_number(day: dt.date) -> int:
    """Days since 1970-01-01 (a datetime counts by its date)."""
    if isinstance(day, dt.datetime):
        day = day.date()
    return day.toordinal() - _EPOCH


def timestamp_day(stamp: pd.Timestamp) -> int:
    """Days since 1970-01-01 of a timestamp's date."""
    return day_number(pd.Timestamp(stamp).date())


class SeriesStates:
    """Series state rows: ``values[index[(store, item)]]`` is one series."""

    def __init__(self, keys: Sequence[Key], values: FloatArray) -> None:
        """Hold ``values`` (one row of :data:`STATE_NUMBERS` per key)."""
        self.index: dict[Key, int] = {k: i for i, k in enumerate(keys)}
        self.values = np.ascontiguousarray(values, dtype=np.float64)
        self.missing = np.full(len(STATE_NUMBERS), np.nan)

    @classmethod
    def of(cls, state: pd.DataFrame) -> SeriesStates:
        """From an ``origin_state`` frame (plus ``last_price``)."""
        keys = list(
            zip(
                state["store_id"].astype(str), state["item_id"].astype(str), strict=True
            )
        )
        return cls(keys, state[STATE_NUMBERS].to_numpy(dtype=np.float64))

    def rows(self, keys: Sequence[Key]) -> FloatArray:
        """The state row of each key (NaN for a series it does not have)."""
        at = self.index
        values, missing = self.values, self.missing
        return np.array([values[at[k]] if k in at else missing for k in keys])


class FastForecaster:
    """A fitted LightGBM forecaster, fed float matrices built from state rows."""

    def __init__(self, forecaster: Any) -> None:
        """Prepare the column order, the category codes and the booster."""
        booster = forecaster.model_.booster_
        names: list[str] = list(forecaster.feature_names_)
        if sorted(names) != sorted(FEATURE_COLUMNS):
            raise ValueError(f"unexpected model inputs {names}")
        categories: dict[str, list[str]] = dict(forecaster.categories_)
        # LightGBM re-maps a frame's categories onto the lists it was fitted
        # with (pandas_categorical, in the order of the category columns).
        fitted = getattr(booster, "pandas_categorical", None) or []
        category_columns = [n for n in names if n in categories]
        for column, values in zip(category_columns, fitted, strict=False):
            categories[column] = [str(v) for v in values]
        self.codes: dict[str, dict[str, float]] = {
            column: {v: float(i) for i, v in enumerate(values)}
            for column, values in categories.items()
        }
        self.booster = booster
        self.names = names
        self.width = len(names)
        self.col = {name: i for i, name in enumerate(names)}
        self._copied_from = np.array([_AT[n] for n in _COPIED], dtype=np.intp)
        self._copied_to = np.array([self.col[n] for n in _COPIED], dtype=np.intp)
        cal = ["dow", "dom", "month", "doy", "weekofyear"]
        self._calendar_to = np.array([self.col[n] for n in cal], dtype=np.intp)
        self._calendar: dict[int, tuple[int, int, int, int, int]] = {}

    def calendar(self, days: Sequence[int]) -> FloatArray:
        """``dow, dom, month, doy, weekofyear`` of each day number."""
        known = self._calendar
        out = []
        for day in days:
            parts = known.get(day)
            if parts is None:
                date = dt.date.fromordinal(day + _EPOCH)
                parts = (
                    date.weekday(),
                    date.day,
                    date.month,
                    date.timetuple().tm_yday,
                    date.isocalendar()[1],
                )
                if len(known) < 100_000:
                    known[day] = parts
            out.append(parts)
        return np.array(out, dtype=np.float64).reshape(len(out), 5)

    def matrix(
        self,
        stores: Sequence[str],
        items: Sequence[str],
        days: Sequence[int],
        prices: FloatArray,
        promos: FloatArray,
        holidays: FloatArray,
        states: FloatArray,
        origins: IntArray,
    ) -> FloatArray:
        """The model inputs of each row, in the model's column order.

        Args:
            stores: store ids.
            items: item ids.
            days: target day numbers (:func:`day_number`).
            prices: planned prices, NaN for the series' last price.
            promos: 0/1.
            holidays: 0/1.
            states: each row's state row (:data:`STATE_NUMBERS`).
            origins: each row's origin day number.

        Raises:
            ValueError: a target day not after its origin.
        """
        n = len(days)
        col = self.col
        out = np.empty((n, self.width), dtype=np.float64)
        store_codes, item_codes = self.codes["store_id"], self.codes["item_id"]
        out[:, col["store_id"]] = [store_codes.get(s, np.nan) for s in stores]
        out[:, col["item_id"]] = [item_codes.get(i, np.nan) for i in items]
        horizon = np.asarray(days, dtype=np.int64) - origins
        if (horizon < 1).any():
            raise ValueError("every target date must be after its forecast origin")
        out[:, col["horizon"]] = horizon
        out[:, self._calendar_to] = self.calendar(days)
        out[:, col["holiday"]] = holidays
        price = np.where(np.isnan(prices), states[:, _LAST_PRICE], prices)
        out[:, col["price"]] = price
        out[:, col["promo"]] = promos
        out[:, col["price_ratio"]] = price / states[:, _PRICE_MEAN]
        out[:, self._copied_to] = states[:, self._copied_from]
        # Most recent same weekday on or before the origin: k = 7*ceil(h/7) - h.
        back = (-horizon) % 7
        same = states[np.arange(n)[:, None], _HIST0 + back[:, None] + _WEEKS]
        out[:, col["same_weekday_last"]] = same[:, 0]
        out[:, col["same_weekday_mean4"]] = same.mean(axis=1)
        return out

    def predict(self, matrix: FloatArray) -> FloatArray:
        """The booster's forecasts, clipped at zero (as ``LightGBMForecaster``)."""
        raw = self.booster.predict(matrix, num_threads=1)
        return np.clip(np.asarray(raw, dtype=np.float64), 0.0, None)


def fast_forecaster(forecaster: Any) -> FastForecaster | None:
    """The fast path of a fitted LightGBM forecaster; None for other models."""
    if not hasattr(forecaster, "model_") or not hasattr(forecaster, "categories_"):
        return None
    if not hasattr(getattr(forecaster, "model_", None), "booster_"):
        return None
    return FastForecaster(forecaster)
