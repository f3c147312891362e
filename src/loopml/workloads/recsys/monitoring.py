"""What ``loopml monitor`` watches for recsys: the mix of interactions.

One row per interaction, in the reference (the last ``reference_days`` of
the champion's data, before the current window) and the current window (the
last ``window_days`` up to the monitored day):

* ``segment``, ``category``, ``event`` (PSI): who learns, what, and how
  (enrol, complete...);
* ``segment_category`` (PSI): the mix of the two, which moves when a job
  role starts taking other courses even if neither mix alone does;
* ``item_popularity`` (normed Wasserstein): the item's share of the
  reference's interactions, in percent; new or forgotten courses move it;
* ``user_activity`` (normed Wasserstein): how many interactions the
  interacting user made in the same ``window_days`` block, so the reference
  (several blocks) and the current window count over equally long periods.

Not measured: prediction drift and live NDCG. The champion's daily top-k
(``loopml batch``) could be compared with later enrolments once the batch
results are kept per day for a model; that is left for later.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from loopml.sdk.capabilities import Monitor

if TYPE_CHECKING:
    from loopml.core.config import MonitorSettings

NUMERICAL = ["item_popularity", "user_activity"]
CATEGORICAL = ["segment", "category", "event", "segment_category"]
TIME = "timestamp"


def _window(data: pd.DataFrame, end: pd.Timestamp, days: int) -> pd.DataFrame:
    """Interactions on the days ``end - days + 1 .. end`` (whole days)."""
    day = data[TIME].dt.normalize()
    return data[(day > end - pd.Timedelta(days=days)) & (day <= end)]


def _columns(
    frame: pd.DataFrame, end: pd.Timestamp, block_days: int, shares: pd.Series
) -> pd.DataFrame:
    blocks = (end - frame[TIME].dt.normalize()).dt.days // block_days
    activity = frame.groupby([frame["user_id"], blocks])["user_id"].transform("size")
    popularity = frame["item_id"].map(shares).fillna(0.0)
    return pd.DataFrame(
        {
            "segment": frame["segment"].astype(str).to_numpy(),
            "category": frame["category"].astype(str).to_numpy(),
            "event": frame["event"].astype(str).to_numpy(),
            "segment_category": (
                frame["segment"].astype(str) + "/" + frame["category"].astype(str)
            ).to_numpy(),
            "item_popularity": popularity.to_numpy(dtype=float),
            "user_activity": activity.to_numpy(dtype=float),
        }
    )


def samples(
    data: pd.DataFrame,
    reference_end: pd.Timestamp,
    day: pd.Timestamp,
    cfg: MonitorSettings,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The reference and current samples of the drift columns.

    Args:
        data: the validated event log (one row per interaction).
        reference_end: the last day of the reference window.
        day: the monitored day (the current window ends there).
        cfg: window and reference lengths.

    Returns:
        ``(reference, current)`` with :data:`CATEGORICAL` and
        :data:`NUMERICAL` columns, one row per interaction.
    """
    reference = _window(data, reference_end, cfg.reference_days)
    current = _window(data, day, cfg.window_days)
    shares = reference["item_id"].value_counts(normalize=True) * 100.0
    return (
        _columns(reference, reference_end, cfg.window_days, shares),
        _columns(current, day, cfg.window_days, shares),
    )


def quality(data: pd.DataFrame, day: pd.Timestamp, window_days: int) -> dict[str, Any]:
    """Completeness of the current window.

    Returns:
        ``rows``, ``missing_share`` (of cells), ``users`` and ``items``
        active, ``days`` with at least one interaction.
    """
    current = _window(data, day, window_days)
    cells = current.size or 1
    return {
        "rows": len(current),
        "missing_share": float(current.isna().sum().sum() / cells),
        "users": int(current["user_id"].nunique()),
        "items": int(current["item_id"].nunique()),
        "days": int(current[TIME].dt.normalize().nunique()),
    }


class RecsysMonitor(Monitor):
    """The interaction mix and the window's quality; nothing measured live."""

    numerical = tuple(NUMERICAL)
    categorical = tuple(CATEGORICAL)

    def samples(
        self,
        data: pd.DataFrame,
        reference_end: pd.Timestamp,
        day: pd.Timestamp,
        cfg: MonitorSettings,
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """One row per interaction (see :func:`samples`)."""
        return samples(data, reference_end, day, cfg)

    def quality(
        self, data: pd.DataFrame, day: pd.Timestamp, window_days: int
    ) -> dict[str, Any]:
        """Rows, missing share, active users and items, days."""
        return quality(data, day, window_days)
