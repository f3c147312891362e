"""The raw table: one row per delivered order, from a seeded generator.

The generator stands in for your data. Replace :func:`load` with a loader of
the real table (a parquet export, a SQL query) that returns the columns of
``schema.RAW_SCHEMA`` with the same dtypes, or change both together.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .settings import {{ cookiecutter.__class_name }}Settings

LABEL = "duration_min"
TIME_COLUMN = "date"
KEY_COLUMNS = ("order_id",)
SORT_COLUMNS = ("date", "order_id")
#: columns ``loopml ingest`` pseudonymises before storing (none here).
PERSONAL_COLUMNS: tuple[str, ...] = ()
COLUMNS = [
    "order_id",
    "date",
    "distance_km",
    "items",
    "hour",
    "rain",
    "courier_load",
    LABEL,
]
#: lunch and dinner rush hours, when deliveries are slower.
PEAK_HOURS = (12, 13, 18, 19, 20)


def generate_day(
    day: pd.Timestamp, n_rows: float, seed: int, drifted: bool = False
) -> pd.DataFrame:
    """Simulate one day of delivered orders.

    Duration grows with distance, items, rain, rush hours and courier load.
    Each day has its own random stream, so a day's rows are the same whether
    it is generated alone (a daily batch) or with its history.

    Args:
        day: the day (midnight).
        n_rows: expected number of orders that day (Poisson).
        seed: the random seed.
        drifted: the world after a change (``loopml replay --drift-from``):
            the delivery area grew (distances x1.6) and couriers are busier.

    Returns:
        The day's rows, ordered by order id.
    """
    rng = np.random.default_rng([seed, day.toordinal()])
    n = max(1, int(rng.poisson(n_rows)))
    distance = rng.gamma(2.0, 2.0, n)
    items = rng.integers(1, 9, n)
    hour = rng.integers(10, 23, n)
    rain = (rng.random(n) < 0.2).astype("int64")
    load = rng.random(n)
    if drifted:
        # Same random draws, moved: the days before the drift stay as they were.
        distance, load = distance * 1.6, np.sqrt(load)
    distance, load = distance.clip(0.2, 40).round(2), load.round(3)
    peak = np.isin(hour, PEAK_HOURS)
    duration = (
        8.0
        + 3.0 * distance
        + 0.8 * items
        + 6.0 * rain
        + 5.0 * peak
        + 12.0 * load**2
        + 4.0 * rain * peak
        + rng.normal(0, 3, n)
    ).clip(3, None)
    return pd.DataFrame(
        {
            "order_id": [f"O{day:%Y%m%d}-{i:05d}" for i in range(n)],
            "date": pd.Series(day, index=range(n)).astype("datetime64[ns]"),
            "distance_km": distance.astype("float64"),
            "items": items.astype("int64"),
            "hour": hour.astype("int64"),
            "rain": rain,
            "courier_load": load.astype("float64"),
            LABEL: duration.round(1).astype("float64"),
        }
    )[COLUMNS]


def generate(n_rows: int, n_days: int, start: str, seed: int) -> pd.DataFrame:
    """Simulate ``n_days`` days of orders from ``start``, about ``n_rows`` in all.

    Args:
        n_rows: expected number of orders over all days.
        n_days: number of days, from ``start``.
        start: the first day (ISO date).
        seed: the random seed; the same seed gives the same table.

    Returns:
        The raw table, ordered by date and order id.
    """
    days = pd.date_range(start, periods=n_days, freq="D")
    per_day = n_rows / n_days
    frames = [generate_day(day, per_day, seed) for day in days]
    return pd.concat(frames, ignore_index=True)


def load(cfg: {{ cookiecutter.__class_name }}Settings, seed: int) -> pd.DataFrame:
    """The raw table of the configured size (replace with your data source)."""
    return generate(cfg.n_rows, cfg.n_days, cfg.start, seed)


def load_day(
    cfg: {{ cookiecutter.__class_name }}Settings, day: pd.Timestamp, seed: int
) -> pd.DataFrame:
    """One day's rows, as the source delivers them (``loopml ingest --date``)."""
    return generate_day(pd.Timestamp(day).normalize(), cfg.n_rows / cfg.n_days, seed)


def days(
    cfg: {{ cookiecutter.__class_name }}Settings,
    first: pd.Timestamp,
    n_days: int,
    seed: int,
    drift_from: int | None = None,
) -> pd.DataFrame:
    """``n_days`` new days from ``first`` (``loopml replay``).

    Args:
        cfg: the workload's settings (the daily volume).
        first: the first day.
        n_days: how many days.
        seed: the random seed.
        drift_from: the 1-based day from which the world has changed
            (``None``: no change).

    Returns:
        The days' rows, in order.
    """
    start = pd.Timestamp(first).normalize()
    frames = [
        generate_day(
            start + pd.Timedelta(days=i),
            cfg.n_rows / cfg.n_days,
            seed,
            drifted=drift_from is not None and i + 1 >= drift_from,
        )
        for i in range(n_days)
    ]
    return pd.concat(frames, ignore_index=True)
