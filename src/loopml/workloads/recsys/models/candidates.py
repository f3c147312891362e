"""Stage 1 of the two-stage ranker: candidates, and the ALS margin it starts from.

Every source is an exact top-n list: ALS (users with history), the segment's
most popular items and everyone's most popular items, so a user without
history still gets candidates and the popularity baselines' top lists are
always among them.
"""

from __future__ import annotations

import weakref

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from loopml.workloads.recsys.features import FeatureContext
from loopml.workloads.recsys.models.als import ALSRecommender
from loopml.workloads.recsys.models.base import FloatArray, IntArray
from loopml.workloads.recsys.scoring import top_k_inner
from loopml.workloads.recsys.sparse import csr_rows


def candidates(
    als: ALSRecommender,
    user_rows: IntArray,
    segment_rows: IntArray,
    exclude_seen: bool,
    n: int,
) -> tuple[IntArray, IntArray, FloatArray]:
    """Stage 1 for a block of users: (position in block, item column, ALS score).

    Args:
        als: the fitted stage-1 ALS (its context is the history).
        user_rows: the users' rows in that context.
        segment_rows: their segment rows.
        exclude_seen: leave out the items each user already took.
        n: items per source.

    Returns:
        One entry per distinct (user, item) candidate, by position then item;
        unavailable (and, with ``exclude_seen``, already seen) items are left
        out; the ALS score is NaN for users without history.
    """
    if len(user_rows) == 1:  # a user served live
        return _candidates_one(
            als, int(user_rows[0]), int(segment_rows[0]), exclude_seen, n
        )
    context = als.context_
    seen = csr_rows(context.weights, user_rows) if exclude_seen else None
    found = np.full((len(user_rows), 3 * n), -1, dtype=np.int64)
    warm = np.flatnonzero(context.user_length[user_rows] > 0)
    if len(warm):
        warm_seen = None if seen is None else csr_rows(seen, warm)
        columns, _ = als.factor_top_k(
            context, user_rows[warm], exclude_seen, n, seen=warm_seen
        )
        found[warm, : columns.shape[1]] = columns
    found[:, n : 2 * n] = _segment_top(context, segment_rows, seen, n)
    everyone = np.full(len(user_rows), len(context.segments), dtype=np.int64)
    found[:, 2 * n :] = _segment_top(context, everyone, seen, n)
    found.sort(axis=1)
    repeated = np.zeros(found.shape, dtype=bool)
    repeated[:, 1:] = found[:, 1:] == found[:, :-1]
    position, slot = np.nonzero((found >= 0) & ~repeated)
    item = found[position, slot]
    return (
        position.astype(np.int64),
        item,
        als.pair_scores(context, user_rows[position], item),
    )


def _candidates_one(
    als: ALSRecommender, row: int, segment_row: int, exclude_seen: bool, n: int
) -> tuple[IntArray, IntArray, FloatArray]:
    """:func:`candidates` of one user in a few numpy calls (no sparse matrix).

    The same three exact top-``n`` lists, as item sets: ALS over the
    available items not seen (:func:`top_k_inner` of one query, the path
    the block takes for one user), then the segment's and everyone's first
    ``n`` such items of their rankings; distinct items in column order.
    """
    context = als.context_
    weights = context.weights
    seen = weights.indices[weights.indptr[row] : weights.indptr[row + 1]]
    allowed = context.item_available
    taken: npt.NDArray[np.bool_] | None = None
    if exclude_seen and len(seen):
        taken = np.zeros(len(allowed), dtype=bool)
        taken[seen] = True
        allowed = allowed & ~taken
    lists = []
    if context.user_length[row] > 0:
        columns, _ = top_k_inner(
            als.user_factors_[row : row + 1], als.item_factors_, n, allowed=allowed
        )
        lists.append(columns[0])
    ranked = _rankings(context)
    for segment in (segment_row, len(context.segments)):
        first = ranked[segment, : n + (len(seen) if taken is not None else 0)]
        first = first[first >= 0]
        if taken is not None:
            first = first[~taken[first]]
        lists.append(first[:n])
    item = np.unique(np.concatenate(lists))
    item = item[item >= 0]
    users = np.full(len(item), row, dtype=np.int64)
    return np.zeros(len(item), np.int64), item, als.pair_scores(context, users, item)


def als_margin(als_score: FloatArray, position: IntArray, n_users: int) -> FloatArray:
    """Each candidate's ALS score standardised among its user's candidates.

    The ranker starts from this margin (LightGBM's init score) and its trees
    learn corrections, so a few trees refine the ALS order instead of
    replacing it with a coarse one. Candidates without an ALS score (users
    without history) start from 0.

    Args:
        als_score: each candidate's ALS score (NaN: none).
        position: each candidate's user (0..n_users-1).
        n_users: how many users.

    Returns:
        ``(score - user mean) / user standard deviation``, 0 where NaN.
    """
    known = ~np.isnan(als_score)
    if n_users == 1:  # one user served live: plain sums, no bincount
        return _margin_one(als_score, known)
    score = np.where(known, als_score, 0.0)
    count = np.maximum(np.bincount(position, weights=known, minlength=n_users), 1)
    mean = np.bincount(position, weights=score, minlength=n_users) / count
    square = np.bincount(position, weights=score**2, minlength=n_users) / count
    spread = np.sqrt(np.maximum(square - mean**2, 0.0))
    spread = np.where(spread > 0, spread, 1.0)
    margin: FloatArray = np.where(
        known, (score - mean[position]) / spread[position], 0.0
    )
    return margin


def _margin_one(als_score: FloatArray, known: npt.NDArray[np.bool_]) -> FloatArray:
    """:func:`als_margin` of one user's candidates, with its arithmetic.

    ``np.bincount`` adds its weights one after another, as ``cumsum`` does
    (``sum`` adds pairwise, which can differ in the last bit). The mean is
    squared as ``mean * mean``, as numpy squares an array: Python's
    ``mean**2`` calls C's ``pow``, which is not always correctly rounded and
    differed from it in the last bit for a user of the tests' data.
    """
    score = np.where(known, als_score, 0.0)
    count = max(float(np.count_nonzero(known)), 1.0)
    mean = float(np.cumsum(score)[-1]) / count if len(score) else 0.0
    square = float(np.cumsum(score**2)[-1]) / count if len(score) else 0.0
    spread = float(np.sqrt(max(square - mean * mean, 0.0)))
    spread = spread if spread > 0 else 1.0
    margin: FloatArray = np.where(known, (score - mean) / spread, 0.0)
    return margin


#: Up to this many (user, item) cells, :func:`_segment_top` marks the seen
#: items in a dense mask (one user: a few microseconds) instead of sorting
#: pair keys (``np.isin``).
SMALL_MASK = 1 << 20

#: Recent contexts' segment rankings (see :func:`_rankings`), newest last;
#: weak references, so a cached ranking never keeps a history alive.
_RANKINGS: list[tuple[weakref.ref[FeatureContext], IntArray]] = []


def _rankings(context: FeatureContext) -> IntArray:
    """Every segment row's available items, most popular first, -1 padded.

    ``(segments + 1) x items``, sorted once per context (a model version's
    history) instead of once per request: ties (often: nobody in the
    segment took it recently) go to the more popular item overall, then to
    the lower column, as in SegmentPopularity.
    """
    for known, ranked in _RANKINGS:
        if known() is context:
            return ranked
    popularity = np.where(context.item_available, context.segment_popularity, -np.inf)
    overall = np.broadcast_to(context.segment_popularity[-1], popularity.shape)
    ranked = np.lexsort((-overall, -popularity), axis=1)
    ranked[np.take_along_axis(popularity, ranked, axis=1) == -np.inf] = -1
    _RANKINGS[:] = [entry for entry in _RANKINGS[-3:] if entry[0]() is not None] + [
        (weakref.ref(context), ranked)
    ]
    return ranked


def _segment_top(
    context: FeatureContext,
    segment_rows: IntArray,
    seen: sp.csr_matrix | None,
    n: int,
) -> IntArray:
    """Each user's ``n`` most popular available items of their segment.

    Each segment's ranking is sorted once per context (:func:`_rankings`);
    a user's list is its first ``n`` items not in ``seen`` (the block's
    rows), -1 padded.
    """
    n_users, n_items = len(segment_rows), len(context.item_ids)
    extra = 0 if seen is None else int(np.diff(seen.indptr).max(initial=0))
    found = _rankings(context)[segment_rows, : n + extra]
    valid = found >= 0
    if seen is not None and seen.nnz:
        rows = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(seen.indptr))
        if n_users * n_items <= SMALL_MASK:  # e.g. one user served live
            taken = np.zeros((n_users, n_items), dtype=bool)
            taken[rows, seen.indices] = True
            valid &= ~np.take_along_axis(taken, np.maximum(found, 0), axis=1)
        else:
            keys = rows * n_items + seen.indices
            asked = np.arange(n_users, dtype=np.int64)[:, None] * n_items + found
            valid &= ~np.isin(asked, keys)
    rank = np.cumsum(valid, axis=1) - 1
    keep = valid & (rank < n)
    out = np.full((n_users, n), -1, dtype=np.int64)
    out[np.nonzero(keep)[0], rank[keep]] = found[keep]
    return out
