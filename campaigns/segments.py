"""The segmentation stage of a run: use the stored model (fit one when there is none or the
settings changed), assign every customer, and record who entered or left a segment."""

from __future__ import annotations

import dataclasses
import pickle
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine, text
from sqlmodel import Session, col, select

from campaigns.config.schema import SegmentationConfig
from campaigns.errors import ConfigError
from segmentation import Segmenter, SegmentProfile, profiles_with_names
from store.bulk import delete_all, insert_frame, read_frame
from store.tables import SegmentModel


@dataclass(frozen=True)
class FittedSegments:
    """The model a run uses: its store version, the estimator and its profiles."""

    version: int
    estimator: Segmenter
    profiles: list[dict[str, Any]]
    fitted_now: bool

    @property
    def names(self) -> dict[int, str]:
        return {int(p["segment_id"]): str(p["name"]) for p in self.profiles}

    def for_templates(self) -> dict[int, dict[str, Any]]:
        """What templates see as ``segment``: id, name and profile, by segment id."""
        return {
            int(p["segment_id"]): {"id": int(p["segment_id"]), "name": p["name"], "profile": p}
            for p in self.profiles
        }


def _settings(config: SegmentationConfig) -> dict[str, Any]:
    # Names are applied on top of a fit, so renaming a segment does not refit.
    return config.model_dump(mode="json", exclude={"names"})


def latest_model(engine: Engine) -> SegmentModel | None:
    """The newest stored segmentation model, if any."""
    with Session(engine) as session:
        return session.exec(select(SegmentModel).order_by(col(SegmentModel.version).desc())).first()


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
        estimator = pickle.loads(stored.blob)
        assert stored.version is not None
        return FittedSegments(stored.version, estimator, _named(stored.profiles, config), False)
    estimator = Segmenter(k=config.k, features=tuple(config.features), random_state=config.seed)
    estimator.fit(features)
    _drop_training_labels(estimator)
    profiles = [_profile_dict(p) for p in estimator.profiles_]
    version = (stored.version or 0) + 1 if stored is not None else 1
    if persist:
        row = SegmentModel(
            created_at=now,
            algorithm=config.model,
            k=config.k,
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
    return FittedSegments(version, estimator, _named(profiles, config), True)


def _drop_training_labels(estimator: Segmenter) -> None:
    """Forget the per-row training labels: they are not needed to assign customers, and at a
    million customers they are most of the pickled model's size."""
    for owner in (estimator, estimator.pipeline_[-1]):
        if hasattr(owner, "labels_"):
            del owner.labels_


def _profile_dict(profile: Any) -> dict[str, Any]:
    data: dict[str, Any] = dataclasses.asdict(profile)
    return data


def _named(profiles: list[dict[str, Any]], config: SegmentationConfig) -> list[dict[str, Any]]:
    """Apply the business names from config; unknown ids and duplicate names are config errors."""
    try:
        named = profiles_with_names([SegmentProfile(**p) for p in profiles], config.names)
    except ValueError as exc:
        raise ConfigError(f"segmentation.{exc}") from None
    return [_profile_dict(p) for p in named]


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
