"""Item-to-item collaborative filtering: cosine similarity between products' buyer vectors."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

#: Similarity rows are computed this many products at a time (dense), bounding memory.
_ROW_CHUNK = 2048


def top_neighbours(similarity: sp.csr_matrix, neighbours: int) -> sp.csr_matrix:
    """Keep each row's ``neighbours`` largest entries (the diagonal is dropped first).

    Pruning makes scoring a sparse product whose cost does not grow with the catalogue.
    """
    n = similarity.shape[0]
    similarity = similarity.tocsr().astype(np.float32)
    similarity.setdiag(0.0)
    similarity.eliminate_zeros()
    keep = min(neighbours, max(n - 1, 1))
    rows: list[npt.NDArray[np.int64]] = []
    cols: list[npt.NDArray[np.int64]] = []
    vals: list[npt.NDArray[np.float32]] = []
    for start in range(0, n, _ROW_CHUNK):
        block = similarity[start : start + _ROW_CHUNK].toarray()
        if keep < block.shape[1]:
            top = np.argpartition(-block, keep - 1, axis=1)[:, :keep]
        else:
            top = np.tile(np.arange(block.shape[1]), (block.shape[0], 1))
        values = np.take_along_axis(block, top, axis=1)
        positive = values > 0
        rows.append((np.nonzero(positive)[0] + start).astype(np.int64))
        cols.append(top[positive].astype(np.int64))
        vals.append(values[positive].astype(np.float32))
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n, n),
        dtype=np.float32,
    )


def item_similarity(
    matrix: sp.csr_matrix, neighbours: int = 50, alpha: float = 0.5
) -> sp.csr_matrix:
    """Cosine similarity between the columns (products) of ``matrix``, pruned to neighbours.

    ``alpha`` = 0.5 is the plain cosine ``<i, j> / (|i| |j|)``. The asymmetric cosine
    ``<i, j> / (|i|^(2 alpha) |j|^(2 (1 - alpha)))`` with ``alpha`` above 0.5 divides less by the
    recommended product's own popularity: at 1 it is the conditional ``P(j | i)``, which ranks
    what buyers of ``i`` also buy, best sellers included.

    :param matrix: customers x products implicit feedback (see :mod:`.interactions`)
    :return: products x products; row ``i`` holds the products most similar to ``i``
    """
    columns = matrix.tocsc().astype(np.float32)
    squares = np.asarray(columns.multiply(columns).sum(axis=0)).ravel().astype(np.float64)
    source = np.divide(1.0, squares**alpha, out=np.zeros_like(squares), where=squares > 0)
    target = np.divide(1.0, squares ** (1.0 - alpha), out=np.zeros_like(squares), where=squares > 0)
    gram = (columns.T @ columns).tocsr()
    scaled = sp.diags(source.astype(np.float32)) @ gram @ sp.diags(target.astype(np.float32))
    return top_neighbours(scaled.tocsr(), neighbours)
