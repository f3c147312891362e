"""Reads of a few rows of a CSR matrix without scipy's fancy indexing.

A user served live reads one row of the history and one day of the local
popularity per request. ``matrix[rows]`` and ``matrix[rows, columns]``
validate and convert their indices first, about 100 and 30 us for one row;
slicing the row's stored entries directly costs a few microseconds, for
the same values (``tests/unit/test_recsys_sparse.py``).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def csr_rows(matrix: sp.csr_matrix, rows: IntArray) -> sp.csr_matrix:
    """``matrix[rows]`` (``matrix`` itself when ``rows`` are all its rows in
    order); one row is sliced from the stored entries, sharing their memory."""
    if len(rows) == matrix.shape[0] and (rows == np.arange(len(rows))).all():
        return matrix
    if len(rows) != 1:
        return matrix[rows]
    start, stop = matrix.indptr[rows[0]], matrix.indptr[rows[0] + 1]
    indptr = np.array([0, stop - start], dtype=matrix.indptr.dtype)
    return sp.csr_matrix(
        (matrix.data[start:stop], matrix.indices[start:stop], indptr),
        shape=(1, matrix.shape[1]),
        copy=False,
    )


def csr_values(matrix: sp.csr_matrix, rows: IntArray, columns: IntArray) -> FloatArray:
    """``matrix[rows, columns]`` as a float array, one value per pair.

    When every pair is in one row (one user's candidates on their day), the
    row is summed into a dense vector and read (duplicate entries add up,
    as in scipy); otherwise scipy reads the pairs.
    """
    if len(rows) == 0:
        return np.zeros(0)
    row = int(rows[0])
    if not (rows == row).all():
        return np.asarray(matrix[rows, columns], dtype=float).ravel()
    start, stop = matrix.indptr[row], matrix.indptr[row + 1]
    dense: FloatArray = np.bincount(
        matrix.indices[start:stop],
        weights=np.asarray(matrix.data[start:stop], dtype=float),
        minlength=matrix.shape[1],
    ).astype(float, copy=False)
    out: FloatArray = dense[columns]
    return out
