"""Content-based similarity: TF-IDF over product names and categories, nearest neighbours."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.neighbors import NearestNeighbors


def product_text(products: pd.DataFrame) -> pd.Series:
    """What the vectoriser reads: the name, then the category twice (it weighs more than a word
    of the name: two products of one category are alike even when their names share nothing)."""
    name = products["name"].fillna("").astype(str)
    category = products["category"].fillna("").astype(str)
    return name + " " + category + " " + category


def content_similarity(products: pd.DataFrame, neighbours: int = 50) -> sp.csr_matrix:
    """Cosine similarity of products' TF-IDF vectors, keeping each product's nearest neighbours.

    New products, which nobody has bought yet, get neighbours here: this is the cold start of
    the catalogue that collaborative filtering cannot cover.
    """
    n = len(products)
    text = product_text(products)
    if n < 2 or not text.str.strip().any():
        return sp.csr_matrix((n, n), dtype=np.float32)
    vectors = TfidfVectorizer(token_pattern=r"(?u)\b\w[\w'-]*\b", sublinear_tf=True).fit_transform(
        text
    )
    count = min(neighbours + 1, n)
    search = NearestNeighbors(n_neighbors=count, metric="cosine", algorithm="brute").fit(vectors)
    distances, indices = search.kneighbors(vectors)
    rows = np.repeat(np.arange(n), count)
    similarity = (1.0 - distances).ravel().astype(np.float32)
    matrix = sp.csr_matrix((similarity, (rows, indices.ravel())), shape=(n, n), dtype=np.float32)
    matrix.setdiag(0.0)
    matrix.eliminate_zeros()
    matrix.data = np.clip(matrix.data, 0.0, 1.0)
    matrix.eliminate_zeros()
    return matrix
