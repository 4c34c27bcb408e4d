"""Personalization models: product recommendations, response propensity and uplift.

The workspace-level entry points live in :mod:`campaigns.personalization.commands` (not
re-exported here: they import the run, which imports this package).
"""

from campaigns.personalization.errors import PersonalizationError
from campaigns.personalization.evaluate import Evaluation, MethodScore, evaluate_recommenders
from campaigns.personalization.models_store import latest_model, save_model
from campaigns.personalization.propensity import PropensityModel, train_propensity
from campaigns.personalization.recommender import (
    Recommender,
    RecommenderSettings,
    fit_recommender,
    recommend,
    recommend_for,
)
from campaigns.personalization.scoring import with_scores
from campaigns.personalization.targeting import select_targets
from campaigns.personalization.uplift import UpliftModel, simulate_experiment, train_uplift

__all__ = [
    "Evaluation",
    "MethodScore",
    "PersonalizationError",
    "PropensityModel",
    "Recommender",
    "RecommenderSettings",
    "UpliftModel",
    "evaluate_recommenders",
    "fit_recommender",
    "latest_model",
    "recommend",
    "recommend_for",
    "save_model",
    "select_targets",
    "simulate_experiment",
    "train_propensity",
    "train_uplift",
    "with_scores",
]
