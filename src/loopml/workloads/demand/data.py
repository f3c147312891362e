"""Raw demand data: a seeded generator and loaders for Online Retail and Bike Sharing.

Every source returns the canonical raw table: columns ``date, store_id,
item_id, sales, price, promo, holiday`` (in that order), one row per series and
day with no gaps, sorted by ``store_id, item_id, date``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

log = logging.getLogger(__name__)

RAW_COLUMNS = ["date", "store_id", "item_id", "sales", "price", "promo", "holiday"]
DATASETS: tuple[str, ...] = ("generated", "online-retail", "bike-sharing")

# Fixed (month, day) holidays of the synthetic world, the same every year.
_GENERATED_HOLIDAYS = {(1, 1), (2, 14), (5, 1), (10, 31), (12, 24), (12, 25)}
_GENERATED_HOLIDAYS |= {(12, 26), (12, 31)}
_HOLIDAY_UPLIFT = 1.6
_DRIFT_LEVEL = 1.6
# Mon..Sun shape of a typical week; each item scales and perturbs it.
_WEEK_PROFILE = np.array([0.9, 0.85, 0.9, 0.95, 1.1, 1.35, 1.25])
# England & Wales bank holidays over the Online Retail period (Dec 2010 - Dec
# 2011), including substitute days and the 2011 royal wedding.
_UK_BANK_HOLIDAYS = pd.to_datetime(
    ["2010-12-27", "2010-12-28", "2011-01-03", "2011-04-22", "2011-04-25"]
    + ["2011-04-29", "2011-05-02", "2011-05-30", "2011-08-29", "2011-12-26"]
    + ["2011-12-27"]
)
# Postage, fees, manual adjustments, charity and vouchers are not products.
_NON_PRODUCT_CODES = {"POST", "DOT", "M", "m", "C2", "D", "S", "B", "CRUK", "PADS"}
_NON_PRODUCT_CODES |= {"BANK CHARGES", "AMAZONFEE"}


def _ids(prefix: str, n: int, width: int) -> npt.NDArray[np.object_]:
    # Widen the zero padding for big worlds so string order stays numeric order.
    digits = max(width, len(str(n)))
    return np.array([f"{prefix}{i + 1:0{digits}d}" for i in range(n)], dtype=object)


def generate(
    n_stores: int = 3,
    n_items: int = 10,
    n_days: int = 730,
    start: str = "2024-01-01",
    seed: int = 42,
    drift_from_day: int | None = None,
) -> pd.DataFrame:
    """Generate daily store x item sales with realistic structure.

    Mean demand is a per-series level (very different scales) x a weekend-heavy
    weekly pattern per item x a yearly sinusoid x a linear trend x a price
    effect (prices change now and then; negative elasticity) x promotions (~10%
    of days, x1.3-1.8) x fixed holidays (x1.6). Sales are gamma-Poisson
    (negative-binomial) draws, so they are over-dispersed counts.

    Args:
        n_stores: number of stores (ids ``S01``...).
        n_items: number of items per store (ids ``I001``...).
        n_days: number of consecutive days.
        start: first date.
        seed: seeds every random stream, so same arguments, same frame; a
            bigger ``n_days`` only appends days (earlier days never change).
        drift_from_day: from this day index on the level is x1.6 and the weekly
            pattern shifts by three days, a deliberate drift for monitoring.

    Returns:
        The canonical raw table.

    Raises:
        ValueError: for non-positive sizes or a negative ``drift_from_day``.
    """
    if min(n_stores, n_items, n_days) < 1 or (drift_from_day or 0) < 0:
        raise ValueError("n_stores, n_items, n_days must be >= 1, drift_from_day >= 0")
    # Draws that do not depend on the day come first from one generator; each
    # day then draws from its own stream, so a longer world (a bigger n_days)
    # starts with exactly the same days: daily ingestion replays it.
    rng = np.random.default_rng(seed)
    shape = (n_stores, n_items, n_days)
    dates = pd.date_range(start, periods=n_days, freq="D")
    t = np.arange(n_days)
    level = rng.lognormal(0.0, 0.35, n_stores)[:, None] * rng.lognormal(
        np.log(8.0), 0.8, n_items
    )
    amp = rng.uniform(0.5, 1.5, n_items)[:, None]
    weekly = 1 + amp * (_WEEK_PROFILE - 1) + rng.normal(0, 0.05, (n_items, 7))
    weekly = np.clip(weekly / weekly.mean(axis=1, keepdims=True), 0.2, None)
    yearly = 1 + rng.uniform(0.1, 0.35, n_items)[:, None] * np.sin(
        2 * np.pi * dates.dayofyear.to_numpy() / 365.25
        + rng.uniform(0, 2 * np.pi, n_items)[:, None]
    )
    trend = np.clip(
        1 + rng.uniform(-0.1, 0.3, shape[:2])[..., None] * t / 365, 0.3, None
    )
    base_price = rng.uniform(1.0, 20.0, n_items)[None, :, None]
    elasticity = rng.uniform(1.0, 2.5, n_items)[None, :, None]
    uplift = rng.uniform(1.3, 1.8, n_items)[None, :, None]

    days = [np.random.default_rng([seed, day]) for day in range(n_days)]
    draws = np.stack([r.random((3, n_stores, n_items)) for r in days], axis=-1)
    # Prices jump to a new level around the base now and then (not a random
    # walk), so the elasticity effect stays within a plausible range.
    changed = draws[0] < 1 / 90
    factor = np.where(changed, 0.8 + 0.4 * draws[1], 1.0)
    since = np.maximum.accumulate(np.where(changed, t, 0), axis=2)
    price = np.round(base_price * np.take_along_axis(factor, since, axis=2), 2)
    promo = (draws[2] < 0.1).astype(np.int64)
    month_day = list(zip(dates.month, dates.day, strict=True))
    holiday = np.array([md in _GENERATED_HOLIDAYS for md in month_day], np.int64)

    dow = dates.dayofweek.to_numpy()
    week_effect = np.broadcast_to(weekly[:, dow], shape).copy()
    drift = np.ones(n_days)
    if drift_from_day is not None:
        drifted = t >= drift_from_day
        drift[drifted] = _DRIFT_LEVEL
        week_effect[..., drifted] = np.roll(weekly, 3, axis=1)[:, dow[drifted]]

    mu = level[..., None] * week_effect * yearly[None] * trend * drift
    mu *= (price / base_price) ** -elasticity * np.where(promo == 1, uplift, 1.0)
    mu *= np.where(holiday == 1, _HOLIDAY_UPLIFT, 1.0)
    # Over-dispersed counts: a gamma-mixed Poisson, drawn from each day's stream.
    sales = np.stack(
        [
            r.poisson(mu[..., day] * r.gamma(8.0, 1 / 8.0, shape[:2]))
            for day, r in enumerate(days)
        ],
        axis=-1,
    ).astype(np.float64)

    n_series = n_stores * n_items
    frame = pd.DataFrame(
        {
            "date": np.tile(dates.to_numpy(dtype="datetime64[ns]"), n_series),
            "store_id": np.repeat(_ids("S", n_stores, 2), n_items * n_days),
            "item_id": np.tile(np.repeat(_ids("I", n_items, 3), n_days), n_stores),
            "sales": sales.ravel(),
            "price": price.ravel(),
            "promo": promo.ravel(),
            "holiday": np.tile(holiday, n_series),
        }
    )
    log.debug("generated %d rows (%d series x %d days)", len(frame), n_series, n_days)
    return frame


def load_online_retail(
    path: Path, top_n_items: int = 50, min_selling_days: int = 100
) -> pd.DataFrame:
    """Turn UCI Online Retail transactions into daily demand per product.

    Deliberate choices:
    * cancellations (``InvoiceNo`` starting with ``C``) and rows with
      ``Quantity <= 0`` or ``UnitPrice <= 0`` are dropped;
    * rows without ``CustomerID`` are kept: they are real sales, and who bought
      does not matter for demand;
    * service codes (postage, fees, manual ``M``, ``gift_*`` vouchers) are
      dropped: they are not products;
    * quantity is summed per ``StockCode`` and day; ``store_id`` is ``online``;
    * products selling on at least ``min_selling_days`` distinct days are kept,
      then the ``top_n_items`` with most selling days (ties by ``StockCode``);
    * every series spans the whole data period with zero-sales days filled
      (the shop never sells on Saturdays, so those are zeros too);
    * ``price`` is the quantity-weighted mean unit price of the day, forward
      then back filled on days without sales; ``promo`` is 0 (unknown);
      ``holiday`` marks England & Wales bank holidays.

    Args:
        path: the Online Retail parquet file (read only).
        top_n_items: how many products to keep.
        min_selling_days: minimum number of distinct selling days.

    Returns:
        The canonical raw table: one store, ``top_n_items`` series.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(
            f"the UCI Online Retail parquet is not at {path}. Point --data-path "
            "(or workloads.demand.data_path) at your copy, e.g. ../shared/datasets/"
            "online_retail/online_retail.parquet, or use dataset 'generated'."
        )
    columns = ["InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice"]
    raw = pd.read_parquet(path, columns=columns)
    keep = (
        ~raw["InvoiceNo"].astype(str).str.startswith("C")
        & (raw["Quantity"] > 0)
        & (raw["UnitPrice"] > 0)
        & ~raw["StockCode"].isin(_NON_PRODUCT_CODES)
        & ~raw["StockCode"].astype(str).str.startswith("gift_")
    )
    sold = raw.loc[keep]
    log.info("online retail: kept %d of %d transaction rows", len(sold), len(raw))
    daily = (
        sold.assign(
            date=sold["InvoiceDate"].dt.normalize().astype("datetime64[ns]"),
            item_id=sold["StockCode"].astype(str),
            revenue=sold["Quantity"] * sold["UnitPrice"],
        )
        .groupby(["item_id", "date"], as_index=False)[["Quantity", "revenue"]]
        .sum()
    )
    days = daily.groupby("item_id").size().rename("days").reset_index()
    days = days[days["days"] >= min_selling_days]
    items = days.sort_values(["days", "item_id"], ascending=[False, True])
    chosen = sorted(items["item_id"].head(top_n_items))
    all_dates = pd.date_range(daily["date"].min(), daily["date"].max(), freq="D")
    grid = pd.MultiIndex.from_product([chosen, all_dates], names=["item_id", "date"])
    full = daily.set_index(["item_id", "date"]).reindex(grid).reset_index()
    full["price"] = full["revenue"] / full["Quantity"]
    full["price"] = full.groupby("item_id")["price"].ffill()
    full["price"] = full.groupby("item_id")["price"].bfill()
    full["sales"] = full["Quantity"].fillna(0).astype(np.float64)
    full["store_id"] = "online"
    full["promo"] = np.int64(0)
    full["holiday"] = full["date"].isin(_UK_BANK_HOLIDAYS).astype(np.int64)
    log.info("online retail: %d products x %d days", len(chosen), len(all_dates))
    return full[RAW_COLUMNS].reset_index(drop=True)


def load_bike_sharing(path: Path) -> pd.DataFrame:
    """Turn UCI Bike Sharing ``day.csv`` into one daily demand series.

    Capital Bikeshare is one "store" (``dc``) renting one "item" (``bikes``):
    ``sales`` is the day's rentals (``cnt``), ``holiday`` the file's holiday
    flag. Bikes have no price or promotions here, so ``price`` is 1.0 and
    ``promo`` 0; the weather columns are not part of the canonical table.

    Args:
        path: the ``day.csv`` file (read only).

    Returns:
        The canonical raw table (one series, one row per day).

    Raises:
        FileNotFoundError: when ``path`` does not exist.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(
            f"the UCI Bike Sharing day.csv is not at {path}. Point --data-path "
            "(or workloads.demand.data_path) at your copy, e.g. ../shared/datasets/"
            "bike_sharing/day.csv, or use dataset 'generated'."
        )
    days = pd.read_csv(path, usecols=["dteday", "holiday", "cnt"])
    frame = pd.DataFrame(
        {
            "date": pd.to_datetime(days["dteday"]).astype("datetime64[ns]"),
            "store_id": "dc",
            "item_id": "bikes",
            "sales": days["cnt"].astype(np.float64),
            "price": 1.0,
            "promo": np.int64(0),
            "holiday": days["holiday"].astype(np.int64),
        }
    )
    log.info("bike sharing: %d days", len(frame))
    return frame[RAW_COLUMNS].sort_values("date").reset_index(drop=True)


def load(dataset: str, data_path: Path | None, **generator_kwargs: Any) -> pd.DataFrame:
    """Load the raw table for a named dataset.

    Args:
        dataset: ``generated``, ``online-retail`` or ``bike-sharing``.
        data_path: the Online Retail parquet or the Bike Sharing ``day.csv``;
            unused for ``generated``.
        **generator_kwargs: options of :func:`generate`,
            :func:`load_online_retail` or :func:`load_bike_sharing`; each source
            gets those it accepts, so a caller can pass the whole workload
            config whatever the dataset.

    Returns:
        The canonical raw table.

    Raises:
        ValueError: for an unknown dataset, or options neither source accepts.
        FileNotFoundError: when a real dataset has no file at ``data_path``.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {DATASETS}")
    source: Callable[..., pd.DataFrame] = generate
    if dataset != "generated":
        source = load_online_retail if dataset == "online-retail" else load_bike_sharing
        generator_kwargs["path"] = Path(data_path or "<demand.data_path not set>")
    accepted = set(inspect.signature(source).parameters)
    known: set[str] = set()
    for each in (generate, load_online_retail, load_bike_sharing):
        known |= set(inspect.signature(each).parameters)
    if unknown := sorted(set(generator_kwargs) - known):
        raise ValueError(f"unknown data options {unknown}; valid: {sorted(known)}")
    return source(**{k: v for k, v in generator_kwargs.items() if k in accepted})
