"""The live path's CSR reads equal scipy's indexing."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from loopml.workloads.recsys.sparse import csr_rows, csr_values


def _matrix() -> sp.csr_matrix:
    rng = np.random.default_rng(0)
    dense = rng.random((30, 50)) * (rng.random((30, 50)) < 0.2)
    dense[7] = 0.0  # an empty row
    dense[3, 4] = 0.5
    matrix = sp.csr_matrix(dense)
    # A duplicate entry (scipy adds them up) in row 3.
    indptr = matrix.indptr.copy()
    indptr[4:] += 1
    at = matrix.indptr[4]
    data = np.insert(matrix.data, at, 2.5)
    indices = np.insert(matrix.indices, at, 4)
    return sp.csr_matrix((data, indices, indptr), shape=matrix.shape)


def test_rows_equal_fancy_indexing() -> None:
    matrix = _matrix()
    for rows in ([3], [7], [29], [0, 5, 5, 2], list(range(30))):
        asked = np.array(rows, dtype=np.int64)
        got = csr_rows(matrix, asked)
        assert got.shape == (len(rows), 50)
        np.testing.assert_array_equal(got.toarray(), matrix[asked].toarray())
    assert csr_rows(matrix, np.arange(30)) is matrix


def test_values_equal_pairwise_indexing() -> None:
    matrix = _matrix()
    columns = np.array([4, 0, 49, 4, 13], dtype=np.int64)
    for rows in ([3] * 5, [7] * 5, [1, 3, 3, 29, 0]):
        asked = np.array(rows, dtype=np.int64)
        want = np.asarray(matrix[asked, columns]).ravel()
        np.testing.assert_array_equal(csr_values(matrix, asked, columns), want)
    # The duplicate entry counts in both: 0.5 + 2.5.
    assert csr_values(matrix, np.array([3]), np.array([4]))[0] == matrix[3, 4] == 3.0
    assert csr_values(matrix, np.zeros(0, np.int64), np.zeros(0, np.int64)).size == 0
