"""The feature table a personalization model reads: numeric and categorical customer columns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

#: Columns never used as features: identifiers, contact details, bookkeeping and the truth.
EXCLUDED: frozenset[str] = frozenset(
    {
        "customer_id",
        "ID",
        "email",
        "first_name",
        "last_name",
        "timezone",
        "signup_at",
        "segment",
        "segment_id",
        "latent_group",
        "propensity",
        "uplift",
    }
)

#: A text column with more distinct values than this is an identifier or free text, not a category.
_MAX_LEVELS = 20


@dataclass(frozen=True)
class FeatureSpec:
    """Which columns a model reads, and as what."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]


def choose_features(frame: pd.DataFrame, drop: Sequence[str] = ()) -> FeatureSpec:
    """Numeric columns that vary, and text columns with a few levels, minus ``drop``."""
    numeric: list[str] = []
    categorical: list[str] = []
    for name in frame.columns:
        column = str(name)
        if column in EXCLUDED or column in drop:
            continue
        values = frame[name]
        if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
            if values.nunique(dropna=True) > 1:
                numeric.append(column)
        elif (
            pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)
        ) and 1 < values.nunique(dropna=True) <= _MAX_LEVELS:
            categorical.append(column)
    return FeatureSpec(tuple(numeric), tuple(categorical))


def preprocessor(spec: FeatureSpec) -> ColumnTransformer:
    """Median-impute and scale numbers; one-hot categories (unknown levels ignored)."""
    parts: list[tuple[str, Pipeline | OneHotEncoder, list[str]]] = []
    if spec.numeric:
        parts.append(
            (
                "numeric",
                make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
                list(spec.numeric),
            )
        )
    if spec.categorical:
        parts.append(
            (
                "categorical",
                # feature_frame has already written "missing" into the gaps.
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                list(spec.categorical),
            )
        )
    return ColumnTransformer(parts, sparse_threshold=0.0)


def feature_frame(frame: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """The columns of ``spec`` from ``frame``: numbers as floats, categories as text."""
    out = pd.DataFrame(index=frame.index)
    for column in spec.numeric:
        out[column] = pd.to_numeric(frame[column], errors="coerce").astype(np.float64)
    for column in spec.categorical:
        out[column] = frame[column].astype(object).where(frame[column].notna(), "missing")
    return out
