"""Where training stops: the global time cut and the per-user leave-last-N-out.

* :func:`time_split` cuts every user at the same moment, ``test_days`` before
  the end; users whose first interaction is after the cut are in the test
  period without any training history (the cold start a live service sees).
* :func:`leave_last_out_split` cuts each user with a history at their own
  moment: their last ``n_last`` items are the test, everything they did
  before is training, and other users keep all of their interactions.

:func:`test_cut` is the one definition of the global cut, shared by the split
and by loaders that must not look past it (``online_retail.py``).
"""

from __future__ import annotations

import pandas as pd


def test_cut(timestamps: pd.Series, test_days: int) -> pd.Timestamp:
    """Midnight ``test_days`` days before the end of the last day.

    Raises:
        ValueError: when ``test_days < 1`` or there are no timestamps.
    """
    if test_days < 1:
        raise ValueError(f"test_days must be >= 1, got {test_days}")
    if timestamps.empty:
        raise ValueError("cannot split an empty interaction table")
    last_day = pd.Timestamp(timestamps.max()).normalize()
    return last_day + pd.Timedelta(days=1 - test_days)


def time_split(
    interactions: pd.DataFrame, test_days: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split at :func:`test_cut`; every user is kept, cold ones included.

    Returns:
        ``(train, test)``: train strictly before the cut, test from it on.

    Raises:
        ValueError: when ``test_days < 1`` or there are no interactions.
    """
    cut = test_cut(interactions["timestamp"], test_days)
    before = interactions["timestamp"] < cut
    return interactions[before], interactions[~before]


def leave_last_out_split(
    interactions: pd.DataFrame, n_last: int = 1, min_history: int = 1
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out each user's last ``n_last`` items, in time order.

    A user's cut is the first interaction with their ``n_last``-th last
    distinct item (items ordered by first interaction); the test is every
    item first taken at or after the cut, so items of one moment (a basket)
    are never split, and training is everything the user did before it. A
    user is held out only when at least ``min_history`` distinct items stay
    before the cut; the others stay whole in training, as does every
    interaction of other users (the protocol's usual look at their future).
    Interactions after a user's cut with items taken before it (a second
    purchase, a completion) are in neither part.

    Args:
        interactions: the interactions to split.
        n_last: how many of each user's last items to hold out (>= 1).
        min_history: distinct items a user must keep in training (>= 1).

    Returns:
        ``(train, test)`` in the input's row order.

    Raises:
        ValueError: when ``n_last`` or ``min_history`` is below 1.
    """
    if n_last < 1 or min_history < 1:
        raise ValueError(
            f"n_last and min_history must be >= 1, got {n_last}, {min_history}"
        )
    first = (
        interactions.groupby(["user_id", "item_id"], as_index=False)["timestamp"]
        .min()
        .sort_values(["user_id", "timestamp", "item_id"], ascending=[True, False, True])
    )
    nth_last = first.groupby("user_id")["timestamp"].nth(n_last - 1)
    cut = pd.Series(
        nth_last.to_numpy(), index=first.loc[nth_last.index, "user_id"].to_numpy()
    )
    before = first["timestamp"] < first["user_id"].map(cut)
    kept = first[before].groupby("user_id").size()
    cut = cut[kept.reindex(cut.index, fill_value=0) >= min_history]
    user_cut = interactions["user_id"].map(cut)
    held_out = user_cut.notna()
    in_train = ~held_out | (interactions["timestamp"] < user_cut)
    first_time = interactions.merge(
        first, on=["user_id", "item_id"], how="left", suffixes=("", "_first")
    )["timestamp_first"].to_numpy()
    in_test = held_out & (first_time >= user_cut.to_numpy())
    return interactions[in_train.to_numpy()], interactions[in_test.to_numpy()]
