"""Features for direct multi-horizon forecasting, free of look-ahead by design.

At a forecast origin ``t`` (the last day whose sales are known) one model
predicts sales on every target date ``t + h``, ``h = 1..horizon``. Features come
only from the origin state (sales and prices on dates ``<= t``, see
:func:`origin_state`) and from the target date itself (calendar, holiday, price
and promo, which a retailer plans in advance).

``store_id`` and ``item_id`` are ``category`` columns whose categories are just
the values in the frame; a fitted model pins the categories it saw and re-maps
every frame onto them, so frames built at different times need not agree.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

log = logging.getLogger(__name__)

HISTORY_DAYS = 28
LAGS: list[int] = [0, 1, 2, 3, 4, 5, 6, 13, 27]
KEYS: list[str] = ["store_id", "item_id"]
HIST_COLUMNS: list[str] = [f"hist_{k}" for k in range(HISTORY_DAYS)]
TARGET_COLUMNS = ["store_id", "item_id", "date", "price", "promo", "holiday"]
CALENDAR_COLUMNS: list[str] = ["dow", "dom", "month", "doy", "weekofyear"]
FEATURE_COLUMNS: list[str] = [*KEYS, "horizon", *CALENDAR_COLUMNS, "holiday"]
FEATURE_COLUMNS += ["price", "promo", "price_ratio", *(f"lag_{k}" for k in LAGS)]
FEATURE_COLUMNS += ["rmean_7", "rmean_28", "rstd_28"]
FEATURE_COLUMNS += ["same_weekday_last", "same_weekday_mean4"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class _Wide:
    """Series x day matrices (NaN where a series has no row)."""

    keys: pd.DataFrame
    dates: pd.DatetimeIndex
    sales: FloatArray
    price: FloatArray
    promo: FloatArray
    holiday: FloatArray


def _to_wide(df: pd.DataFrame, start: pd.Timestamp, n_days: int) -> _Wide:
    dates = pd.date_range(start, periods=n_days, freq="D")
    grouped = df.groupby(KEYS, sort=True, observed=True)
    codes = grouped.ngroup().to_numpy()
    keys = grouped.size().index.to_frame(index=False)[KEYS].astype(object)
    day = (df["date"] - dates[0]).dt.days.to_numpy()
    mats = []
    for column in ("sales", "price", "promo", "holiday"):
        mat = np.full((len(keys), n_days), np.nan)
        mat[codes, day] = df[column].to_numpy(dtype=np.float64)
        mats.append(mat)
    return _Wide(keys, dates, *mats)


def _state_at(wide: _Wide, o_idx: int) -> tuple[pd.DataFrame, npt.NDArray[np.intp]]:
    """Origin state at day index ``o_idx``, and the wide rows it came from."""
    lo = o_idx - HISTORY_DAYS + 1
    # Reversed so that column k holds sales k days before the origin.
    hist = wide.sales[:, max(lo, 0) : o_idx + 1][:, ::-1]
    if lo < 0:
        hist = np.full((len(wide.keys), HISTORY_DAYS), np.nan)
    rows = np.flatnonzero(~np.isnan(hist).any(axis=1))
    hist = hist[rows]
    columns: dict[str, FloatArray] = {f"lag_{k}": hist[:, k] for k in LAGS}
    columns["rmean_7"] = hist[:, :7].mean(axis=1)
    columns["rmean_28"] = hist.mean(axis=1)
    columns["rstd_28"] = hist.std(axis=1, ddof=1)
    columns["price_mean_28"] = np.nanmean(
        wide.price[rows, max(lo, 0) : o_idx + 1], axis=1
    )
    columns.update({name: hist[:, k] for k, name in enumerate(HIST_COLUMNS)})
    state = wide.keys.iloc[rows].reset_index(drop=True)
    state.insert(2, "origin", wide.dates[o_idx])
    return pd.concat([state, pd.DataFrame(columns)], axis=1), rows


def origin_state(df: pd.DataFrame, origin: pd.Timestamp) -> pd.DataFrame:
    """Per-series state at a forecast origin, from sales on or before it.

    Args:
        df: canonical raw table (later rows are ignored).
        origin: the last day whose sales are known.

    Returns:
        One row per series with ``store_id, item_id, origin``, ``lag_k`` (sales
        k days before the origin), ``rmean_7``, ``rmean_28``, ``rstd_28``
        (sample std), ``price_mean_28`` and ``hist_0..hist_27`` (sales at
        ``origin - k``). Series without the full 28 days ending at the origin
        are dropped.
    """
    origin = pd.Timestamp(origin)
    start = origin - pd.Timedelta(days=HISTORY_DAYS - 1)
    window = df[(df["date"] >= start) & (df["date"] <= origin)]
    state, _ = _state_at(_to_wide(window, start, HISTORY_DAYS), HISTORY_DAYS - 1)
    if log.isEnabledFor(logging.DEBUG):  # counting series scans the whole table
        dropped = df[KEYS].drop_duplicates().shape[0] - len(state)
        log.debug("origin %s: dropped %d series with < 28 days", origin, dropped)
    return state


def origin_states(
    df: pd.DataFrame, first: pd.Timestamp, last: pd.Timestamp
) -> Iterator[tuple[pd.Timestamp, pd.DataFrame]]:
    """``origin_state(df, o)`` for every day ``o`` from ``first`` to ``last``.

    One series x day matrix for the whole span instead of one per origin:
    the same states (``tests/unit/test_demand_fastpath.py`` checks the
    monitor's replay built on it against the per-origin path).
    """
    first, last = pd.Timestamp(first), pd.Timestamp(last)
    start = first - pd.Timedelta(days=HISTORY_DAYS - 1)
    window = df[(df["date"] >= start) & (df["date"] <= last)]
    wide = _to_wide(window, start, (last - start).days + 1)
    for o_idx in range(HISTORY_DAYS - 1, len(wide.dates)):
        yield wide.dates[o_idx], _state_at(wide, o_idx)[0]


def _assemble(state: pd.DataFrame, targets: pd.DataFrame, how: str) -> pd.DataFrame:
    """Join targets to the state of their origin and derive every feature."""
    merge_keys = [*KEYS, "origin"]
    skip = set(targets.columns) | set(HIST_COLUMNS)
    state_columns = [c for c in state.columns if c in merge_keys or c not in skip]
    indexed = state[state_columns].assign(_row=np.arange(len(state)))
    merged = targets.merge(indexed, on=merge_keys, how=how, validate="many_to_one")
    # Popped, not dropped at the end: dropping a column copies every other.
    state_row = merged.pop("_row")
    date = merged["date"]
    horizon = (date - merged["origin"]).dt.days.to_numpy()
    if (horizon < 1).any():
        raise ValueError("every target date must be after its forecast origin")
    merged["horizon"] = horizon.astype(np.int64)
    merged["dow"] = date.dt.dayofweek.astype(np.int64)
    merged["dom"] = date.dt.day.astype(np.int64)
    merged["month"] = date.dt.month.astype(np.int64)
    merged["doy"] = date.dt.dayofyear.astype(np.int64)
    merged["weekofyear"] = date.dt.isocalendar().week.astype(np.int64)
    merged["price_ratio"] = merged["price"] / merged["price_mean_28"]
    # Most recent same weekday on or before the origin: k = 7*ceil(h/7) - h.
    back = (-horizon) % 7
    hist = state[HIST_COLUMNS].to_numpy(np.float64)
    known = state_row.notna().to_numpy()
    same = np.full((len(merged), 4), np.nan)
    if known.any():
        rows = state_row.to_numpy()[known].astype(np.intp)[:, None]
        same[known] = hist[rows, back[known][:, None] + np.arange(0, 28, 7)]
    merged["same_weekday_last"] = same[:, 0]
    merged["same_weekday_mean4"] = same.mean(axis=1)
    for key in KEYS:
        merged[key] = merged[key].astype("category")
    return merged


def build_features(
    state: pd.DataFrame, targets: pd.DataFrame, origin: pd.Timestamp
) -> pd.DataFrame:
    """Model inputs for target rows, forecast from ``state`` at ``origin``.

    Rows keep the order and number of ``targets``; a series missing from the
    state gets NaN origin-state features (callers should check first).

    Args:
        state: output of :func:`origin_state` (extra columns are carried along).
        targets: ``store_id, item_id, date`` (target date) and the planned
            ``price, promo, holiday`` of that date.
        origin: the forecast origin the state was computed at.

    Returns:
        ``targets`` joined with the state, plus every column of
        :data:`FEATURE_COLUMNS`.

    Raises:
        ValueError: if the state belongs to another origin, a target column is
            missing, or a target date is not after the origin.
    """
    origin = pd.Timestamp(origin)
    if "origin" in state.columns and (state["origin"] != origin).any():
        raise ValueError(f"state was computed at another origin than {origin}")
    if missing := sorted(set(TARGET_COLUMNS) - set(targets.columns)):
        raise ValueError(f"targets lack columns {missing}")
    targets = targets.assign(
        store_id=targets["store_id"].astype(str).astype(object),
        item_id=targets["item_id"].astype(str).astype(object),
        date=pd.to_datetime(targets["date"]).astype("datetime64[ns]"),
        origin=origin,
    )
    keyed = state.assign(
        origin=origin,
        store_id=state["store_id"].astype(str).astype(object),
        item_id=state["item_id"].astype(str).astype(object),
    )
    return _assemble(keyed, targets, how="left")


def build_training_examples(
    df: pd.DataFrame,
    horizon: int = 28,
    origin_step: int = 7,
    min_history: int = 28,
    last_origin: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Labelled examples for every origin on a fixed grid and every horizon.

    Origins run every ``origin_step`` days from ``first date + min_history`` to
    ``last_origin``; each gives rows for ``h = 1..horizon`` whose target sales
    are observed (a late ``last_origin`` just gives shorter horizons).

    Args:
        df: canonical raw table.
        horizon: longest horizon in days.
        origin_step: days between consecutive origins.
        min_history: days of data before the first origin.
        last_origin: latest origin; default ``last date - horizon``, so every
            target of every origin is observed.

    Returns:
        :data:`FEATURE_COLUMNS` plus ``sales`` (the label), ``origin`` and
        ``date``, ordered by origin, series and date.

    Raises:
        ValueError: when the data is too short for a single origin.
    """
    first, last = pd.Timestamp(df["date"].min()), pd.Timestamp(df["date"].max())
    wide = _to_wide(df, first, (last - first).days + 1)
    if last_origin is None:
        last_origin = last - pd.Timedelta(days=horizon)
    origins = pd.date_range(
        first + pd.Timedelta(days=min_history), last_origin, freq=f"{origin_step}D"
    )
    states, parts = [], []
    for origin in origins:
        o_idx = (origin - first).days
        state, rows = _state_at(wide, o_idx)
        days = np.arange(o_idx + 1, min(o_idx + horizon + 1, len(wide.dates)))
        states.append(state)
        # Every (series row, target day, origin day) triple of this origin.
        grid = np.meshgrid(rows, days, [o_idx], indexing="ij")
        parts.append(np.array(grid, dtype=np.intp).reshape(3, -1))
    if sum(len(state) for state in states) == 0:
        raise ValueError(
            f"no origin with {HISTORY_DAYS} days of history before {last_origin}"
        )
    rows, days, o_days = np.concatenate(parts, axis=1)
    observed = ~np.isnan(wide.sales[rows, days])
    rows, days, o_days = rows[observed], days[observed], o_days[observed]
    targets = pd.DataFrame(
        {
            "store_id": wide.keys["store_id"].to_numpy()[rows],
            "item_id": wide.keys["item_id"].to_numpy()[rows],
            "origin": wide.dates[o_days],
            "date": wide.dates[days],
            "price": wide.price[rows, days],
            "promo": wide.promo[rows, days].astype(np.int64),
            "holiday": wide.holiday[rows, days].astype(np.int64),
            "sales": wide.sales[rows, days],
        }
    )
    examples = _assemble(pd.concat(states, ignore_index=True), targets, how="inner")
    log.info("built %d training examples from %d origins", len(examples), len(origins))
    # The columns, not a copy of them (millions of rows at production size).
    columns = [*FEATURE_COLUMNS, "sales", "origin", "date"]
    return pd.DataFrame({c: examples[c] for c in columns}, copy=False)


def compact(frame: pd.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
    """The same values in the narrowest dtypes that hold each column exactly.

    Integer columns take the smallest integer type of their range; a float
    column becomes ``float32`` only when every value survives the round trip
    (counts, quarters, calendar numbers), so a model sees the very numbers it
    would have seen in ``float64``. A training set is then about half the
    memory; LightGBM converts it to one float matrix (``float64`` as soon as
    one column is) with unchanged values, hence the same bins and trees.

    Args:
        frame: feature rows (other dtypes are kept as they are).
        columns: the columns to keep, in this order (default: all); taken
            one at a time, so ``frame`` is never copied whole.

    Returns:
        A new frame with the same index and values, ``columns`` only.
    """
    narrowed: dict[str, pd.Series] = {}
    for name in frame.columns if columns is None else columns:
        column = frame[name]
        if pd.api.types.is_integer_dtype(column.dtype):
            column = pd.to_numeric(column, downcast="integer")
        elif column.dtype == np.float64:
            narrow = column.to_numpy().astype(np.float32)
            if np.array_equal(narrow, column.to_numpy(), equal_nan=True):
                column = pd.Series(narrow, index=column.index, name=name)
        narrowed[str(name)] = column
    return pd.DataFrame(narrowed, copy=False)
