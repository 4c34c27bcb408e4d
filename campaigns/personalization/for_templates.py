"""Recommendations for a run's templates: fitted lazily, once per run and exclusion setting."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from campaigns.config.schema import RecommendationsConfig
from campaigns.personalization.recommender import (
    Recommender,
    RecommenderSettings,
    fit_recommender,
    recommend_for,
)
from campaigns.personalization.threads import single_threaded
from campaigns.personalization.tuning import tune
from store.frames import ShopData


class RunRecommendations:
    """What ``recommendations`` holds in each campaign's templates during one run.

    Nothing is fitted until a campaign with ``recommendations`` asks; campaigns that share the
    purpose, method and exclusion setting share one fitted model. With ``method = "auto"`` the
    method and its weights are first chosen on the last 30 days before the run
    (:func:`campaigns.personalization.tuning.tune`).

    :param shop: the run's data (purchases after ``at`` are ignored)
    :param segments: segment id by customer id, for the popular-in-segment fallback
    :param at: the run's time
    """

    def __init__(self, shop: ShopData, segments: pd.Series | None, at: datetime) -> None:
        self.shop = shop
        self.segments = segments
        self.at = at
        self._models: dict[tuple[str, str, int | None], tuple[Recommender, str]] = {}

    def model(self, config: RecommendationsConfig) -> tuple[Recommender, str]:
        """The recommender for ``config`` and the method it uses (fitted on first use)."""
        key = (config.purpose, config.method, config.exclude_days)
        if key not in self._models:
            settings = RecommenderSettings(recent_days=config.exclude_days)
            method: str = config.method
            with single_threaded():
                if method == "auto":
                    shop = self.shop
                    tuned = tune(shop.transactions, shop.products, self.at, config.purpose)
                    settings = dataclasses.replace(tuned.settings, recent_days=config.exclude_days)
                    method = tuned.method
                model = fit_recommender(
                    self.shop.transactions,
                    self.shop.products,
                    self.shop.customers["customer_id"].astype(str),
                    self.at,
                    self.segments,
                    settings,
                )
            self._models[key] = (model, method)
        return self._models[key]

    def for_campaign(
        self, config: RecommendationsConfig | None, customer_ids: Sequence[str]
    ) -> dict[str, list[dict[str, Any]]]:
        """Per customer id, the products a campaign's templates show (empty without config)."""
        if config is None:
            return {}
        model, method = self.model(config)
        return recommend_for(
            model,
            customer_ids,
            config.count,
            method,  # type: ignore[arg-type]
            config.purpose,
        )
