"""Workspace-level entry points for ``campaign recommend`` and ``campaign model``: each opens
the store, does one thing and returns plain results."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from campaigns.config.schema import Config
from campaigns.personalization.chance import is_rejected
from campaigns.personalization.errors import PersonalizationError
from campaigns.personalization.evaluate import PURPOSES, Evaluation, evaluate_recommenders
from campaigns.personalization.models_store import StoredModel, require_model, save_model
from campaigns.personalization.propensity import train_propensity
from campaigns.personalization.recommender import RecommenderSettings
from campaigns.personalization.threads import single_threaded
from campaigns.personalization.uplift import experiment_data, simulate_experiment, train_uplift
from store.bulk import read_frame
from store.engine import opened_store
from store.shop import load_shop


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def evaluate(
    config: Config,
    k: int = 10,
    test_days: int = 30,
    splits: int = 3,
    purposes: tuple[str, ...] = PURPOSES,
    resamples: int = 1000,
    settings: RecommenderSettings | None = None,
) -> Evaluation:
    """``campaign recommend evaluate``: both tasks on rolling time splits of the workspace's
    store (filled from the source first when empty)."""
    from campaigns.data import ensure_data

    with opened_store(config.store.url, config.root) as engine:
        shop, _ = ensure_data(engine, config, datetime.now(UTC).replace(tzinfo=None))
    with single_threaded():
        return evaluate_recommenders(
            shop.transactions,
            shop.products,
            k,
            test_days,
            splits,
            purposes,
            settings,
            resamples,
        )


def _customer_table(engine: Engine, config: Config, at: datetime) -> pd.DataFrame:
    """The run's customer table at ``at`` (traits, features, segment), nothing persisted."""
    from campaigns.run import prepare

    return prepare(engine, config, at, persist=False).customers


def read_table(path: Path, separator: str | None) -> pd.DataFrame:
    """A CSV (or TSV with ``separator='\\t'``) with one row per customer."""
    if not path.exists():
        raise PersonalizationError(f"no such file: {path}")
    sep = {"tab": "\t", "\\t": "\t"}.get(separator or ",", separator or ",")
    return pd.read_csv(path, sep=sep)


@dataclass(frozen=True)
class Trained:
    """A model just trained and stored."""

    kind: str
    version: int
    report: dict[str, Any]
    #: Did not beat chance and was not accepted: runs do not target with it.
    rejected: bool = False


def train_propensity_model(
    config: Config,
    at: datetime | None = None,
    target: str | None = None,
    table: Path | None = None,
    separator: str | None = None,
    window_days: float = 14.0,
    seed: int = 0,
    accept: bool = False,
) -> Trained:
    """Train and store a propensity model (``accept``: let runs use it even if it does not beat
    chance).

    From ``table`` (a file with one row per customer and a 0/1 ``target`` column), from the
    store's customer traits when they hold ``target``, or else from the store's exposures and
    conversions: customers sent a message (not held out) and whether they converted within
    ``window_days``. Features describe customers at ``at``; learning from exposures, ``at``
    defaults to the first exposure, so that the converting purchase cannot leak into them.
    """
    with opened_store(config.store.url, config.root) as engine:
        if table is not None:
            if target is None:
                raise PersonalizationError("--target names the response column of --table")
            frame = read_table(table, separator)
            source = f"file {table.name}"
        elif target is not None:
            frame = _customer_table(engine, config, at or _now())
            if target not in frame.columns:
                raise PersonalizationError(
                    f"the customers have no column {target!r}; give --table FILE to read it "
                    "from a file, or leave --target out to learn from exposures and conversions"
                )
            source = f"customer trait {target!r}"
        else:
            exposures = _exposures(engine, None)
            messaged = exposures[exposures["variant"] != "holdout"]
            if messaged.empty:
                raise PersonalizationError(
                    "no exposures in the store to learn from; give --target COLUMN (a response "
                    "trait) or --table FILE --target COLUMN"
                )
            at = at or messaged["exposed_at"].min().to_pydatetime()
            customers = _customer_table(engine, config, at)
            frame = experiment_data(customers, messaged, _conversions(engine), window_days)
            frame = frame.drop(columns=["treated"])
            target, source = "converted", "exposures and conversions in the store"
        model = train_propensity(frame, target, seed=seed)
        report = {**model.report, "source": source}
        settings = {"target": target, "source": source, "seed": seed, "accepted": accept}
        version = save_model(engine, "propensity", model, report, settings, _now())
    return Trained("propensity", version, report, is_rejected(report, settings))


def _exposures(engine: Engine, experiment: str | None) -> pd.DataFrame:
    """Exposures (``customer_id``, ``variant``, ``exposed_at``) of one experiment, or all."""
    where = "" if experiment is None else " WHERE experiment = :e"
    return read_frame(
        engine,
        "SELECT customer_id, variant, exposed_at FROM exposure" + where + " ORDER BY exposed_at",
        {} if experiment is None else {"e": experiment},
        datetime_columns=["exposed_at"],
    )


def _conversions(engine: Engine) -> pd.DataFrame:
    """Tracked conversions and purchases from the transaction log, as (customer, time)."""
    tracked = read_frame(
        engine,
        "SELECT customer_id, converted_at FROM conversion WHERE kind = 'conversion'",
        datetime_columns=["converted_at"],
    )
    bought = read_frame(
        engine,
        "SELECT DISTINCT customer_id, invoiced_at AS converted_at FROM transaction_line",
        datetime_columns=["converted_at"],
    )
    return pd.concat([tracked, bought], ignore_index=True)


def train_uplift_model(
    config: Config,
    at: datetime | None = None,
    experiment: str | None = None,
    simulate: str | None = None,
    window_days: float = 14.0,
    seed: int = 0,
    control: str | None = None,
    accept: bool = False,
) -> Trained:
    """Train and store an uplift model, from ``experiment``'s exposures (its holdout is the
    untreated arm; features at ``at``, by default the first exposure) or, on the demo shop,
    from a simulated experiment sending ``simulate`` against a holdout (or against the
    ``control`` variant)."""
    with opened_store(config.store.url, config.root) as engine:
        if simulate is not None:
            customers = _customer_table(engine, config, at or _now())
            frame = simulate_experiment(
                load_shop(engine), customers, simulate, seed=seed, control=control
            )
            against = "a 50% holdout" if control is None else f"{control!r} (50%)"
            source = f"simulated experiment: {simulate!r} against {against}"
        elif experiment is not None:
            exposures = _exposures(engine, experiment)
            if exposures.empty:
                raise PersonalizationError(f"experiment {experiment!r} has no exposures")
            at = at or exposures["exposed_at"].min().to_pydatetime()
            customers = _customer_table(engine, config, at)
            frame = experiment_data(customers, exposures, _conversions(engine), window_days)
            source = f"experiment {experiment!r}"
        else:
            raise PersonalizationError(
                "name the data: --experiment NAME (with a holdout) or --simulate VARIANT (demo)"
            )
        model = train_uplift(frame, seed=seed)
        report = {**model.report, "source": source}
        settings = {"source": source, "seed": seed, "accepted": accept}
        version = save_model(engine, "uplift", model, report, settings, _now())
    return Trained("uplift", version, report, is_rejected(report, settings))


def model_report(config: Config, kind: str) -> StoredModel:
    """The newest stored model of ``kind`` with its report."""
    with opened_store(config.store.url, config.root) as engine:
        return require_model(engine, kind)
