"""Customer segmentation: RFM features, a k-means segmenter with stable ids, named profiles."""

from segmentation.features import RFM_COLUMNS, rfm_features
from segmentation.model import LOG_FEATURES, MINIBATCH_ABOVE, Segmenter
from segmentation.profiles import SegmentProfile, profile_segments, profiles_with_names

__all__ = [
    "LOG_FEATURES",
    "MINIBATCH_ABOVE",
    "RFM_COLUMNS",
    "SegmentProfile",
    "Segmenter",
    "profile_segments",
    "profiles_with_names",
    "rfm_features",
]
