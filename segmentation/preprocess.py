"""Preprocessing before clustering, as one scikit-learn ``ColumnTransformer``.

Numeric columns go through, in this order:

1. **missing values**: ``SimpleImputer`` with the median or the mean (``"drop"`` leaves rows with
   a missing value out of the fit and imputes the median when such a customer is assigned);
2. **log**: ``sign(x) * log1p(|x|)`` on skewed columns (money and counts have long right tails
   that would otherwise dominate the distances; the sign keeps net returns finite);
3. **outliers**: :class:`OutlierHandler`, judged on the logged values so that the ordinary long
   tail of spending is not all "outlying": IQR (outside ``[Q1 - 1.5 IQR, Q3 + 1.5 IQR]``; a
   column whose quartiles are equal has no IQR bounds) or
   z-score (``|z| > 3``); ``clip`` to those bounds, ``flag`` (count, keep the value) or ``drop``
   (count, leave the row out of the fit; it is still assigned afterwards);
4. **scaling**: standard, min-max or robust (median and IQR).

Categorical columns are one-hot encoded (unknown categories at assignment encode as all zeros) or
ordinal encoded in a given order (then scaled like a numeric column). Fit and assignment run the
same fitted transformer, so a customer is always assigned in the space the model was fitted in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    RobustScaler,
    StandardScaler,
)
from sklearn.utils.validation import check_is_fitted, validate_data

Missing = Literal["median", "mean", "drop"]
Outliers = Literal["none", "clip", "flag", "drop"]
OutlierRule = Literal["iqr", "zscore"]
Scaling = Literal["standard", "minmax", "robust"]

#: Multiple of the interquartile range beyond the quartiles that counts as outlying (Tukey).
IQR_FACTOR = 1.5
#: Absolute z-score above which a value counts as outlying.
Z_LIMIT = 3.0
#: Skewness above which ``log = "auto"`` log-transforms a column.
SKEWED = 1.0


class OutlierHandler(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Find values outside per-column bounds and clip them (or only count them).

    Parameters
    ----------
    rule:
        ``"iqr"``: outside ``[Q1 - 1.5 IQR, Q3 + 1.5 IQR]``; ``"zscore"``: ``|z| > 3``.
    action:
        ``"clip"`` clips to the bounds in ``transform``; ``"flag"``, ``"drop"`` and ``"none"``
        leave values unchanged (dropping rows is up to the caller, through :meth:`outlying`).

    Attributes
    ----------
    lower_, upper_:
        The bounds per column.
    n_outliers_:
        Outlying values per column in the training data.
    """

    def __init__(self, rule: OutlierRule = "iqr", action: Outliers = "clip") -> None:
        self.rule = rule
        self.action = action

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing values pass through (imputed before or after)
        return tags

    def fit(self, X: npt.ArrayLike, y: None = None) -> OutlierHandler:
        values = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        if self.rule == "iqr":
            q1, q3 = np.nanpercentile(values, [25, 75], axis=0) if len(values) else (0.0, 0.0)
            spread = np.asarray(q3 - q1, dtype=np.float64)
            # A column whose quartiles coincide (mostly one value, such as a share that is 0 for
            # most customers) has no spread to measure by: it gets no bounds.
            flat = spread == 0
            self.lower_ = np.where(flat, -np.inf, q1 - IQR_FACTOR * spread)
            self.upper_ = np.where(flat, np.inf, q3 + IQR_FACTOR * spread)
        elif self.rule == "zscore":
            mean, std = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
            self.lower_ = np.asarray(mean - Z_LIMIT * std, dtype=np.float64)
            self.upper_ = np.asarray(mean + Z_LIMIT * std, dtype=np.float64)
        else:
            raise ValueError(f"rule must be 'iqr' or 'zscore', got {self.rule!r}")
        self.n_outliers_ = self._outside(values).sum(axis=0).astype(np.int64)
        return self

    def transform(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
        check_is_fitted(self)
        values = validate_data(
            self, X, dtype=np.float64, ensure_all_finite="allow-nan", reset=False
        )
        if self.action == "clip":
            return np.asarray(np.clip(values, self.lower_, self.upper_), dtype=np.float64)
        return np.asarray(values, dtype=np.float64)

    def outlying(self, X: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """Whether each row has at least one value outside the bounds."""
        check_is_fitted(self)
        values = validate_data(
            self, X, dtype=np.float64, ensure_all_finite="allow-nan", reset=False
        )
        result: npt.NDArray[np.bool_] = np.asarray(self._outside(values).any(axis=1), dtype=bool)
        return result

    def _outside(self, values: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
        with np.errstate(invalid="ignore"):
            result: npt.NDArray[np.bool_] = (values < self.lower_) | (values > self.upper_)
        return result

    def get_feature_names_out(self, input_features: Any = None) -> npt.NDArray[np.object_]:
        names = (
            input_features
            if input_features is not None
            else [f"x{i}" for i in range(self.n_features_in_)]
        )
        return np.asarray(names, dtype=object)


def signed_log1p(X: npt.NDArray[Any], columns: list[int]) -> npt.NDArray[Any]:
    """``sign(x) * log1p(|x|)`` on ``columns`` of ``X`` (a copy)."""
    out = np.array(X, dtype=np.float64, copy=True)
    if columns:
        out[:, columns] = np.sign(out[:, columns]) * np.log1p(np.abs(out[:, columns]))
    return out


def signed_expm1(X: npt.NDArray[Any], columns: list[int]) -> npt.NDArray[Any]:
    """The inverse of :func:`signed_log1p`."""
    out = np.array(X, dtype=np.float64, copy=True)
    if columns:
        out[:, columns] = np.sign(out[:, columns]) * np.expm1(np.abs(out[:, columns]))
    return out


def skewed_columns(frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """The columns whose sample skewness exceeds :data:`SKEWED` (for ``log = "auto"``)."""
    skew = frame[list(columns)].astype(np.float64).skew()
    return [c for c in columns if float(skew[c]) > SKEWED]


def build_preprocessor(
    numeric: Sequence[str],
    categorical: Mapping[str, str | Sequence[str]],
    logged: Sequence[str],
    missing: Missing = "median",
    outliers: Outliers = "none",
    outlier_rule: OutlierRule = "iqr",
    scaling: Scaling = "standard",
) -> ColumnTransformer:
    """The unfitted transformer for a DataFrame with the ``numeric`` and ``categorical`` columns.

    ``categorical`` maps a column to ``"onehot"`` or to the ordered list of its categories
    (ordinal). Output columns: the numeric ones, then the one-hot ones, then the ordinal ones.
    """
    numeric = list(numeric)
    log_positions = [numeric.index(c) for c in logged if c in numeric]
    steps: list[tuple[str, Any]] = [
        ("impute", SimpleImputer(strategy="mean" if missing == "mean" else "median")),
        (
            "log",
            FunctionTransformer(
                signed_log1p,
                inverse_func=signed_expm1,
                kw_args={"columns": log_positions},
                inv_kw_args={"columns": log_positions},
                check_inverse=False,
                feature_names_out="one-to-one",
            ),
        ),
    ]
    if outliers != "none":
        steps.append(("outliers", OutlierHandler(rule=outlier_rule, action=outliers)))
    steps.append(("scale", _scaler(scaling)))
    transformers: list[tuple[str, Any, list[str]]] = []
    if numeric:
        transformers.append(("numeric", Pipeline(steps), numeric))
    onehot = [c for c, how in categorical.items() if how == "onehot"]
    if onehot:
        transformers.append(
            (
                "onehot",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="most_frequent")),
                        (
                            "encode",
                            OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                        ),
                    ]
                ),
                onehot,
            )
        )
    ordinal = {c: list(how) for c, how in categorical.items() if how != "onehot"}
    if ordinal:
        transformers.append(
            (
                "ordinal",
                Pipeline(
                    [
                        (
                            "encode",
                            OrdinalEncoder(
                                categories=list(ordinal.values()),
                                handle_unknown="use_encoded_value",
                                unknown_value=np.nan,
                                encoded_missing_value=np.nan,
                            ),
                        ),
                        ("impute", SimpleImputer(strategy="median")),
                        ("scale", _scaler(scaling)),
                    ]
                ),
                list(ordinal),
            )
        )
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)


def _scaler(scaling: Scaling) -> StandardScaler | MinMaxScaler | RobustScaler:
    if scaling == "minmax":
        return MinMaxScaler()
    if scaling == "robust":
        return RobustScaler()
    return StandardScaler()


def outlier_handler(preprocessor: ColumnTransformer) -> OutlierHandler | None:
    """The fitted outlier step of a fitted :func:`build_preprocessor`, if it has one."""
    numeric = preprocessor.named_transformers_.get("numeric")
    if numeric is None or "outliers" not in numeric.named_steps:
        return None
    handler: OutlierHandler = numeric.named_steps["outliers"]
    return handler


def outlying_rows(preprocessor: ColumnTransformer, frame: pd.DataFrame) -> npt.NDArray[np.bool_]:
    """Rows of ``frame`` with an outlying numeric value (all False without an outlier step)."""
    handler = outlier_handler(preprocessor)
    if handler is None:
        return np.zeros(len(frame), dtype=bool)
    numeric = preprocessor.named_transformers_["numeric"]
    columns = preprocessor.transformers_[0][2]
    before = numeric[:-2].transform(frame[columns])  # impute and log, as the handler saw them
    return handler.outlying(before)


def numeric_space(preprocessor: ColumnTransformer, frame: pd.DataFrame) -> npt.NDArray[np.float64]:
    """``frame``'s numeric columns through the numeric part of a fitted preprocessor."""
    numeric = preprocessor.named_transformers_["numeric"]
    columns = preprocessor.transformers_[0][2]
    return np.asarray(numeric.transform(frame[columns]), dtype=np.float64)
