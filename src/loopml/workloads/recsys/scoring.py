"""Exact top-k of inner products, block by block, without a loop per user.

Scoring every user against the catalogue is one matrix product per block of
users. Picking each row's best ``k`` with ``argpartition`` over the whole
catalogue costs ten times the product, so :func:`top_k` narrows the search
first: it folds each row into maxima of strided column groups (one
vectorised pass over the block), takes the ``k`` best groups of the coarsest
fold, and descends only into those. That is exact: an item of the top ``k``
whose group was left out would need ``k`` kept groups whose maxima beat it,
so ``k`` better items. :func:`top_k_inner` runs blocks in a few threads
(numpy and single-threaded BLAS release the GIL), so the selection of one
block overlaps the product of another.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

IntArray = npt.NDArray[np.int64]
#: A block of scores, float32 or float64.
Scores = npt.NDArray[np.floating[Any]]

#: Columns folded into one group maximum per level of the search.
FOLD = 10
#: Users scored at once per thread: a float32 block of 10k items fits in L3.
BLOCK_USERS = 256


def _levels(n_columns: int, k: int) -> int:
    """How many folds keep the coarsest level at least ``k x FOLD`` wide."""
    levels, width = 0, n_columns
    while width // FOLD >= k * FOLD:
        width //= FOLD
        levels += 1
    return levels


def padded_width(n_columns: int, k: int) -> int:
    """The width :func:`top_k` folds ``n_columns`` into (pad with ``-inf``)."""
    unit: int = FOLD ** _levels(n_columns, min(k, n_columns))
    return -(-n_columns // unit) * unit


def _sorted(scores: Scores, columns: IntArray) -> tuple[IntArray, Scores]:
    """Order picked columns by decreasing score, ties by column index."""
    values = np.take_along_axis(scores, columns, axis=1)
    order = np.lexsort((columns, -values), axis=1)
    columns = np.take_along_axis(columns, order, axis=1).astype(np.int64)
    values = np.take_along_axis(values, order, axis=1)
    columns[values == -np.inf] = -1
    return columns, values


def _argpartition(scores: Scores, k: int) -> IntArray:
    """Columns of each row's ``k`` largest values, in no particular order."""
    width = scores.shape[1]
    if k >= width:
        return np.broadcast_to(np.arange(width), scores.shape).astype(np.int64)
    picked: IntArray = np.argpartition(scores, width - k, axis=1)[:, width - k :]
    return picked


def top_k(scores: Scores, k: int) -> tuple[IntArray, Scores]:
    """Exact top-k columns per row, best first; ``-inf`` marks excluded items.

    Args:
        scores: one row per user, one column per item; modified in place when
            the catalogue is padded (never otherwise).
        k: how many columns per row (>= 1).

    Returns:
        Column indices and scores, both ``rows x min(k, columns)``. Scores are
        exactly the ``k`` largest of each row; ties within them are ordered by
        column index (which of several tied items at the k-th place is kept is
        unspecified). A ``-inf`` score holds no item: its column is -1.
    """
    rows, n_columns = scores.shape
    k = min(k, n_columns)
    levels = _levels(n_columns, k)
    if levels == 0:
        return _sorted(scores, _argpartition(scores, k))
    unit = FOLD**levels
    padded = -(-n_columns // unit) * unit
    if padded != n_columns:
        full = np.full((rows, padded), -np.inf, dtype=scores.dtype)
        full[:, :n_columns] = scores
        scores = full
    # folds[j] has padded / FOLD**j columns; its column c is the maximum of
    # columns c + m * width (m < FOLD) of folds[j - 1].
    folds = [scores]
    for _ in range(levels):
        finer = folds[-1]
        width = finer.shape[1] // FOLD
        folds.append(finer.reshape(rows, FOLD, width).max(axis=1))
    columns = _argpartition(folds[-1], k)
    steps = np.arange(FOLD)
    for level in range(levels - 1, -1, -1):
        width = folds[level + 1].shape[1]
        children = (columns[:, :, None] + width * steps).reshape(rows, k * FOLD)
        values = np.take_along_axis(folds[level], children, axis=1)
        columns = np.take_along_axis(children, _argpartition(values, k), axis=1)
    return _sorted(scores, columns)


def _score_range(
    queries: Scores,
    items_t: Scores,
    k: int,
    exclude: sp.csr_matrix | None,
    start: int,
    stop: int,
    block: int,
) -> tuple[IntArray, Scores]:
    n_items = items_t.shape[1]
    k = min(k, n_items)
    width = padded_width(n_items, k)
    if width != n_items:
        # Zero item columns, scored -inf below: top_k then never copies.
        items_t = np.pad(items_t, ((0, 0), (0, width - n_items)))
    columns = np.empty((stop - start, k), dtype=np.int64)
    values = np.empty((stop - start, k), dtype=items_t.dtype)
    buffer = np.empty((min(block, stop - start), width), items_t.dtype)
    for first in range(start, stop, block):
        last = min(first + block, stop)
        scores = buffer[: last - first]
        np.matmul(queries[first:last], items_t, out=scores)
        scores[:, n_items:] = -np.inf
        if exclude is not None:
            seen = exclude[first:last].tocoo()
            scores[seen.row, seen.col] = -np.inf
        cols, vals = top_k(scores, k)
        columns[first - start : last - start] = cols
        values[first - start : last - start] = vals
    return columns, values


def top_k_inner(
    queries: Scores,
    items: Scores,
    k: int,
    exclude: sp.csr_matrix | None = None,
    allowed: npt.NDArray[np.bool_] | None = None,
    block: int = BLOCK_USERS,
    workers: int | None = None,
) -> tuple[IntArray, Scores]:
    """Exact top-k items by inner product for every query, best first.

    Args:
        queries: ``n x factors`` (user factors); the result has their dtype.
        items: ``m x factors`` (item factors), same dtype as ``queries``.
        k: items per query (>= 1).
        exclude: ``n x m`` sparse matrix; a stored entry excludes that item
            for that query (e.g. what the user already consumed).
        allowed: items that may be recommended at all (``None``: every one).
        block: queries per matrix product.
        workers: threads, each with single-threaded BLAS; default: the CPUs,
            at most 4. One thread (or one block) runs in the caller's thread
            with BLAS as configured.

    Returns:
        Item indices (into ``items``) and scores, ``n x min(k, m')`` where
        ``m'`` counts the allowed items; a slot no item could fill (everything
        else excluded) has index -1 and score ``-inf``.

    Raises:
        ValueError: when ``k < 1`` or the shapes disagree.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if queries.shape[1] != items.shape[1]:
        raise ValueError(
            f"queries have {queries.shape[1]} factors, items {items.shape[1]}"
        )
    if exclude is not None and exclude.shape != (len(queries), len(items)):
        raise ValueError(
            f"exclude is {exclude.shape}, expected {(len(queries), len(items))}"
        )
    keep: IntArray | None = None
    if allowed is not None and not allowed.all():
        keep = np.flatnonzero(allowed).astype(np.int64)
        items = items[keep]
        exclude = None if exclude is None else sp.csr_matrix(exclude[:, keep])
    if len(items) == 0 or len(queries) == 0:
        shape = (len(queries), 0)
        return np.empty(shape, np.int64), np.empty(shape, queries.dtype)
    items_t = np.ascontiguousarray(items.T)
    n = len(queries)
    workers = min(workers or min(os.cpu_count() or 1, 4), -(-n // block))
    if workers <= 1:
        columns, values = _score_range(queries, items_t, k, exclude, 0, n, block)
    else:
        # Contiguous shares, whole blocks each, so results never depend on
        # the number of threads.
        n_blocks = -(-n // block)
        per = -(-n_blocks // workers) * block
        bounds = [(s, min(s + per, n)) for s in range(0, n, per)]
        with threadpool_limits(1, "blas"), ThreadPoolExecutor(len(bounds)) as pool:
            parts = list(
                pool.map(
                    lambda b: _score_range(
                        queries, items_t, k, exclude, b[0], b[1], block
                    ),
                    bounds,
                )
            )
        columns = np.concatenate([p[0] for p in parts])
        values = np.concatenate([p[1] for p in parts])
    if keep is not None:
        columns = np.where(columns >= 0, keep[columns], -1)
    return columns, values
