"""The exact top-k of ``scoring``: every path against a brute-force sort.

Factors are small integers, so float32 products are exact whatever the
summation order and ties are frequent: the checks can demand the exact
scores and the documented tie order.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
import scipy.sparse as sp

from loopml.workloads.recsys.scoring import top_k, top_k_inner

F32 = npt.NDArray[np.float32]


def integer_factors(
    users: int, items: int, factors: int = 8, seed: int = 0
) -> tuple[F32, F32]:
    rng = np.random.default_rng(seed)
    queries = rng.integers(-3, 4, (users, factors)).astype(np.float32)
    catalogue = rng.integers(-3, 4, (items, factors)).astype(np.float32)
    return queries, catalogue


def random_exclusions(
    users: int, items: int, per_user: int, seed: int = 1
) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(users), per_user)
    cols = rng.integers(0, items, users * per_user)
    seen = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(users, items))
    seen.sum_duplicates()
    return seen


def assert_top_k(
    scores: npt.NDArray[np.floating],
    k: int,
    columns: npt.NDArray[np.int64],
    values: npt.NDArray[np.floating],
) -> None:
    """``columns``/``values`` are a valid exact top-k of ``scores`` (-inf: excluded)."""
    k = min(k, scores.shape[1])
    assert columns.shape == values.shape == (len(scores), k)
    assert columns.dtype == np.int64
    assert values.dtype == scores.dtype
    for row, cols, vals in zip(scores, columns, values, strict=True):
        want = np.sort(row)[::-1][:k]
        np.testing.assert_array_equal(vals, want)
        filled = vals > -np.inf
        assert (cols[~filled] == -1).all()
        picked = cols[filled]
        np.testing.assert_array_equal(row[picked], vals[filled])
        assert len(set(picked.tolist())) == len(picked)
        # Best first, ties by column index.
        same = vals[filled][1:] == vals[filled][:-1]
        assert (picked[1:][same] > picked[:-1][same]).all()
        # Every item strictly better than the k-th is in.
        if filled.all():
            better = np.flatnonzero(row > vals[-1])
            assert set(better.tolist()) <= set(picked.tolist())


@pytest.mark.parametrize(
    ("items", "k"),
    [
        (7, 10),
        (60, 10),
        (999, 10),
        (1000, 10),
        (2345, 10),
        (10000, 10),
        (3000, 1),
        (5000, 25),
    ],
)
def test_top_k_inner_is_exact_with_exclusions(items: int, k: int) -> None:
    queries, catalogue = integer_factors(300, items)
    seen = random_exclusions(300, items, 4)
    columns, values = top_k_inner(queries, catalogue, k, exclude=seen, block=64)
    scores = queries @ catalogue.T
    coo = seen.tocoo()
    scores[coo.row, coo.col] = -np.inf
    assert_top_k(scores, k, columns, values)


def test_top_k_inner_pads_when_too_few_items_remain() -> None:
    queries, catalogue = integer_factors(40, 2000)
    # User 0 may only get 3 items, user 1 none at all.
    dense = np.zeros((40, 2000), dtype=bool)
    dense[0, 3:] = True
    dense[1, :] = True
    dense[2, ::7] = True
    seen = sp.csr_matrix(dense)
    columns, values = top_k_inner(queries, catalogue, 10, exclude=seen, block=16)
    scores = queries @ catalogue.T
    scores[dense] = -np.inf
    assert_top_k(scores, 10, columns, values)
    assert (columns[0, 3:] == -1).all() and (values[0, 3:] == -np.inf).all()
    assert set(columns[0, :3].tolist()) == {0, 1, 2}
    assert (columns[1] == -1).all()


def test_top_k_inner_counts_explicit_zeros_as_exclusions() -> None:
    queries, catalogue = integer_factors(20, 3000)
    best = np.argmax(queries @ catalogue.T, axis=1)
    seen = sp.csr_matrix((np.zeros(20), (np.arange(20), best)), shape=(20, 3000))
    assert seen.nnz == 20
    columns, _ = top_k_inner(queries, catalogue, 10, exclude=seen)
    assert not (columns == best[:, None]).any()


def test_top_k_inner_allowed_items_and_float64() -> None:
    queries, catalogue = integer_factors(100, 4000)
    queries, catalogue = queries.astype(np.float64), catalogue.astype(np.float64)
    allowed = np.ones(4000, dtype=bool)
    allowed[::3] = False
    seen = random_exclusions(100, 4000, 6)
    columns, values = top_k_inner(
        queries, catalogue, 10, exclude=seen, allowed=allowed, block=32
    )
    assert values.dtype == np.float64
    scores = queries @ catalogue.T
    coo = seen.tocoo()
    scores[coo.row, coo.col] = -np.inf
    scores[:, ~allowed] = -np.inf
    assert_top_k(scores, 10, columns, values)


def test_top_k_inner_does_not_depend_on_threads_or_blocks() -> None:
    queries, catalogue = integer_factors(1000, 3000, seed=3)
    seen = random_exclusions(1000, 3000, 5)
    one = top_k_inner(queries, catalogue, 10, exclude=seen, workers=1)
    for workers, block in [(2, 256), (3, 100), (1, 37)]:
        other = top_k_inner(
            queries, catalogue, 10, exclude=seen, workers=workers, block=block
        )
        np.testing.assert_array_equal(one[0], other[0])
        np.testing.assert_array_equal(one[1], other[1])


def test_top_k_inner_random_float32_matches_a_full_sort() -> None:
    rng = np.random.default_rng(5)
    queries = rng.standard_normal((500, 64), dtype=np.float32)
    catalogue = rng.standard_normal((10000, 64), dtype=np.float32)
    seen = random_exclusions(500, 10000, 5)
    columns, values = top_k_inner(queries, catalogue, 10, exclude=seen)
    scores = queries.astype(np.float64) @ catalogue.T.astype(np.float64)
    coo = seen.tocoo()
    scores[coo.row, coo.col] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(columns, order)
    np.testing.assert_allclose(
        values, np.take_along_axis(scores, order, 1), rtol=1e-5, atol=1e-4
    )


def test_top_k_inner_empty_and_invalid() -> None:
    queries, catalogue = integer_factors(5, 30)
    columns, values = top_k_inner(queries[:0], catalogue, 10)
    assert columns.shape == values.shape == (0, 0)
    columns, values = top_k_inner(queries, catalogue, 10, allowed=np.zeros(30, bool))
    assert columns.shape == (5, 0)
    with pytest.raises(ValueError, match="k must be"):
        top_k_inner(queries, catalogue, 0)
    with pytest.raises(ValueError, match="factors"):
        top_k_inner(queries, catalogue[:, :3], 10)
    with pytest.raises(ValueError, match="exclude"):
        top_k_inner(queries, catalogue, 10, exclude=sp.csr_matrix((5, 29)))


@pytest.mark.parametrize("columns", [5, 200, 1000, 1234, 20000])
def test_top_k_on_a_block(columns: int) -> None:
    rng = np.random.default_rng(columns)
    scores = rng.integers(-50, 50, (64, columns)).astype(np.float64)
    scores[rng.random(scores.shape) < 0.3] = -np.inf
    scores[0, :] = -np.inf
    scores[1, 2:] = -np.inf
    got_columns, got_values = top_k(scores.copy(), 10)
    assert_top_k(scores, 10, got_columns, got_values)


@pytest.mark.parametrize("columns", [30, 5000])
def test_top_k_orders_ties_by_column_and_skips_nan(columns: int) -> None:
    scores = np.zeros((3, columns), dtype=np.float32)
    scores[1, 7] = 1.0
    scores[2, ::2] = np.nan
    got_columns, got_values = top_k(scores, 4)
    assert_top_k(np.nan_to_num(scores, nan=-np.inf), 4, got_columns, got_values)
    assert got_columns[1, 0] == 7
    assert (got_columns[2] % 2 == 1).all()


@pytest.mark.parametrize("nan_groups", [1, 3, 4, 60])
def test_top_k_nan_groups_do_not_raise_the_floor(nan_groups: int) -> None:
    # 5000 columns, k=4: the coarsest fold has 50 groups (columns c mod 50);
    # a whole group of NaN must not count among the k best groups.
    rng = np.random.default_rng(nan_groups)
    scores = rng.standard_normal((20, 5000)).astype(np.float32)
    for group in range(min(nan_groups, 50)):
        scores[:, group::50] = np.nan
    scores[:5, ::7] = np.nan
    got_columns, got_values = top_k(scores, 4)
    assert_top_k(np.nan_to_num(scores, nan=-np.inf), 4, got_columns, got_values)


def test_top_k_inner_nan_is_excluded_not_its_group() -> None:
    queries, catalogue = integer_factors(50, 3000)
    scores = queries @ catalogue.T
    best = np.argmax(scores, axis=1)
    catalogue[(best[0] + 300) % 3000] = np.nan  # same first-level group
    columns, values = top_k_inner(queries, catalogue, 10)
    assert columns[0, 0] == best[0]
    scores = np.nan_to_num(queries @ catalogue.T, nan=-np.inf)
    assert_top_k(scores, 10, columns, values)


def test_top_k_inner_many_exact_ties_stay_exact() -> None:
    # Zero users tie every item; zero items tie for every user.
    queries, catalogue = integer_factors(700, 3000)
    queries[::3] = 0
    catalogue[::2] = 0
    columns, values = top_k_inner(queries, catalogue, 5)
    assert_top_k(queries @ catalogue.T, 5, columns, values)
    np.testing.assert_array_equal(values[0], 0)


def test_top_k_of_no_columns() -> None:
    columns, values = top_k(np.empty((3, 0), dtype=np.float32), 10)
    assert columns.shape == values.shape == (3, 0)
