"""The rule-based service being replaced: most popular in the user's segment."""

from __future__ import annotations

import logging

import numpy as np

from loopml.workloads.recsys.features import FeatureContext
from loopml.workloads.recsys.models.base import FloatArray, IntArray, PopularityBase

log = logging.getLogger(__name__)


class SegmentPopularity(PopularityBase):
    """Most popular items in the user's segment over the last ``window_days``.

    Popularity is the share of the segment's active users (in the window) who
    interacted with the item; ties, including items nobody in the segment
    took recently, are broken by global popularity in the window. Users
    without a known segment get global popularity.
    """

    def _score_block(
        self,
        context: FeatureContext,
        user_rows: IntArray,
        segment_rows: IntArray,
        exclude_seen: bool,
        k: int,
    ) -> FloatArray:
        return segment_scores(context, segment_rows)


def segment_scores(context: FeatureContext, segment_rows: IntArray) -> FloatArray:
    """Each user's segment popularity of every item, global popularity breaking ties.

    Args:
        context: the fitted history.
        segment_rows: each user's segment row (the last row: no known segment).

    Returns:
        ``users x items`` scores, higher is better.
    """
    popularity = context.segment_popularity
    # Global shares are <= 1, so scaling them down only breaks exact ties.
    tie_break = popularity[-1] / (1.0 + popularity[-1].max()) * 1e-3
    scores: FloatArray = popularity[segment_rows] + tie_break[None, :]
    return np.array(scores, dtype=np.float64)
