"""Clustering models, one module per model; :func:`make_clusterer` picks one by name.

Every clusterer works in the preprocessed space (see :mod:`segmentation.preprocess`) and follows
the interface of :mod:`segmentation.models.base`. The rule-based RFM model
(:mod:`segmentation.models.rfm`) is the exception: it scores raw recency, frequency and monetary
value, so it needs no preprocessing.
"""

from segmentation.models.base import MODELS, Clusterer, ModelName, make_clusterer
from segmentation.models.gmm import GaussianSegments
from segmentation.models.rfm import RFM_SEGMENTS, RFMRules
from segmentation.models.ward import WardSegments

__all__ = [
    "MODELS",
    "RFM_SEGMENTS",
    "Clusterer",
    "GaussianSegments",
    "ModelName",
    "RFMRules",
    "WardSegments",
    "make_clusterer",
]
