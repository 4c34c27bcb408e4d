"""The segmentation stage of a run: build the features, use the stored model (fit one when there
is none or the settings changed, keeping the previous model's ids), assign every customer, and
record who entered or left a segment. Also the library side of ``campaign segment``."""

from __future__ import annotations

import dataclasses
import pickle
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, text
from sqlmodel import Session, col, select

from campaigns.config.schema import Config, SegmentationConfig
from campaigns.data import ensure_data
from campaigns.errors import ConfigError, DataError, StoreError
from campaigns.planner import NOT_SEGMENTED, NOT_SEGMENTED_NAME
from segmentation import Segmenter, SegmentProfile, profiles_with_names, rfm_features
from segmentation.features import (
    category_shares,
    rfm_from_aggregates,
    shares_from_spend,
)
from segmentation.matching import match_segments, migration_matrix
from segmentation.report import report_data
from segmentation.traits import trait_features
from store.bulk import delete_all, insert_frame, read_frame
from store.engine import opened_store
from store.features import (
    FreshLines,
    category_spend_rows,
    feature_rows,
    features_cover,
    refresh_features,
)
from store.frames import ShopData
from store.tables import SegmentModel


@dataclass(frozen=True)
class FittedSegments:
    """The model a run uses: its store version, the estimator and its profiles.

    ``migration`` (customers by old and new segment) and ``new_ids`` are set on a refit that
    followed an earlier model.
    """

    version: int
    estimator: Segmenter
    profiles: list[dict[str, Any]]
    fitted_now: bool
    created_at: datetime | None = None
    migration: pd.DataFrame | None = None
    new_ids: list[int] = field(default_factory=list)
    #: Warnings about the data the model was fitted on (``--at`` far beyond the log's end).
    warnings: tuple[str, ...] = ()

    @property
    def names(self) -> dict[int, str]:
        return {int(p["segment_id"]): str(p["name"]) for p in self.profiles}

    @property
    def labels(self) -> dict[int, str]:
        """:attr:`names` and the name of :data:`~campaigns.planner.NOT_SEGMENTED`."""
        return {NOT_SEGMENTED: NOT_SEGMENTED_NAME, **self.names}

    def for_templates(self) -> dict[int, dict[str, Any]]:
        """What templates see as ``segment``: id, name and profile, by segment id (customers
        without a segment see id 0, its name and a profile with empty means)."""
        segments = {
            int(p["segment_id"]): {"id": int(p["segment_id"]), "name": p["name"], "profile": p}
            for p in self.profiles
        }
        empty = {"segment_id": NOT_SEGMENTED, "name": NOT_SEGMENTED_NAME, "means": {}}
        segments[NOT_SEGMENTED] = {
            "id": NOT_SEGMENTED,
            "name": NOT_SEGMENTED_NAME,
            "profile": {**empty, "medians": {}, "zscores": {}, "positions": {}},
        }
        return segments


@dataclass(frozen=True)
class Aggregates:
    """The store's per-customer aggregates (:mod:`store.features`), in place of the lines."""

    features: pd.DataFrame
    category_spend: pd.DataFrame | None


def segment_features(
    shop: ShopData,
    config: SegmentationConfig,
    at: datetime,
    aggregates: Aggregates | None = None,
) -> pd.DataFrame:
    """Every feature the configuration asks for, one row per customer, indexed by customer id.

    Always the RFM columns of :func:`segmentation.rfm_features` (templates and profiles use
    them); ``share_<category>`` columns when ``category_shares`` is a feature; and the customer
    table's traits, derived traits and categorical columns. With ``aggregates`` (which must
    cover the history up to ``at``, see :func:`stored_features`) the transaction log is not read.
    """
    shares = "category_shares" in config.features
    if aggregates is not None:
        features = rfm_from_aggregates(aggregates.features, shop.customers, at)
    else:
        features = rfm_features(shop.transactions, shop.customers, at)
    parts = [features]
    if shares and aggregates is not None and aggregates.category_spend is not None:
        parts.append(shares_from_spend(aggregates.category_spend, shop.customers))
    elif shares:
        parts.append(category_shares(shop.transactions, shop.customers, shop.products, at))
    derived = {name: value for name, value in config.derived.model_dump().items() if value}
    if config.traits or derived or config.categorical:
        try:
            numeric = [t for t in config.traits if t not in derived]
            traits = trait_features(shop.customers, numeric, derived, list(config.categorical), at)
        except KeyError as exc:
            raise DataError(f"segmentation: {exc.args[0]}") from None
        clash = [c for c in traits.columns if c in features.columns]
        if clash:
            raise DataError(
                f"segmentation: the customer column(s) {clash} clash with transaction features "
                "of the same name; rename them in the source's column mapping"
            )
        parts.append(traits)
    return pd.concat(parts, axis=1) if len(parts) > 1 else features


@dataclass(frozen=True)
class RunFeatures:
    """A run's features, and whether they came from the store's aggregates."""

    table: pd.DataFrame
    #: True when the aggregates covered ``at``; False when the lines were read (a run at a time
    #: before some stored lines).
    from_store: bool
    #: What the refresh of the aggregates did (:class:`store.features.FeatureState`).
    refresh: str
    #: Each customer's last purchase (naive UTC, by customer id), from the aggregates; None when
    #: the features came from the lines (:func:`campaigns.journeys.runner.last_purchases` then).
    last_purchase: pd.Series | None = None


def stored_features(
    engine: Engine, shop: ShopData, config: SegmentationConfig, at: datetime, loaded: bool
) -> RunFeatures:
    """:func:`segment_features` at ``at`` from the store's aggregates, brought up to date first
    (only the lines that arrived since the last refresh are read; ``loaded``: the shop was
    loaded just now, and its lines, still in memory, build them). When some stored line is dated
    after ``at`` the aggregates cannot leave it out: the features come from the lines."""
    categories = "category_shares" in config.features
    fresh = FreshLines(shop.transactions, shop.products) if loaded else None
    state = refresh_features(engine, categories, fresh)
    if not features_cover(state, at):
        return RunFeatures(segment_features(shop, config, at), False, state.action)
    rows = feature_rows(engine)
    aggregates = Aggregates(rows, category_spend_rows(engine) if categories else None)
    last = rows.set_index(rows["customer_id"].astype(str))["last_order_at"].dropna()
    return RunFeatures(segment_features(shop, config, at, aggregates), True, state.action, last)


def uses_transactions(config: SegmentationConfig) -> bool:
    """Whether the model clusters on features of the transaction log."""
    return bool(config.features) or config.model == "rfm"


def segmentable(features: pd.DataFrame, config: SegmentationConfig) -> pd.Series:
    """Which customers the model segments: when it clusters on transaction features, those with
    at least one usable purchase up to the features' time (a customer whose lines were all
    quarantined, or who has not bought yet, has no behaviour to segment); everyone otherwise."""
    if uses_transactions(config) and "frequency" in features.columns:
        return features["frequency"] > 0
    return pd.Series(True, index=features.index)


def assign(model: FittedSegments, features: pd.DataFrame, config: SegmentationConfig) -> pd.Series:
    """Each customer's segment id (:data:`~campaigns.planner.NOT_SEGMENTED` for those
    :func:`segmentable` excludes), indexed like ``features``."""
    keep = segmentable(features, config).to_numpy(dtype=bool)
    ids = np.full(len(features), NOT_SEGMENTED, dtype=np.int64)
    if keep.any():
        ids[keep] = model.estimator.predict(features.loc[keep])
    return pd.Series(ids, index=features.index, name="segment_id")


def clustered_columns(config: SegmentationConfig, features: pd.DataFrame) -> list[str]:
    """The feature columns the model clusters on (``category_shares`` expanded)."""
    columns: list[str] = []
    for name in config.clustered:
        if name == "category_shares":
            columns += [c for c in features.columns if c.startswith("share_")]
        else:
            columns.append(name)
    return columns


def make_segmenter(config: SegmentationConfig, features: pd.DataFrame) -> Segmenter:
    """An unfitted :class:`Segmenter` with the configuration's settings."""
    prep = config.preprocessing
    return Segmenter(
        k=config.k,
        features=tuple(clustered_columns(config, features)) or ("recency", "frequency", "monetary"),
        random_state=config.seed,
        model=config.model,
        k_range=config.k_range,
        categorical=dict(config.categorical),
        missing=prep.missing,
        outliers=prep.outliers,
        outlier_rule=prep.outlier_rule,
        log=prep.log if prep.log == "auto" else tuple(prep.log),
        scaling=prep.scaling,
        refits=config.stability_refits,
    )


def _settings(config: SegmentationConfig) -> dict[str, Any]:
    # Names are applied on top of a fit, so renaming a segment does not refit.
    return config.model_dump(mode="json", exclude={"names"})


def latest_model(engine: Engine) -> SegmentModel | None:
    """The newest stored segmentation model, if any."""
    with Session(engine) as session:
        return session.exec(select(SegmentModel).order_by(col(SegmentModel.version).desc())).first()


def load_model(stored: SegmentModel, config: SegmentationConfig) -> FittedSegments:
    """A stored model as the run uses it (business names from ``config`` applied)."""
    estimator = pickle.loads(stored.blob)
    assert stored.version is not None
    history = getattr(estimator, "history_", {})
    return FittedSegments(
        stored.version,
        estimator,
        _named(stored.profiles, config),
        False,
        stored.created_at,
        history.get("migration"),
        list(history.get("new_ids", [])),
    )


def ensure_model(
    engine: Engine,
    config: SegmentationConfig,
    features: pd.DataFrame,
    now: datetime,
    persist: bool = True,
) -> FittedSegments:
    """The stored model if it was fitted with the current settings, otherwise a new fit.

    With ``persist=False`` (dry runs) a new fit is not written to the store.
    """
    stored = latest_model(engine)
    if stored is not None and stored.settings == _settings(config):
        return load_model(stored, config)
    return fit_model(engine, config, features, now, persist, stored)


def fit_model(
    engine: Engine,
    config: SegmentationConfig,
    features: pd.DataFrame,
    now: datetime,
    persist: bool = True,
    previous: SegmentModel | None = None,
) -> FittedSegments:
    """Fit a new model version on ``features``; with an earlier version, keep its segment ids
    (Hungarian matching of centroids) and record how customers move between segments."""
    previous = previous if previous is not None else latest_model(engine)
    features = features.loc[segmentable(features, config).to_numpy(dtype=bool)]
    if features.empty:
        raise DataError(
            "segmentation: no customer has a usable purchase at this time, so there is nothing "
            "to segment; check --at and the quarantine"
        )
    try:
        estimator = make_segmenter(config, features).fit(features)
    except ValueError as exc:
        raise DataError(f"segmentation: {exc}") from None
    history: dict[str, Any] = {}
    before = _unpickled(previous) if previous is not None else None
    if previous is not None and before is not None:
        matching = match_segments(before, estimator)
        members = read_frame(engine, "SELECT customer_id, segment_id FROM segment_membership")
        after = pd.Series(estimator.labels_, index=features.index)
        history = {
            "previous_version": previous.version,
            "matching": dataclasses.asdict(matching),
            "new_ids": matching.new_ids,
            "migration": migration_matrix(members.set_index("customer_id")["segment_id"], after)
            if len(members)
            else None,
        }
    estimator.history_ = history
    _drop_training_labels(estimator)
    profiles = [_profile_dict(p) for p in estimator.profiles_]
    version = (previous.version or 0) + 1 if previous is not None else 1
    if persist:
        row = SegmentModel(
            created_at=now,
            algorithm=estimator.algorithm_,
            k=estimator.k_,
            settings=_settings(config),
            profiles=profiles,
            blob=pickle.dumps(estimator),
        )
        with Session(engine) as session:
            session.add(row)
            session.commit()
            session.refresh(row)
            assert row.version is not None
            version = row.version
    return FittedSegments(
        version,
        estimator,
        _named(profiles, config),
        True,
        now,
        history.get("migration"),
        list(history.get("new_ids", [])),
    )


def _unpickled(stored: SegmentModel) -> Segmenter | None:
    """The stored estimator, or None when it was written by a version of this tool whose classes
    no longer load (its ids cannot be matched then; the new model numbers its own)."""
    try:
        estimator = pickle.loads(stored.blob)
    except (AttributeError, ImportError, pickle.UnpicklingError):
        return None
    return estimator if isinstance(estimator, Segmenter) and hasattr(estimator, "k_") else None


def _drop_training_labels(estimator: Segmenter) -> None:
    """Forget the per-row training labels: they are not needed to assign customers, and at a
    million customers they are most of the pickled model's size."""
    for owner in (estimator, estimator.clusterer_):
        if hasattr(owner, "labels_"):
            del owner.labels_


def _profile_dict(profile: Any) -> dict[str, Any]:
    data: dict[str, Any] = dataclasses.asdict(profile)
    if data["revenue_share"] != data["revenue_share"]:  # NaN is not JSON (PostgreSQL refuses it)
        data["revenue_share"] = None
    return data


def _named(profiles: list[dict[str, Any]], config: SegmentationConfig) -> list[dict[str, Any]]:
    """Apply the business names from config; unknown ids and duplicate names are config errors."""
    plain = [{**p, "revenue_share": _nan(p["revenue_share"])} for p in profiles]
    try:
        named = profiles_with_names([SegmentProfile(**p) for p in plain], config.names)
    except ValueError as exc:
        raise ConfigError(f"segmentation.{exc}") from None
    return [_profile_dict(p) for p in named]


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def record_membership(
    engine: Engine, run_id: int, version: int, segment_ids: pd.Series, at: datetime
) -> tuple[int, int]:
    """Store each customer's segment; log an ``exited`` and an ``entered`` event per change.

    :param segment_ids: segment id by customer id (the index)
    :return: (customers who entered a segment, customers who exited one)
    """
    current = read_frame(
        engine,
        "SELECT customer_id, segment_id, since FROM segment_membership",
        datetime_columns=["since"],
    ).set_index("customer_id")
    before = current["segment_id"]
    after = segment_ids.astype(int)
    was = before.reindex(after.index)
    changed = after[was.isna() | (was != after)]
    moved = changed.index[was.loc[changed.index].notna()]
    gone = before.index.difference(after.index)
    stamp = pd.Timestamp(at)
    entered = pd.DataFrame({"customer_id": changed.index, "segment_id": changed.to_numpy()})
    exited = pd.DataFrame(
        {
            "customer_id": moved.append(gone),
            "segment_id": before.loc[moved.append(gone)].astype(int).to_numpy(),
        }
    )
    events = pd.concat(
        [entered.assign(kind="entered"), exited.assign(kind="exited")], ignore_index=True
    ).assign(run_id=run_id, at=stamp)
    insert_frame(
        engine, "segment_event", events[["run_id", "customer_id", "segment_id", "kind", "at"]]
    )
    if len(changed) + len(gone) > _REWRITE_ABOVE:
        # Most customers changed (a first run or a refit): rewriting the table is cheaper than
        # deleting row by row. Customers who stayed keep their ``since``.
        since = current["since"].reindex(after.index).where(was == after, stamp)
        delete_all(engine, ["segment_membership"])
        insert_frame(
            engine,
            "segment_membership",
            pd.DataFrame(
                {
                    "customer_id": after.index,
                    "segment_id": after.to_numpy(),
                    "model_version": version,
                    "since": since.to_numpy(),
                }
            ),
        )
    else:
        _delete_members(engine, changed.index.tolist() + gone.tolist())
        insert_frame(
            engine, "segment_membership", entered.assign(model_version=version, since=stamp)
        )
        with engine.begin() as connection:
            connection.execute(
                text("UPDATE segment_membership SET model_version = :v WHERE model_version <> :v"),
                {"v": version},
            )
    return len(entered), len(exited)


_REWRITE_ABOVE = 100_000


def _delete_members(engine: Engine, customer_ids: list[str]) -> None:
    with engine.begin() as connection:
        for start in range(0, len(customer_ids), 500):
            chunk = customer_ids[start : start + 500]
            marks = ", ".join(f":c{i}" for i in range(len(chunk)))
            connection.execute(
                text(f"DELETE FROM segment_membership WHERE customer_id IN ({marks})"),
                {f"c{i}": c for i, c in enumerate(chunk)},
            )


# ------------------------------------------------------------------------- campaign segment ...


@dataclass(frozen=True)
class Assignment:
    """What ``campaign segment assign`` did: the model used, customers per segment, and how many
    customers it did not segment (no usable purchase)."""

    model: FittedSegments
    sizes: dict[int, int]
    entered: int
    exited: int
    not_segmented: int = 0


@dataclass(frozen=True)
class SegmentReport:
    """A stored model's report: the plain data, and the features it describes (for plots)."""

    model: FittedSegments
    data: dict[str, Any]
    features: pd.DataFrame


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def fit_segments(config: Config, at: datetime | None = None) -> FittedSegments:
    """``campaign segment fit``: fit and store a new model version on the features at ``at``,
    keeping the previous version's segment ids."""
    from campaigns.data_checks import stale_warning

    at = at or _now()
    with opened_store(config.store.url, config.root) as engine:
        shop, _ = ensure_data(engine, config, at)
        features = segment_features(shop, config.segmentation, at)
        model = fit_model(engine, config.segmentation, features, at)
    warning = stale_warning(shop.transactions, at)
    return dataclasses.replace(model, warnings=(warning,)) if warning else model


def assign_segments(config: Config, at: datetime | None = None) -> Assignment:
    """``campaign segment assign``: assign every customer with the current model (fitting one
    when there is none or the settings changed) and record memberships and events (run 0)."""
    at = at or _now()
    with opened_store(config.store.url, config.root) as engine:
        shop, _ = ensure_data(engine, config, at)
        features = segment_features(shop, config.segmentation, at)
        model = ensure_model(engine, config.segmentation, features, at)
        ids = assign(model, features, config.segmentation)
        segmented = ids[ids != NOT_SEGMENTED]
        entered, exited = record_membership(engine, 0, model.version, segmented, at)
    counts = segmented.value_counts()
    sizes = {p: int(counts.get(p, 0)) for p in sorted(model.names)}
    return Assignment(model, sizes, entered, exited, len(ids) - len(segmented))


def segment_report(config: Config, at: datetime | None = None) -> SegmentReport:
    """``campaign segment report``: the newest stored model's report, with the features at
    ``at`` (default: the time the model was fitted at) for the plots, the make-up of the
    segments by the columns not clustered on, their sizes over time and who is not segmented.

    :raises StoreError: when no model has been fitted yet
    """
    from campaigns.segment_insights import report_additions
    from segmentation.report import clean

    with opened_store(config.store.url, config.root) as engine:
        stored = latest_model(engine)
        if stored is None:
            raise StoreError(
                "no segmentation model in the store yet; run 'campaign segment fit' first"
            )
        model = load_model(stored, config.segmentation)
        when = at or stored.created_at
        shop, _ = ensure_data(engine, config, when)
        features = segment_features(shop, config.segmentation, when)
        ids = assign(model, features, config.segmentation)
        extra = report_additions(
            engine, shop, features, ids, model.estimator.features_, config.segmentation, when
        )
    data = report_data(
        model.estimator,
        model.profiles,
        model.version,
        model.created_at,
        model.migration,
        model.new_ids,
    )
    data.update(clean(extra))
    return SegmentReport(model, data, features.loc[ids != NOT_SEGMENTED])
