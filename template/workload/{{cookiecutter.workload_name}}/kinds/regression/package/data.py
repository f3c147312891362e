"""The raw table: one row per delivered order, from a seeded generator.

The generator stands in for your data. Replace :func:`load` with a loader of
the real table (a parquet export, a SQL query) that returns the columns of
``schema.RAW_SCHEMA`` with the same dtypes, or change both together.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from {{ cookiecutter.package_name }}.workloads.{{ cookiecutter.workload_name }}.config import (
    {{ cookiecutter.__class_name }}Config,
)

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


def generate_day(day: pd.Timestamp, n_rows: float, seed: int) -> pd.DataFrame:
    """Simulate one day of delivered orders.

    Duration grows with distance, items, rain, rush hours and courier load.
    Each day has its own random stream, so a day's rows are the same whether
    it is generated alone (a daily batch) or with its history.

    Args:
        day: the day (midnight).
        n_rows: expected number of orders that day (Poisson).
        seed: the random seed.

    Returns:
        The day's rows, ordered by order id.
    """
    rng = np.random.default_rng([seed, day.toordinal()])
    n = max(1, int(rng.poisson(n_rows)))
    distance = rng.gamma(2.0, 2.0, n).clip(0.2, 40).round(2)
    items = rng.integers(1, 9, n)
    hour = rng.integers(10, 23, n)
    rain = (rng.random(n) < 0.2).astype("int64")
    load = rng.random(n).round(3)
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


def load(config: {{ cookiecutter.__class_name }}Config, seed: int) -> pd.DataFrame:
    """The raw table of the configured size (replace with your data source)."""
    return generate(config.n_rows, config.n_days, config.start, seed)


def load_day(
    config: {{ cookiecutter.__class_name }}Config, day: pd.Timestamp, seed: int
) -> pd.DataFrame:
    """One day's rows, as the source delivers them (``loopml ingest --date``)."""
    return generate_day(day.normalize(), config.n_rows / config.n_days, seed)
