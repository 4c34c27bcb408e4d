"""Uplift: how much a message changes each customer's probability of converting.

Trained on an experiment with a holdout (random assignment: ``treated`` 1 got the message, 0 was
held out). Two approaches:

``two_model``
    One classifier on the treated, one on the held out; uplift = P(convert | treated) -
    P(convert | held out).
``class_transformation``
    Jaszewski and Lukaszewicz's label Z = 1 for treated converters and held-out non-converters;
    with both arms weighted to equal size, uplift = 2 P(Z = 1) - 1.

The approach is chosen on a validation part of the training split (Qini area) and both are
reported on a held-out split, with targeting by uplift against targeting by response
propensity (the treated model) and messaging everyone. The chosen model beats chance when its
held-out Qini coefficient's bootstrap interval is above 0
(:func:`~campaigns.personalization.chance.qini_check`); otherwise it is marked rejected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from campaigns.personalization.chance import qini_check
from campaigns.personalization.errors import PersonalizationError
from campaigns.personalization.features import (
    FeatureSpec,
    choose_features,
    feature_frame,
    preprocessor,
)
from campaigns.personalization.threads import single_threaded
from store.frames import ShopData
from store.sources.demo import response_probability, simulate_conversions

_FloatArray = npt.NDArray[np.float64]
_IntArray = npt.NDArray[np.int64]

APPROACHES: tuple[str, ...] = ("two_model", "class_transformation")

#: Columns of an uplift training table that are outcomes or truth, never features.
OUTCOMES: tuple[str, ...] = ("treated", "converted", "true_uplift")


def _classifier(seed: int) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(
        learning_rate=0.1,
        max_iter=40,
        max_leaf_nodes=8,
        min_samples_leaf=100,
        l2_regularization=1.0,
        early_stopping=False,
        random_state=seed,
    )


class UpliftEstimator(Protocol):
    def fit(self, x: pd.DataFrame, treated: _IntArray, converted: _IntArray) -> UpliftEstimator: ...

    def predict(self, x: pd.DataFrame) -> _FloatArray: ...


@dataclass
class TwoModel:
    """Separate response models for treated and held-out customers (one shared preprocessing,
    so scoring transforms the features once)."""

    spec: FeatureSpec
    seed: int = 0
    features_: ColumnTransformer | None = None
    treated_: HistGradientBoostingClassifier | None = None
    control_: HistGradientBoostingClassifier | None = None

    def fit(self, x: pd.DataFrame, treated: _IntArray, converted: _IntArray) -> TwoModel:
        arm = treated == 1
        self.features_ = preprocessor(self.spec).fit(x)
        matrix = self.features_.transform(x)
        self.treated_ = _classifier(self.seed).fit(matrix[arm], converted[arm])
        self.control_ = _classifier(self.seed).fit(matrix[~arm], converted[~arm])
        return self

    def _both(self, x: pd.DataFrame) -> tuple[_FloatArray, _FloatArray]:
        assert self.features_ is not None
        assert self.treated_ is not None
        assert self.control_ is not None
        matrix = self.features_.transform(x)
        treated = np.asarray(self.treated_.predict_proba(matrix)[:, 1], dtype=np.float64)
        control = np.asarray(self.control_.predict_proba(matrix)[:, 1], dtype=np.float64)
        return treated, control

    def response(self, x: pd.DataFrame) -> _FloatArray:
        """P(convert | messaged): the response propensity."""
        return self._both(x)[0]

    def predict(self, x: pd.DataFrame) -> _FloatArray:
        treated, control = self._both(x)
        return treated - control


@dataclass
class ClassTransformation:
    """One classifier on the transformed label, arms reweighted to equal size."""

    spec: FeatureSpec
    seed: int = 0
    model_: Pipeline | None = None

    def fit(self, x: pd.DataFrame, treated: _IntArray, converted: _IntArray) -> ClassTransformation:
        share = float(np.mean(treated))
        z = (converted * treated + (1 - converted) * (1 - treated)).astype(np.int64)
        # The transformation assumes half the customers were treated; weights make it so.
        weight = np.where(treated == 1, 0.5 / share, 0.5 / (1.0 - share))
        self.model_ = Pipeline(
            [("features", preprocessor(self.spec)), ("model", _classifier(self.seed))]
        ).fit(x, z, model__sample_weight=weight)
        return self

    def predict(self, x: pd.DataFrame) -> _FloatArray:
        assert self.model_ is not None
        return 2.0 * np.asarray(self.model_.predict_proba(x)[:, 1], dtype=np.float64) - 1.0


def make_estimator(approach: str, spec: FeatureSpec, seed: int) -> TwoModel | ClassTransformation:
    """An unfitted uplift estimator."""
    if approach == "two_model":
        return TwoModel(spec, seed)
    if approach == "class_transformation":
        return ClassTransformation(spec, seed)
    raise PersonalizationError(
        f"unknown uplift approach {approach!r}; expected one of {APPROACHES}"
    )


@dataclass(frozen=True)
class UpliftModel:
    """A trained uplift model; :meth:`score` gives the predicted change in conversion
    probability a message causes."""

    estimator: TwoModel | ClassTransformation
    spec: FeatureSpec
    chosen: str
    report: dict[str, Any] = field(default_factory=dict)

    def score(self, customers: pd.DataFrame) -> _FloatArray:
        missing = [c for c in self.spec.columns if c not in customers.columns]
        if missing:
            raise PersonalizationError(
                f"the uplift model needs the column(s) {', '.join(missing)}, which the customer "
                "table lacks; retrain it with 'campaign model train uplift'"
            )
        return self.estimator.predict(feature_frame(customers, self.spec))


# ------------------------------------------------------------------------------------- curves


def qini_curve(
    score: _FloatArray, treated: _IntArray, converted: _IntArray, points: int = 20
) -> list[dict[str, float]]:
    """Qini and uplift curves at ``points`` shares of customers, targeted by descending score.

    ``qini``: treated conversions minus held-out conversions scaled to the treated count, i.e.
    the incremental conversions among those targeted; ``uplift``: the difference in rates times
    the number targeted. Both start at 0.
    """
    order = np.argsort(-score, kind="stable")
    t = treated[order].astype(np.float64)
    y = converted[order].astype(np.float64)
    n_t, n_c = np.cumsum(t), np.cumsum(1.0 - t)
    y_t, y_c = np.cumsum(y * t), np.cumsum(y * (1.0 - t))
    rows = [{"share": 0.0, "qini": 0.0, "uplift": 0.0}]
    n = len(order)
    for step in range(1, points + 1):
        k = max(round(n * step / points) - 1, 0)
        scale = n_t[k] / n_c[k] if n_c[k] else 0.0
        rate_t = y_t[k] / n_t[k] if n_t[k] else 0.0
        rate_c = y_c[k] / n_c[k] if n_c[k] else 0.0
        rows.append(
            {
                "share": step / points,
                "qini": float(y_t[k] - y_c[k] * scale),
                "uplift": float((rate_t - rate_c) * (k + 1)),
            }
        )
    return rows


def curve_areas(curve: list[dict[str, float]], customers: int) -> dict[str, float]:
    """Areas under the Qini and uplift curves, per customer, and above the random line.

    Random targeting is the straight line to the curve's end; the Qini coefficient is the
    model's area minus that line's.
    """
    share = np.array([p["share"] for p in curve])
    areas: dict[str, float] = {}
    for name in ("qini", "uplift"):
        values = np.array([p[name] for p in curve]) / max(customers, 1)
        area = float(np.trapezoid(values, share))
        random = float(values[-1] / 2.0)
        areas[f"{name}_area"] = area
        areas[f"{name}_random_area"] = random
        areas[f"{name}_coefficient"] = area - random
    return areas


def incremental_per_thousand(
    score: _FloatArray, treated: _IntArray, converted: _IntArray, share: float
) -> float:
    """Estimated incremental conversions per 1,000 messages to the top ``share`` by ``score``:
    the treated rate minus the held-out rate among them, times 1,000."""
    top = np.argsort(-score, kind="stable")[: max(round(len(score) * share), 1)]
    t, y = treated[top] == 1, converted[top]
    if not t.any() or t.all():
        return 0.0
    return float((y[t].mean() - y[~t].mean()) * 1000.0)


# ----------------------------------------------------------------------------------- training


def _train_uplift(
    frame: pd.DataFrame, seed: int = 0, test_size: float = 0.3, target_share: float = 0.3
) -> UpliftModel:
    """Train both approaches on ``frame`` (``treated`` and ``converted`` 0/1 columns plus
    features, one row per customer) and keep the better one.

    When ``frame`` has ``true_uplift`` (a simulation with a known effect), the report also gives
    the true incremental conversions each targeting would have brought.
    """
    for column in ("treated", "converted"):
        if column not in frame.columns:
            raise PersonalizationError(f"the uplift data needs a {column!r} column (0 or 1)")
    treated = frame["treated"].astype(np.int64).to_numpy()
    converted = frame["converted"].astype(np.int64).to_numpy()
    cells = treated * 2 + converted
    if np.bincount(cells, minlength=4).min() < 10:
        raise PersonalizationError(
            "the uplift data needs at least 10 customers in each of treated/held out x "
            "converted/not converted"
        )
    spec = choose_features(frame, drop=OUTCOMES)
    x = feature_frame(frame, spec)
    rows = np.arange(len(frame))
    train, test = train_test_split(rows, test_size=test_size, stratify=cells, random_state=seed)
    fit_part, validate = train_test_split(
        train, test_size=0.3, stratify=cells[train], random_state=seed
    )
    validation: dict[str, float] = {}
    for approach in APPROACHES:
        estimator = make_estimator(approach, spec, seed)
        estimator.fit(x.iloc[fit_part], treated[fit_part], converted[fit_part])
        predicted = estimator.predict(x.iloc[validate])
        curve = qini_curve(predicted, treated[validate], converted[validate])
        validation[approach] = curve_areas(curve, len(validate))["qini_coefficient"]
    chosen = max(APPROACHES, key=lambda a: validation[a])

    held_out: dict[str, Any] = {}
    fitted: dict[str, TwoModel | ClassTransformation] = {}
    for approach in APPROACHES:
        estimator = make_estimator(approach, spec, seed)
        estimator.fit(x.iloc[train], treated[train], converted[train])
        fitted[approach] = estimator
        predicted = estimator.predict(x.iloc[test])
        curve = qini_curve(predicted, treated[test], converted[test])
        held_out[approach] = {"curve": curve, **curve_areas(curve, len(test))}
    model_scores = fitted[chosen].predict(x.iloc[test])
    chance = qini_check(model_scores, treated[test], converted[test], seed)
    two_model = fitted["two_model"]
    assert isinstance(two_model, TwoModel)
    propensity = two_model.response(x.iloc[test])
    t_test, y_test = treated[test], converted[test]
    everyone = np.zeros(len(test))
    targeting = {
        "share": target_share,
        "estimated_per_1000": {
            "uplift": incremental_per_thousand(model_scores, t_test, y_test, target_share),
            "propensity": incremental_per_thousand(propensity, t_test, y_test, target_share),
            "everyone": incremental_per_thousand(everyone, t_test, y_test, 1.0),
        },
    }
    if "true_uplift" in frame.columns:
        truth = frame["true_uplift"].to_numpy(dtype=np.float64)[test]
        targeting["true_per_1000"] = {
            "uplift": _true_top(model_scores, truth, target_share),
            "propensity": _true_top(propensity, truth, target_share),
            "everyone": float(truth.mean() * 1000.0),
        }
    report: dict[str, Any] = {
        "rows": len(frame),
        "treated": int(treated.sum()),
        "conversion_rate_treated": float(converted[treated == 1].mean()),
        "conversion_rate_held_out": float(converted[treated == 0].mean()),
        "features": spec.columns,
        "validation_qini_coefficient": validation,
        "chosen": chosen,
        "held_out_rows": len(test),
        "held_out": held_out,
        "targeting": targeting,
        "chance": chance,
        "rejected": not chance["beats_chance"],
    }
    if "latent_group" in frame.columns:
        groups = frame["latent_group"].astype(str).to_numpy()[test]
        report["mean_uplift_by_group"] = {
            str(g): float(model_scores[groups == g].mean()) for g in sorted(set(groups))
        }
    # The kept model learns from the training split only, so the report describes it exactly.
    return UpliftModel(fitted[chosen], spec, chosen, report)


def _true_top(score: _FloatArray, truth: _FloatArray, share: float) -> float:
    top = np.argsort(-score, kind="stable")[: max(round(len(score) * share), 1)]
    return float(truth[top].mean() * 1000.0)


# ------------------------------------------------------------------------------ simulated data


def simulate_experiment(
    shop: ShopData | None,
    customers: pd.DataFrame,
    variant: str = "discount",
    treated_share: float = 0.5,
    seed: int = 0,
    control: str | None = None,
) -> pd.DataFrame:
    """An experiment on the demo shop with its known response model: each customer is randomly
    treated (sent ``variant``) or not (held out, or sent ``control`` when given), and converts
    per :func:`store.sources.demo.simulate_conversions`.

    :param customers: the customer table to learn from (features and traits, indexed by
        customer id, with ``latent_group``); see :func:`campaigns.run.prepare`
    :return: ``customers`` plus ``treated``, ``converted`` and ``true_uplift`` columns
    """
    del shop  # the response model reads only the latent group
    if "latent_group" not in customers.columns:
        raise PersonalizationError(
            "simulating an experiment needs the demo shop's latent groups; "
            "with other data, train from an experiment in the store"
        )
    rng = np.random.default_rng(seed)
    treated = rng.random(len(customers)) < treated_share
    messaged = simulate_conversions(customers, variant, rng)
    untreated = simulate_conversions(customers, control, rng)
    truth = response_probability(customers, variant) - response_probability(customers, control)
    return customers.assign(
        treated=treated.astype(np.int64),
        converted=np.where(treated, messaged, untreated).astype(np.int64),
        true_uplift=truth,
    )


def experiment_data(
    customers: pd.DataFrame,
    exposures: pd.DataFrame,
    conversions: pd.DataFrame,
    window_days: float,
    holdout: str = "holdout",
) -> pd.DataFrame:
    """Training rows from a stored experiment: one per exposed customer, ``treated`` 0 for the
    ``holdout`` arm, ``converted`` 1 when a conversion falls in the window after exposure.

    :param exposures: ``customer_id``, ``variant``, ``exposed_at``
    :param conversions: ``customer_id``, ``converted_at``
    """
    if exposures.empty:
        raise PersonalizationError("the experiment has no exposures to learn from")
    exposed = exposures.drop_duplicates("customer_id").set_index("customer_id")
    window = pd.Timedelta(days=window_days)
    joined = conversions.merge(
        exposed[["exposed_at"]], left_on="customer_id", right_index=True, how="inner"
    )
    inside = (joined["converted_at"] >= joined["exposed_at"]) & (
        joined["converted_at"] < joined["exposed_at"] + window
    )
    converted_ids = set(joined.loc[inside, "customer_id"].astype(str))
    rows = customers.loc[customers.index.intersection(exposed.index)]
    treated = (exposed.loc[rows.index, "variant"] != holdout).astype(np.int64)
    converted = pd.Series(rows.index.astype(str).isin(converted_ids), index=rows.index)
    return rows.assign(treated=treated.to_numpy(), converted=converted.astype(np.int64).to_numpy())


def train_uplift(
    frame: pd.DataFrame, seed: int = 0, test_size: float = 0.3, target_share: float = 0.3
) -> UpliftModel:
    """Train both approaches on ``frame`` (``treated`` and ``converted`` 0/1 columns plus
    features, one row per customer), keep the better one on a validation part of the training
    split, and report both on the held-out ``test_size``; targeting compares the top
    ``target_share`` by uplift, by propensity, and everyone."""
    with single_threaded():
        return _train_uplift(frame, seed, test_size, target_share)
