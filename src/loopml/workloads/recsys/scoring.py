"""Exact top-k of inner products, block by block, without a loop per user.

Scoring every user against the catalogue is one matrix product per block of
users. Picking each row's best ``k`` with ``argpartition`` over the whole
catalogue costs ten times the product, so the selection reads the scores
once, to fold each row into maxima of strided column groups (``FOLD``
columns each), and then looks only at what can still be in the top ``k``:

* a threshold per row, the ``k``-th largest maximum of the coarsest fold: it
  is at most the row's ``k``-th largest score (those ``k`` maxima are ``k``
  distinct items), so no item below it can be in the top ``k``;
* a descent from the coarsest fold to the scores that keeps, level by
  level, only the groups whose maximum reaches the threshold (a few more
  than ``k`` per row), and their items that reach it;
* one sort of those few candidates per block, by row, score and item.

:func:`top_k_inner` also folds while it multiplies: it computes each block's
product ``FOLD`` column chunks at a time (chunk ``m`` holds items
``m * width ...``, so a chunk is one member of every group) and takes the
running maximum of each chunk while the chunk is still in cache. The scores
are never read in full a second time. Blocks run in a few threads (numpy and
single-threaded BLAS release the GIL), so the selection of one block
overlaps the product of another.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
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
#: Users scored at once per thread. Measured on 10k items: 512 beats 256 and
#: 1024 (fewer numpy calls per user, and a 2 MB chunk is still folded from
#: cache).
BLOCK_USERS = 512
_STEPS = np.arange(FOLD)
#: Widest fold compared with the floor entry by entry rather than reached
#: group by group from the next coarser fold.
DENSE = 1024
#: Candidates per row and per ``k`` beyond which ties are thinned (``_thin``).
CROWD = 8
#: Up to this many rows, :func:`top_k` picks each row's best directly (a
#: partition and a sort of the few reaching its k-th): for a user served
#: live, a few numpy calls instead of the folds' dozens.
FEW_ROWS = 4


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


def _fold(scores: Scores, levels: int) -> list[Scores]:
    """``scores`` and its folds: column ``c`` of ``folds[j]`` is the maximum
    of columns ``c + m * width`` (``m < FOLD``) of ``folds[j - 1]``."""
    folds = [scores]
    for _ in range(levels):
        finer = folds[-1]
        width = finer.shape[1] // FOLD
        # FOLD elementwise maxima of column slices: far faster than a
        # reduction over the middle axis of a (rows, FOLD, width) view. fmax
        # skips NaN: a group's maximum is that of its numbers.
        coarser = np.fmax(finer[:, :width], finer[:, width : 2 * width])
        for m in range(2, FOLD):
            np.fmax(coarser, finer[:, m * width : (m + 1) * width], out=coarser)
        folds.append(coarser)
    return folds


def _floor(coarsest: Scores, k: int) -> Scores:
    """Per row, a value the row's ``k``-th largest score reaches.

    The ``k``-th largest entry of the coarsest fold, but at least the lowest
    finite value: ``-inf`` (excluded) is never a candidate, and a row with
    fewer than ``k`` finite groups keeps every finite item.
    """
    width = coarsest.shape[1]
    lowest = coarsest.dtype.type(np.finfo(coarsest.dtype).min)
    if k >= width:
        return np.full(len(coarsest), lowest, coarsest.dtype)
    if width <= 1024:
        # numpy's vectorised sort beats a partition on short rows.
        ranked = np.sort(coarsest, axis=1)
    else:
        ranked = np.partition(coarsest, width - k, axis=1)
    # NaN (a group without any number) ranks above everything: a row with one
    # among its top k needs its floor without them.
    nan = np.flatnonzero(np.isnan(ranked[:, width - k :]).any(axis=1))
    if len(nan):
        clean = coarsest[nan]
        clean[np.isnan(clean)] = -np.inf
        ranked[nan] = np.sort(clean, axis=1)
    # fmax: a row with fewer than k groups above -inf keeps every finite item.
    return np.fmax(ranked[:, width - k], lowest)


def _thin(
    rows: IntArray, columns: IntArray, values: Scores, floor: Scores, k: int
) -> tuple[IntArray, IntArray, Scores]:
    """Bound the candidates when exact ties crowd a block.

    Candidates are the entries that reach their row's floor, a few more than
    ``k`` per row unless many entries equal the floor exactly (a user with a
    zero vector, say). Then keep every entry above the floor and, per row,
    ``k`` of those equal to it: enough for the row's ``k`` best values.
    """
    if len(rows) <= CROWD * k * len(floor):
        return rows, columns, values
    tied = np.flatnonzero(values == floor[rows])
    order = np.argsort(rows[tied], kind="stable")
    tied = tied[order]
    counts = np.bincount(rows[tied], minlength=len(floor))
    rank = np.arange(len(tied)) - (np.cumsum(counts) - counts)[rows[tied]]
    keep = values > floor[rows]
    keep[tied[rank < k]] = True
    return rows[keep], columns[keep], values[keep]


def _reaching(
    level: Scores, floor: Scores, k: int
) -> tuple[IntArray, IntArray, Scores]:
    """``(row, column, value)`` of the entries of ``level`` that reach their
    floor (thinned, see :func:`_thin`)."""
    at = np.flatnonzero(level >= floor[:, None])
    values = np.take(level, at)
    rows = at // level.shape[1]
    return _thin(rows, at - rows * level.shape[1], values, floor, k)


def _expand(
    flat: Scores,
    rows: IntArray,
    columns: IntArray,
    row_stride: int,
    step: int,
    column_step: int,
    floor: Scores,
    k: int,
) -> tuple[IntArray, IntArray, Scores]:
    """The children of groups ``(rows, columns)`` that reach their row's floor
    (thinned, see :func:`_thin`).

    Child ``m`` of a group is ``flat[row * row_stride + column + m * step]``;
    its column in the finer level is ``column + m * column_step``. Read
    child by child (all first children, then all second ones...): nearby
    addresses in turn.
    """
    n = len(rows)
    at = rows * row_stride
    at += columns
    values = np.take(flat, _STEPS[:, None] * step + at)
    kept = np.flatnonzero(values >= floor[rows])
    member, group = np.divmod(kept, n)
    return _thin(
        rows[group],
        columns[group] + column_step * member,
        values.reshape(-1)[kept],
        floor,
        k,
    )


def _descend(
    folds: list[Scores], floor: Scores, k: int
) -> tuple[IntArray, IntArray, Scores]:
    """``(row, column, value)`` of the entries of ``folds[0]`` that reach the
    floor (thinned, see :func:`_thin`).

    One comparison over the finest level at most ``DENSE`` wide (cheaper
    than expanding groups from the coarser levels), then group by group.
    """
    start = next(
        level
        for level, fold in enumerate(folds)
        if fold.shape[1] <= DENSE or level == len(folds) - 1
    )
    rows, columns, values = _reaching(folds[start], floor, k)
    for level in range(start - 1, -1, -1):
        finer, width = folds[level], folds[level + 1].shape[1]
        rows, columns, values = _expand(
            finer.reshape(-1), rows, columns, finer.shape[1], width, width, floor, k
        )
    return rows, columns, values


def _select(
    rows: IntArray,
    columns: IntArray,
    values: Scores,
    n_rows: int,
    k: int,
    n_columns: int,
) -> tuple[IntArray, Scores]:
    """Each row's best ``k`` candidates (in any order), best first, ties by
    column index; slots without a candidate hold -1 and ``-inf``."""
    out_columns = np.full((n_rows, k), -1, dtype=np.int64)
    out_values = np.full((n_rows, k), -np.inf, dtype=values.dtype)
    if len(rows) == 0:
        return out_columns, out_values
    counts = np.bincount(rows, minlength=n_rows)
    starts = np.cumsum(counts) - counts
    slots = np.arange(k)
    filled = slots < counts[:, None]
    positions = (starts[:, None] + slots)[filled]
    column_bits = max(int(n_columns - 1).bit_length(), 1)
    row_bits = max(int(n_rows - 1).bit_length(), 1)
    if values.dtype == np.float32 and row_bits + 32 + column_bits <= 63:
        # One int64 key per candidate, sorted: the row, then the value's bits
        # mapped to decreasing order, then the column. -0.0 becomes 0.0 (so
        # that it ties with it), the only value not returned bit for bit.
        bits = (values + np.float32(0)).view(np.int32).astype(np.int64)
        bits ^= (bits >> 31) & 0x7FFFFFFF
        key = rows << (32 + column_bits)
        key |= (0x7FFFFFFF - bits) << column_bits
        key |= columns
        key.sort()
        best = key[positions]
        out_columns[filled] = best & ((1 << column_bits) - 1)
        bits = 0x7FFFFFFF - ((best >> column_bits) & 0xFFFFFFFF)
        bits ^= (bits >> 31) & 0x7FFFFFFF
        out_values[filled] = bits.astype(np.int32).view(np.float32)
    else:
        order = np.lexsort((columns, -values, rows))[positions]
        out_columns[filled] = columns[order]
        out_values[filled] = values[order]
    return out_columns, out_values


def top_k(scores: Scores, k: int) -> tuple[IntArray, Scores]:
    """Exact top-k columns per row, best first; ``-inf`` marks excluded items.

    Args:
        scores: one row per user, one column per item; never modified.
        k: how many columns per row (>= 1).

    Returns:
        Column indices and scores, both ``rows x min(k, columns)``. Scores are
        exactly the ``k`` largest of each row; ties within them are ordered by
        column index (which of several tied items at the k-th place is kept is
        unspecified). A ``-inf`` score holds no item: its column is -1. NaN
        scores count as excluded.
    """
    n_rows, n_columns = scores.shape
    k = min(k, n_columns)
    if k < 1:
        return np.empty((n_rows, 0), np.int64), np.empty((n_rows, 0), scores.dtype)
    if n_rows <= FEW_ROWS:
        return _top_k_rows(scores, k)
    padded = padded_width(n_columns, k)
    if padded != n_columns:
        full = np.full((n_rows, padded), -np.inf, dtype=scores.dtype)
        full[:, :n_columns] = scores
        scores = full
    folds = _fold(np.ascontiguousarray(scores), _levels(n_columns, k))
    floor = _floor(folds[-1], k)
    if len(folds) == 1:
        rows, columns, values = _reaching(folds[0], floor, k)
    else:
        width = folds[1].shape[1]
        rows, columns, _ = _descend(folds[1:], floor, k)
        rows, columns, values = _expand(
            folds[0].reshape(-1), rows, columns, padded, width, width, floor, k
        )
    return _select(rows, columns, values, n_rows, k, n_columns)


def _top_k_rows(scores: Scores, k: int) -> tuple[IntArray, Scores]:
    """:func:`top_k` row by row: the row's valid scores, those reaching its
    ``k``-th largest (``np.partition``), sorted by score then column."""
    n_rows = len(scores)
    columns = np.full((n_rows, k), -1, dtype=np.int64)
    values = np.full((n_rows, k), -np.inf, dtype=scores.dtype)
    for index, row in enumerate(scores):
        valid = np.flatnonzero(row > -np.inf)  # NaN is excluded too
        if len(valid) > k:
            kept = row[valid]
            kth = np.partition(kept, len(kept) - k)[len(kept) - k]
            valid = valid[kept >= kth]
        best = valid[np.lexsort((valid, -row[valid]))[:k]]
        columns[index, : len(best)] = best
        values[index, : len(best)] = row[best]
    return columns, values


def _top_k_one_query(
    query: Scores,
    items: Scores,
    k: int,
    exclude: sp.csr_matrix | None,
    allowed: npt.NDArray[np.bool_] | None,
) -> tuple[IntArray, Scores]:
    """:func:`top_k_inner` of one query (a user served live): one product
    with the whole catalogue, excluded and unavailable items set to
    ``-inf``, then :func:`top_k`; no copy of the allowed items' factors."""
    scores = (items @ query[0])[None, :]
    n_allowed = len(items)
    if allowed is not None:
        scores[0, ~allowed] = -np.inf
        n_allowed = int(allowed.sum())
    if exclude is not None:
        scores[0, exclude.tocsr().indices] = -np.inf
    if n_allowed == 0:
        return np.empty((1, 0), np.int64), np.empty((1, 0), query.dtype)
    return top_k(scores, min(k, n_allowed))


class _Exclusions:
    """A CSR matrix's stored entries, cut per block of rows without scipy."""

    def __init__(self, exclude: sp.csr_matrix | sp.csr_array) -> None:
        csr = exclude.tocsr()
        self.indptr = csr.indptr.astype(np.int64, copy=False)
        self.indices = csr.indices.astype(np.int64, copy=False)

    def block(self, first: int, last: int) -> tuple[IntArray, IntArray]:
        """``(row - first, column)`` of the entries of rows ``first:last``."""
        bounds = self.indptr[first : last + 1]
        rows = np.repeat(np.arange(last - first), np.diff(bounds))
        return rows, self.indices[bounds[0] : bounds[-1]]


class _Blocks:
    """Block starts ``0, block, 2 * block ...`` handed out to threads in turn.

    Each block is a fixed range of rows, so results never depend on which or
    how many threads score it, and a thread slowed down by other work on the
    machine simply takes fewer blocks.
    """

    def __init__(self, n: int, block: int) -> None:
        self._starts = iter(range(0, n, block))
        self._lock = threading.Lock()

    def __iter__(self) -> Iterator[int]:
        return self

    def __next__(self) -> int:
        with self._lock:
            return next(self._starts)


def _score_blocks(
    queries: Scores,
    items_t: Scores,
    k: int,
    exclude: _Exclusions | None,
    blocks: Iterable[int],
    block: int,
    columns: IntArray,
    values: Scores,
) -> None:
    """Top-k of each block of rows into ``columns`` / ``values``: a plain
    product and :func:`top_k`, for catalogues too small to fold."""
    n = len(queries)
    buffer = np.empty((min(block, n), items_t.shape[1]), items_t.dtype)
    for first in blocks:
        last = min(first + block, n)
        scores = buffer[: last - first]
        np.matmul(queries[first:last], items_t, out=scores)
        if exclude is not None:
            rows, cols = exclude.block(first, last)
            scores[rows, cols] = -np.inf
        columns[first:last], values[first:last] = top_k(scores, k)


def _score_folded(
    queries: Scores,
    chunks: Scores,
    n_items: int,
    k: int,
    levels: int,
    exclude: _Exclusions | None,
    blocks: Iterable[int],
    block: int,
    columns: IntArray,
    values: Scores,
) -> None:
    """Top-k of each block of rows into ``columns`` / ``values``, folding the
    block as it is multiplied.

    ``chunks[m]`` holds item columns ``m * width ... (m + 1) * width`` (zero
    padded), so ``scores[m]`` of a block is the ``m``-th member of every
    group of the first fold: each chunk is excluded from and folded in while
    it is in cache, and the scores are never read in full again.
    """
    width = chunks.shape[2]
    size = min(block, len(queries))
    scores = np.empty((FOLD, size, width), chunks.dtype)
    fold = np.empty((size, width), chunks.dtype)
    bounds = np.zeros(FOLD + 1, dtype=np.int64)
    at = bounds
    for first in blocks:
        last = min(first + size, len(queries))
        n = last - first
        part = queries[first:last]
        folded = fold[:n]
        if exclude is not None:
            # Excluded entries by chunk: chunk m's are at[bounds[m]:bounds[m+1]].
            rows, cols = exclude.block(first, last)
            member, group = np.divmod(cols, width)
            order = np.argsort(member, kind="stable")
            at = (rows * width + group)[order]
            bounds = np.searchsorted(member[order], np.arange(FOLD + 1))
        for m in range(FOLD):
            chunk = scores[m, :n]
            np.matmul(part, chunks[m], out=chunk)
            if (m + 1) * width > n_items:
                chunk[:, max(n_items - m * width, 0) :] = -np.inf
            if bounds[m + 1] > bounds[m]:
                chunk.reshape(-1)[at[bounds[m] : bounds[m + 1]]] = -np.inf
            if m == 1:
                np.fmax(scores[0, :n], chunk, out=folded)
            elif m > 1:
                np.fmax(folded, chunk, out=folded)
        folds = _fold(folded, levels - 1)
        floor = _floor(folds[-1], k)
        rows, groups, _ = _descend(folds, floor, k)
        rows, cols, vals = _expand(
            scores.reshape(-1), rows, groups, width, size * width, width, floor, k
        )
        columns[first:last], values[first:last] = _select(
            rows, cols, vals, n, k, FOLD * width
        )


def available_cpus() -> int:
    """The CPUs this process may use: ``OMP_NUM_THREADS`` when set (a Ray
    worker gets its CPU allotment there), else the machine's."""
    try:
        return max(int(os.environ.get("OMP_NUM_THREADS", "")), 1)
    except ValueError:
        return os.cpu_count() or 1


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
        workers: threads, each with single-threaded BLAS; default: the
            CPUs this process may use (:func:`available_cpus`), at most 4.
            One thread (or one block) runs in the caller's thread with BLAS
            as configured.

    Returns:
        Item indices (into ``items``) and scores, ``n x min(k, m')`` where
        ``m'`` counts the allowed items; best first, ties by item index
        (which of several items tied at the k-th place is kept is
        unspecified). A slot no item could fill (everything else excluded,
        or scored NaN) has index -1 and score ``-inf``.

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
    if len(queries) == 1:
        return _top_k_one_query(queries, items, k, exclude, allowed)
    keep: IntArray | None = None
    if allowed is not None and not allowed.all():
        keep = np.flatnonzero(allowed).astype(np.int64)
        items = items[keep]
        exclude = None if exclude is None else sp.csr_matrix(exclude[:, keep])
    if len(items) == 0 or len(queries) == 0:
        shape = (len(queries), 0)
        return np.empty(shape, np.int64), np.empty(shape, queries.dtype)
    n_items = len(items)
    k = min(k, n_items)
    excluded = None if exclude is None else _Exclusions(exclude)
    n = len(queries)
    columns = np.empty((n, k), dtype=np.int64)
    values = np.empty((n, k), dtype=queries.dtype)
    blocks = _Blocks(n, block)
    run: Callable[[], None]
    levels = _levels(n_items, k)
    if levels == 0:
        items_t = np.ascontiguousarray(items.T)

        def run() -> None:
            _score_blocks(queries, items_t, k, excluded, blocks, block, columns, values)

    else:
        width = padded_width(n_items, k) // FOLD
        padded = np.zeros((FOLD * width, items.shape[1]), items.dtype)
        padded[:n_items] = items
        # chunks[m] = items m * width ... (m + 1) * width, transposed.
        chunks = np.ascontiguousarray(
            padded.reshape(FOLD, width, -1).transpose(0, 2, 1)
        )

        def run() -> None:
            _score_folded(
                queries,
                chunks,
                n_items,
                k,
                levels,
                excluded,
                blocks,
                block,
                columns,
                values,
            )

    n_blocks = -(-n // block)  # one block (a user served live): no CPU count
    workers = 1 if n_blocks == 1 else min(workers or min(available_cpus(), 4), n_blocks)
    if workers <= 1:
        run()
    else:
        with threadpool_limits(1, "blas"), ThreadPoolExecutor(workers) as pool:
            for done in [pool.submit(run) for _ in range(workers)]:
                done.result()
    if keep is not None:
        columns = np.where(columns >= 0, keep[columns], -1)
    return columns, values
