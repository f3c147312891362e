"""The raw table: one row per subscription up for renewal, from a seeded generator.

Each row is a subscriber whose monthly renewal falls on ``date``, with the
account as it stood then (plan, tenure, usage, support tickets, failed
payments) and whether they cancelled instead of renewing (``churned``).
The generator stands in for your data. Replace :func:`load` with a loader
of the real table (a parquet export, a SQL query) that returns the columns
of ``schema.RAW_SCHEMA`` with the same dtypes, or change both together.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from .settings import {{ cookiecutter.__class_name }}Settings

LABEL = "churned"
TIME_COLUMN = "date"
KEY_COLUMNS = ("customer_id",)
SORT_COLUMNS = ("date", "customer_id")
#: columns ``loopml ingest`` pseudonymises before storing (none here: the
#: generated account numbers name nobody; list yours if they do).
PERSONAL_COLUMNS: tuple[str, ...] = ()
PLANS = ["basic", "standard", "premium"]
CHANNELS = ["web", "app", "partner"]
#: the monthly price of each plan (a discount takes 30 % off).
PLAN_FEES = {"basic": 9.99, "standard": 15.99, "premium": 22.99}
COLUMNS = [
    "customer_id",
    "date",
    "plan",
    "channel",
    "tenure_months",
    "monthly_fee",
    "usage_hours",
    "usage_change",
    "support_tickets",
    "payment_failures",
    "on_discount",
    LABEL,
]


def churn_logit(frame: pd.DataFrame) -> npt.NDArray[np.float64]:
    """The log-odds of cancelling: thresholds and interactions, as in real churn.

    Disengaged users (little use, a sharp drop), failed payments, many
    tickets, new customers, a discount ending early in the tenure and a
    premium plan that is hardly used all raise it; long tenure lowers it.
    """
    usage, tenure = frame["usage_hours"], frame["tenure_months"]
    tickets, premium = frame["support_tickets"], frame["plan"] == "premium"
    z = (
        -2.8
        + 1.1 * np.minimum(frame["payment_failures"], 2)
        + 0.5 * (tickets >= 2)
        + 0.9 * (tickets >= 4)
        + 2.0 * (usage < 4)
        - 0.6 * (usage > 30)
        + 1.6 * (frame["usage_change"] < -0.4)
        + 1.2 * (tenure <= 2)
        - 0.8 * (tenure >= 24)
        + 1.8 * frame["on_discount"] * (tenure <= 6)
        + 2.0 * premium * (usage < 12)
        + 0.4 * (frame["channel"] == "partner")
    )
    return np.asarray(z, dtype=np.float64)


def generate_day(
    day: pd.Timestamp, n_rows: float, seed: int, drifted: bool = False
) -> pd.DataFrame:
    """Simulate the renewals of one day.

    Each day has its own random stream, so a day's rows are the same whether
    it is generated alone (a daily batch) or with its history.

    Args:
        day: the day (midnight).
        n_rows: expected number of renewals that day (Poisson).
        seed: the random seed.
        drifted: the world after a change (``loopml replay --drift-from``):
            usage fell by 60 % and payments fail far more often.

    Returns:
        The day's rows, ordered by customer id.
    """
    rng = np.random.default_rng([seed, day.toordinal()])
    n = max(1, int(rng.poisson(n_rows)))
    plan = rng.choice(PLANS, n, p=[0.5, 0.35, 0.15])
    channel = rng.choice(CHANNELS, n, p=[0.5, 0.35, 0.15])
    tenure = (1 + rng.gamma(1.1, 14, n)).astype("int64").clip(1, 120)
    discount = (rng.random(n) < np.where(tenure <= 6, 0.45, 0.12)).astype("int64")
    fee = np.array([PLAN_FEES[p] for p in plan]) * np.where(discount == 1, 0.7, 1.0)
    usage = rng.gamma(1.6, 9, n) * np.select(
        [plan == "basic", plan == "premium"], [0.7, 1.4], 1.0
    )
    change = rng.normal(0, 0.3, n)
    tickets = rng.poisson(0.4 + 1.2 * (change < -0.3))
    failures = rng.poisson(0.15, n)
    extra = rng.poisson(0.6, n)
    if drifted:
        # Same random draws, moved: the days before the drift stay as they were.
        usage, failures = usage * 0.4, failures + extra
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{day:%Y%m%d}-{i:05d}" for i in range(n)],
            "date": pd.Series(day, index=range(n)).astype("datetime64[ns]"),
            "plan": plan.astype(object),
            "channel": channel.astype(object),
            "tenure_months": tenure,
            "monthly_fee": fee.round(2).astype("float64"),
            "usage_hours": usage.clip(0, 300).round(1).astype("float64"),
            "usage_change": change.clip(-1, 3).round(3).astype("float64"),
            "support_tickets": tickets.astype("int64"),
            "payment_failures": failures.astype("int64"),
            "on_discount": discount,
        }
    )
    p = 1 / (1 + np.exp(-churn_logit(frame)))
    frame[LABEL] = (rng.random(n) < p).astype("int64")
    return frame[COLUMNS]


def generate(n_rows: int, n_days: int, start: str, seed: int) -> pd.DataFrame:
    """Simulate ``n_days`` days of renewals from ``start``, about ``n_rows`` in all.

    Args:
        n_rows: expected number of renewals over all days.
        n_days: number of days, from ``start``.
        start: the first day (ISO date).
        seed: the random seed; the same seed gives the same table.

    Returns:
        The raw table, ordered by date and customer id.
    """
    days = pd.date_range(start, periods=n_days, freq="D")
    frames = [generate_day(day, n_rows / n_days, seed) for day in days]
    return pd.concat(frames, ignore_index=True)


def load(cfg: {{ cookiecutter.__class_name }}Settings, seed: int) -> pd.DataFrame:
    """The raw table of the configured size (replace with your data source)."""
    return generate(cfg.n_rows, cfg.n_days, cfg.start, seed)


def load_day(
    cfg: {{ cookiecutter.__class_name }}Settings, day: pd.Timestamp, seed: int
) -> pd.DataFrame:
    """One day's renewals with their outcome (``loopml ingest --date``)."""
    return generate_day(pd.Timestamp(day).normalize(), cfg.n_rows / cfg.n_days, seed)


def scheduled(
    cfg: {{ cookiecutter.__class_name }}Settings, day: pd.Timestamp, seed: int
) -> pd.DataFrame:
    """The subscriptions up for renewal on ``day``, before anyone decided.

    Renewal dates are known in advance, so the daily batch can score a day
    before it happens; replace this with your query of upcoming renewals.
    """
    return load_day(cfg, day, seed).drop(columns=[LABEL])


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
