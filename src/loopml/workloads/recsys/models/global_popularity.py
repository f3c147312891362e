"""A non-personalised floor: the most popular items over everyone."""

from __future__ import annotations

import logging

import numpy as np

from loopml.workloads.recsys.features import FeatureContext
from loopml.workloads.recsys.models.base import FloatArray, IntArray, PopularityBase

log = logging.getLogger(__name__)


class GlobalPopularity(PopularityBase):
    """Most popular items over all users in the last ``window_days``.

    Popularity is the share of active users (in the window) who interacted
    with the item; ties are broken by all-time popularity.
    """

    def _score_block(
        self,
        context: FeatureContext,
        user_rows: IntArray,
        segment_rows: IntArray,
        exclude_seen: bool,
        k: int,
    ) -> FloatArray:
        return global_scores(context, len(user_rows))


def global_scores(context: FeatureContext, n_users: int) -> FloatArray:
    """Global popularity of every item, all-time popularity breaking ties.

    Args:
        context: the fitted history.
        n_users: how many (identical) user rows to return.

    Returns:
        ``n_users x items`` scores, higher is better.
    """
    all_time = context.popularity_all_time
    tie_break = all_time / (1.0 + all_time.max()) * 1e-3
    row = context.segment_popularity[-1] + tie_break
    return np.repeat(row[None, :], n_users, axis=0)
