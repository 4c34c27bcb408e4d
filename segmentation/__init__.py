"""Customer segmentation: features, preprocessing, models (k-means, Ward, Gaussian mixture,
RFM rules), choosing k, stability, stable ids across refits, named profiles and reports."""

from segmentation.features import RFM_COLUMNS, category_shares, rfm_features
from segmentation.model import LOG_FEATURES, Segmenter
from segmentation.models.base import MINIBATCH_ABOVE
from segmentation.profiles import SegmentProfile, profile_segments, profiles_with_names

__all__ = [
    "LOG_FEATURES",
    "MINIBATCH_ABOVE",
    "RFM_COLUMNS",
    "SegmentProfile",
    "Segmenter",
    "category_shares",
    "profile_segments",
    "profiles_with_names",
    "rfm_features",
]
