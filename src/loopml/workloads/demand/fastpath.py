"""Demand forecasts of a few rows without pandas: state arrays, one float matrix.

``features.build_features`` joins frames, derives calendar columns with the
``.dt`` accessors and makes ``category`` columns: right for the millions of
training rows, about 16 ms for the one row of an online request. Here the
same features come from numpy arrays prepared once per model version:

* :class:`SeriesStates`: each series' origin state (``lag_k``, rolling
  means, ``price_mean_28``, ``hist_0..27``) and last price as one row of a
  float matrix (the bundled state; the online store's rows come in the same
  order, :data:`STATE_NUMBERS`);
* :class:`FastForecaster`: each request row's model inputs, computed with
  plain Python floats from its series' share (:meth:`~FastForecaster.series`:
  ``store_id`` / ``item_id`` mapped to the category codes the booster was
  fitted with, an unseen value NaN as LightGBM makes of a pandas category it
  does not know), stacked into one float matrix in the model's column order,
  then the booster's trees on it, compiled to native code
  (:mod:`loopml.sdk.trees`; LightGBM's own predictor with one thread when
  they cannot be).

``tests/unit/test_demand_fastpath.py`` proves the matrix equal to
``build_features`` (then to the forecaster's pandas ``predict``) on random
rows: every horizon, bundled and online states, unknown series, missing
prices.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from loopml.sdk.trees import TreePredictor
from loopml.workloads.demand.features import FEATURE_COLUMNS, HIST_COLUMNS, LAGS

log = logging.getLogger(__name__)
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Key = tuple[str, str]
#: One series' share of a row: store code, item code, the state inputs copied
#: as they are (``lag_k``, ``rmean_7``, ``rmean_28``, ``rstd_28``),
#: ``price_mean_28``, ``last_price`` and ``hist_0..27``.
Series = tuple[float, float, list[float], float, float, list[float]]

#: The per-series numbers, in the order of a state row (Feast's order too).
STATE_NUMBERS: list[str] = [f"lag_{k}" for k in LAGS]
STATE_NUMBERS += ["rmean_7", "rmean_28", "rstd_28", "price_mean_28", *HIST_COLUMNS]
STATE_NUMBERS += ["last_price"]
_AT = {name: i for i, name in enumerate(STATE_NUMBERS)}
_HIST0 = _AT["hist_0"]
_LAST_PRICE = _AT["last_price"]
_PRICE_MEAN = _AT["price_mean_28"]
#: Model inputs copied from the state as they are, in FEATURE_COLUMNS order.
_COPIED = [f"lag_{k}" for k in LAGS] + ["rmean_7", "rmean_28", "rstd_28"]
#: How many of FEATURE_COLUMNS ``FastForecaster.inputs`` computes: the keys,
#: horizon, calendar, price and promo columns (12), the copied state inputs
#: and the two same-weekday columns. A feature appended after them
#: (docs/adding-a-feature.md) is not one of them, whenever this module is
#: first imported.
_N_FAST = 12 + len(_COPIED) + 2
if FEATURE_COLUMNS[12 : _N_FAST - 2] != _COPIED:  # FastForecaster.inputs' order
    raise ImportError("FEATURE_COLUMNS changed: update FastForecaster.inputs")
_EPOCH = dt.date(1970, 1, 1).toordinal()
#: The model inputs :meth:`FastForecaster.inputs` computes, frozen at import: a
#: model fitted with other inputs (a feature added as docs/adding-a-feature.md
#: shows) is served by the frame path until ``inputs`` learns the new column.
FAST_COLUMNS: tuple[str, ...] = tuple(FEATURE_COLUMNS[:_N_FAST])


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
        self.values = np.array(values, dtype=np.float64, order="C")  # a copy
        self.values.setflags(write=False)
        self.missing = np.full(len(STATE_NUMBERS), np.nan)
        self.missing.setflags(write=False)
        #: One view per row, made once: the same object each time a series
        #: is asked for, which :meth:`FastForecaster.series` recognises.
        self.views: list[FloatArray] = list(self.values)

    @classmethod
    def of(cls, state: pd.DataFrame) -> SeriesStates:
        """From an ``origin_state`` frame (plus ``last_price``)."""
        keys = list(
            zip(
                state["store_id"].astype(str), state["item_id"].astype(str), strict=True
            )
        )
        return cls(keys, state[STATE_NUMBERS].to_numpy(dtype=np.float64))

    def row(self, key: Key) -> FloatArray:
        """The state row of a key (NaN for a series it does not have)."""
        at = self.index.get(key)
        return self.missing if at is None else self.views[at]

    def rows(self, keys: Sequence[Key]) -> FloatArray:
        """The state row of each key (NaN for a series it does not have)."""
        at = self.index
        values, missing = self.values, self.missing
        return np.array([values[at[k]] if k in at else missing for k in keys])


class FastForecaster:
    """A fitted LightGBM forecaster, fed float matrices built from state rows."""

    def __init__(self, forecaster: Any, compiled: bool = True) -> None:
        """Prepare the column order, the category codes and the booster.

        ``compiled``: predict with the trees compiled (:mod:`loopml.sdk.trees`)
        when ``LOOPML_COMPILED_TREES`` allows it.
        """
        booster = forecaster.model_.booster_
        names: list[str] = list(forecaster.feature_names_)
        if sorted(names) != sorted(FAST_COLUMNS):
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
        self._copied_from = [_AT[n] for n in _COPIED]
        order = [FAST_COLUMNS.index(n) for n in names]
        self._order = None if order == sorted(order) else np.array(order)
        self._calendar: dict[int, tuple[int, int, int, int, int]] = {}
        self._series: dict[tuple[str, str, bytes], Series] = {}
        self._last: dict[Key, tuple[FloatArray, Series]] = {}
        # LightGBM's trees compiled to native code (sdk.trees), or its own
        # predictor with one thread, kept for every call.
        self._predictor = TreePredictor(booster, compiled=compiled)

    def series(self, store: str, item: str, state: FloatArray) -> Series:
        """What every row of one series shares (see :data:`Series`).

        Kept per (series, state bytes): a request names a few dozen series
        whose state changes once a day, so most requests find theirs here.
        The lists in a :data:`Series` are only ever read.
        """
        last = self._last.get((store, item))
        if last is not None and last[0] is state:  # the same read-only array
            return last[1]
        key = (store, item, state.tobytes())
        found = self._series.get(key)
        if found is not None:
            self._remember(store, item, state, found)
            return found
        values = state.tolist()
        made = (
            self.codes["store_id"].get(store, math.nan),
            self.codes["item_id"].get(item, math.nan),
            [values[i] for i in self._copied_from],
            values[_PRICE_MEAN],
            values[_LAST_PRICE],
            values[_HIST0 : _HIST0 + len(HIST_COLUMNS)],
        )
        if len(self._series) >= 100_000:
            self._series.clear()
        self._series[key] = made
        self._remember(store, item, state, made)
        return made

    def _remember(self, store: str, item: str, state: FloatArray, made: Series) -> None:
        """Answer the next call with this very ``state`` object without hashing it.

        The state rows a service hands in are its bundled rows' views
        (:attr:`SeriesStates.views`) and its cached online reads: the same
        objects request after request, read-only, so the object names the
        state (kept here, so its id is not reused). A writable array could
        change in place: it is looked up by its bytes every time.
        """
        if state.flags.writeable:
            return
        if len(self._last) >= 100_000:
            self._last.clear()
        self._last[(store, item)] = (state, made)

    def inputs(
        self,
        series: Sequence[Series],
        horizons: Sequence[int],
        days: Sequence[int],
        prices: Sequence[float | None],
        promos: Sequence[float],
        holidays: Sequence[float],
    ) -> FloatArray:
        """The model inputs of rows, as the float matrix in the model's column order.

        Row ``i`` is forecast ``horizons[i]`` days after its origin, for day
        number ``days[i]``, from ``series[i]`` (:meth:`series`); a missing or
        NaN price is the series' last price. The columns are computed in
        :data:`FEATURE_COLUMNS` order into one flat list of Python floats (a
        request has a few rows: numpy's cost per call is larger than the
        arithmetic here), then reordered as the model wants them. The list
        becomes the matrix through :func:`floats`.

        Raises:
            ValueError: a target day not after its origin.
        """
        flat: list[float] = []
        add = flat.extend
        calendar = self._calendar
        for one, horizon, day, price, promo, holiday in zip(
            series, horizons, days, prices, promos, holidays, strict=True
        ):
            store, item, copied, price_mean, last_price, hist = one
            if price is None or price != price:  # missing or NaN: the last price
                price = last_price
            back = -horizon % 7
            same = hist[back]
            add((store, item, horizon))
            add(calendar.get(day) or self.calendar(day))
            ratio = price / price_mean if price_mean else _ratio(price, price_mean)
            add((holiday, price, promo, ratio))
            add(copied)
            add((same, (same + hist[back + 7] + hist[back + 14] + hist[back + 21]) / 4))
        if len(horizons) and min(horizons) < 1:  # 0.6 us; numpy's on the matrix 2.8
            raise ValueError("every target date must be after its forecast origin")
        out = floats(flat).reshape(len(horizons), self.width)
        return out if self._order is None else out[:, self._order]

    def calendar(self, day: int) -> tuple[int, int, int, int, int]:
        """``dow, dom, month, doy, weekofyear`` of a day number."""
        parts = self._calendar.get(day)
        if parts is None:
            date = dt.date.fromordinal(day + _EPOCH)
            parts = (
                date.weekday(),
                date.day,
                date.month,
                date.timetuple().tm_yday,
                date.isocalendar()[1],
            )
            if len(self._calendar) < 100_000:
                self._calendar[day] = parts
        return parts

    def predict(self, matrix: FloatArray) -> FloatArray:
        """The booster's forecasts, clipped at zero (as ``LightGBMForecaster``)."""
        raw = self._predictor(matrix)
        return np.maximum(np.asarray(raw, dtype=np.float64), 0.0)  # a third of clip's

    def forecast(
        self,
        keys: Sequence[Key],
        days: Sequence[int],
        prices: Sequence[float | None],
        promos: Sequence[float],
        holidays: Sequence[float],
        states: SeriesStates,
        origin: int,
    ) -> FloatArray:
        """Forecasts of rows from one set of states at one origin."""
        known: dict[Key, Series] = {}
        for key in keys:
            if key not in known:
                known[key] = self.series(*key, states.row(key))
        matrix = self.inputs(
            [known[k] for k in keys],
            [day - origin for day in days],
            days,
            prices,
            promos,
            holidays,
        )
        return self.predict(matrix)


def floats(values: list[float]) -> FloatArray:
    """``np.array(values, dtype=np.float64)``, for a list of Python numbers.

    Packed by :mod:`struct` (each number converted as ``float()`` would)
    into a writable buffer numpy then reads: 28 rows of model inputs (728
    numbers, ints among them) took 10 us this way against 18 with
    ``np.array``, which checks each item's type first (timeit, 2026-12-07).
    A value struct cannot pack (e.g. None, which numpy reads as NaN) takes
    numpy's way.
    """
    count = len(values)
    buffer = bytearray(8 * count)
    try:
        _doubles(count).pack_into(buffer, 0, *values)
    except struct.error:
        return np.array(values, dtype=np.float64)
    return np.frombuffer(buffer, dtype=np.float64)


@functools.lru_cache(maxsize=256)
def _doubles(count: int) -> struct.Struct:
    """The format of ``count`` native doubles (numpy's float64)."""
    return struct.Struct(f"{count}d")


def _ratio(price: float, mean: float) -> float:
    """``price / mean`` as numpy divides (inf, not an error, for a zero mean)."""
    if mean == 0:
        return (
            math.nan if price != price or price == 0 else math.copysign(math.inf, price)
        )
    return price / mean


def fast_forecaster(forecaster: Any) -> FastForecaster | None:
    """The fast path of a fitted LightGBM forecaster; None for other models."""
    if not hasattr(forecaster, "model_") or not hasattr(forecaster, "categories_"):
        return None
    if not hasattr(getattr(forecaster, "model_", None), "booster_"):
        return None
    names = list(getattr(forecaster, "feature_names_", []))
    if sorted(names) != sorted(FAST_COLUMNS):
        extra = sorted(set(names) - set(FAST_COLUMNS))
        missing = sorted(set(FAST_COLUMNS) - set(names))
        log.info(
            "demand fast path off for this model (inputs added %s, removed %s): "
            "forecasts go through features.build_features",
            extra,
            missing,
        )
        return None
    return FastForecaster(forecaster)
