"""Response propensity: who is likely to respond to a campaign.

Two candidates, logistic regression and gradient boosting, are compared by stratified
cross-validation (ROC AUC) on a training split; the winner is judged once on a held-out split.

Class imbalance: responders are rare (15% in the Customer Personality data, a few percent in
campaign logs). Both candidates train with balanced class weights, so the rare class shapes the
model as much as the common one; that inflates raw probabilities toward 0.5, so scores are
recalibrated (Platt scaling fitted on the cross-validation's out-of-fold scores) to real
probabilities; the held-out calibration curve shows how well. Splits are
stratified, and the reports lead with average precision and lift, which imbalance cannot flatter.

Whether the model beats chance at all is judged on the chosen candidate's out-of-fold scores
(:func:`~campaigns.personalization.chance.auc_check`); one that does not is marked rejected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split
from sklearn.pipeline import Pipeline

from campaigns.personalization.chance import auc_check
from campaigns.personalization.errors import PersonalizationError
from campaigns.personalization.features import (
    FeatureSpec,
    choose_features,
    feature_frame,
    preprocessor,
)
from campaigns.personalization.threads import single_threaded

_FloatArray = npt.NDArray[np.float64]

CANDIDATES: tuple[str, ...] = ("logistic_regression", "gradient_boosting")


def candidate(name: str, spec: FeatureSpec, seed: int) -> Pipeline:
    """An unfitted candidate pipeline (preprocessing, then the classifier)."""
    if name == "logistic_regression":
        classifier: Any = LogisticRegression(
            class_weight="balanced", solver="lbfgs", max_iter=2000, C=1.0
        )
    elif name == "gradient_boosting":
        classifier = HistGradientBoostingClassifier(
            class_weight="balanced",
            learning_rate=0.05,
            max_iter=100,
            max_leaf_nodes=15,
            l2_regularization=1.0,
            early_stopping=False,
            random_state=seed,
        )
    else:
        raise PersonalizationError(f"unknown model {name!r}; expected one of {CANDIDATES}")
    return Pipeline([("features", preprocessor(spec)), ("model", classifier)])


@dataclass(frozen=True)
class PropensityModel:
    """A trained response model; :meth:`score` gives calibrated probabilities."""

    estimator: Pipeline
    spec: FeatureSpec
    #: Training base rate: balanced weights assumed 50%, scores are shifted back to this.
    base_rate: float
    chosen: str
    #: Platt scaling (slope, intercept) on the logit of the balanced model's score.
    calibration: tuple[float, float] = (1.0, 0.0)
    report: dict[str, Any] = field(default_factory=dict)

    def score(self, customers: pd.DataFrame) -> _FloatArray:
        """The probability of responding, per row of ``customers`` (which need the feature
        columns the model was trained on)."""
        missing = [c for c in self.spec.columns if c not in customers.columns]
        if missing:
            raise PersonalizationError(
                f"the propensity model needs the column(s) {', '.join(missing)}, which the "
                "customer table lacks; retrain it with 'campaign model train propensity'"
            )
        raw = self.estimator.predict_proba(feature_frame(customers, self.spec))[:, 1]
        slope, intercept = self.calibration
        return _sigmoid(slope * _logit(np.asarray(raw, dtype=np.float64)) + intercept)


def _logit(p: _FloatArray) -> _FloatArray:
    clipped = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(clipped / (1.0 - clipped))


def _sigmoid(z: _FloatArray) -> _FloatArray:
    return 1.0 / (1.0 + np.exp(-z))


def _platt(balanced: _FloatArray, y: npt.NDArray[np.int64]) -> tuple[float, float]:
    """Platt scaling fitted on out-of-fold scores: maps balanced-weight scores back to real
    probabilities (balancing inflates them toward 0.5)."""
    fit = LogisticRegression(solver="lbfgs", max_iter=1000, C=1e6).fit(
        _logit(balanced).reshape(-1, 1), y
    )
    return float(fit.coef_[0, 0]), float(fit.intercept_[0])


def _train_propensity(
    frame: pd.DataFrame,
    target: str,
    seed: int = 0,
    folds: int = 5,
    test_size: float = 0.25,
    drop: tuple[str, ...] = (),
) -> PropensityModel:
    """Train on ``frame`` (one row per customer) to predict the 0/1 column ``target``.

    :param drop: further columns not to use as features (leaks of the target)
    """
    if target not in frame.columns:
        raise PersonalizationError(
            f"no column {target!r} to learn from; the columns are: "
            + ", ".join(str(c) for c in frame.columns)
        )
    labels = pd.to_numeric(frame[target], errors="coerce")
    known = labels.isin([0, 1])
    frame, y = frame.loc[known], labels[known].astype(np.int64).to_numpy()
    positives = int(y.sum())
    if positives < folds or len(y) - positives < folds:
        raise PersonalizationError(
            f"{target!r} has {positives} responders and {len(y) - positives} non-responders; "
            f"each class needs at least {folds} to cross-validate"
        )
    spec = choose_features(frame, drop=(target, *drop))
    if not spec.columns:
        raise PersonalizationError("no usable feature columns besides the target")
    x = feature_frame(frame, spec)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, stratify=y, random_state=seed
    )
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    cv: dict[str, dict[str, float]] = {}
    out_of_fold: dict[str, _FloatArray] = {}
    for name in CANDIDATES:
        predicted = cross_val_predict(
            candidate(name, spec, seed), x_train, y_train, cv=splitter, method="predict_proba"
        )[:, 1]
        out_of_fold[name] = predicted
        per_fold = [
            roc_auc_score(y_train[test], predicted[test])
            for _, test in splitter.split(x_train, y_train)
        ]
        cv[name] = {"mean": float(np.mean(per_fold)), "std": float(np.std(per_fold))}
    chosen = max(CANDIDATES, key=lambda n: cv[n]["mean"])
    chance = auc_check(y_train, out_of_fold[chosen], seed)
    estimator = candidate(chosen, spec, seed).fit(x_train, y_train)
    calibration = _platt(out_of_fold[chosen], y_train)
    base_rate = float(y_train.mean())
    model = PropensityModel(estimator, spec, base_rate, chosen, calibration)
    predicted = model.score(x_test)
    report = {
        "target": target,
        "rows": len(y),
        "responders": positives,
        "base_rate": float(y.mean()),
        "features": spec.columns,
        "imbalance": (
            f"{y.mean():.1%} responders: balanced class weights in training, scores recalibrated "
            "to the base rate on out-of-fold predictions; stratified splits"
        ),
        "cv_folds": folds,
        "cv_roc_auc": cv,
        "chosen": chosen,
        "held_out": held_out_metrics(y_test, predicted),
        "chance": chance,
        "rejected": not chance["beats_chance"],
    }
    return PropensityModel(estimator, spec, base_rate, chosen, calibration, report)


def held_out_metrics(y: npt.NDArray[np.int64], score: _FloatArray) -> dict[str, Any]:
    """ROC AUC, average precision, calibration curve and lift by decile on a held-out split."""
    prob_true, prob_pred = calibration_curve(y, score, n_bins=10, strategy="quantile")
    return {
        "rows": len(y),
        "roc_auc": float(roc_auc_score(y, score)),
        "average_precision": float(average_precision_score(y, score)),
        "base_rate": float(np.mean(y)),
        "mean_score": float(np.mean(score)),
        "calibration": [
            {"predicted": float(p), "observed": float(t)}
            for p, t in zip(prob_pred, prob_true, strict=True)
        ],
        "lift_by_decile": lift_by_decile(y, score),
    }


def lift_by_decile(y: npt.NDArray[np.int64], score: _FloatArray) -> list[dict[str, float]]:
    """Deciles by descending score: response rate and lift over the overall rate."""
    order = np.argsort(-score, kind="stable")
    overall = float(np.mean(y)) or 1.0
    rows = []
    for decile, part in enumerate(np.array_split(order, 10), start=1):
        rate = float(np.mean(y[part])) if len(part) else 0.0
        rows.append({"decile": float(decile), "rate": rate, "lift": rate / overall})
    return rows


def train_propensity(
    frame: pd.DataFrame,
    target: str,
    seed: int = 0,
    folds: int = 5,
    test_size: float = 0.25,
    drop: tuple[str, ...] = (),
) -> PropensityModel:
    """Train on ``frame`` (one row per customer) to predict the 0/1 column ``target``: both
    candidates cross-validated on a stratified training split, the better one (ROC AUC) fitted,
    recalibrated and reported on the held-out ``test_size``.

    :param drop: further columns not to use as features (leaks of the target)
    """
    with single_threaded():
        return _train_propensity(frame, target, seed, folds, test_size, drop)
