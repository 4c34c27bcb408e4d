"""Recommendations for a run's templates: fitted lazily, once per run and exclusion setting."""

from __future__ import annotations

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
from store.frames import ShopData


class RunRecommendations:
    """What ``recommendations`` holds in each campaign's templates during one run.

    Nothing is fitted until a campaign with ``recommendations`` asks; campaigns that share the
    exclusion settings share one fitted model.

    :param shop: the run's data (purchases after ``at`` are ignored)
    :param segments: segment id by customer id, for the popular-in-segment fallback
    :param at: the run's time
    """

    def __init__(self, shop: ShopData, segments: pd.Series | None, at: datetime) -> None:
        self.shop = shop
        self.segments = segments
        self.at = at
        self._models: dict[tuple[int, tuple[str, ...]], Recommender] = {}

    def model(self, config: RecommendationsConfig) -> Recommender:
        """The recommender for ``config``'s exclusion settings (fitted on first use)."""
        key = (config.exclude_days, tuple(sorted(config.repeat_categories)))
        if key not in self._models:
            settings = RecommenderSettings(recent_days=key[0], repeat_categories=key[1])
            with single_threaded():
                self._models[key] = fit_recommender(
                    self.shop.transactions,
                    self.shop.products,
                    self.shop.customers["customer_id"].astype(str),
                    self.at,
                    self.segments,
                    settings,
                )
        return self._models[key]

    def for_campaign(
        self, config: RecommendationsConfig | None, customer_ids: Sequence[str]
    ) -> dict[str, list[dict[str, Any]]]:
        """Per customer id, the products a campaign's templates show (empty without config)."""
        if config is None:
            return {}
        return recommend_for(self.model(config), customer_ids, config.count, config.method)
