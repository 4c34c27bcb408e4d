"""The segmentation stage against a real store (SQLite and PostgreSQL): versions, stable ids
across a settings change, memberships, events and the migration matrix."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from sqlalchemy import Engine
from sqlmodel import Session

from campaigns.config.schema import SegmentationConfig
from campaigns.segments import (
    ensure_model,
    latest_model,
    load_model,
    record_membership,
    segment_features,
)
from store.bulk import read_frame
from store.sources.demo import generate_demo_shop
from store.tables import SegmentModel

AT = datetime(2026, 11, 23, 12)


def test_refit_keeps_ids_and_records_the_migration(fresh_store: Engine) -> None:
    shop = generate_demo_shop(300, 7, datetime(2026, 11, 23))
    four = SegmentationConfig(k=4, stability_refits=0, names={1: "VIP"})
    features = segment_features(shop, four, AT)
    first = ensure_model(fresh_store, four, features, AT)
    ids = pd.Series(first.estimator.predict(features), index=features.index)
    assert record_membership(fresh_store, 1, first.version, ids, AT) == (300, 0)

    # Same settings: the stored model, not a refit.
    assert ensure_model(fresh_store, four, features, AT).fitted_now is False
    five = SegmentationConfig(k=5, stability_refits=0, names={1: "VIP"})
    second = ensure_model(fresh_store, five, features, AT)

    assert (first.version, second.version) == (1, 2)
    assert second.fitted_now
    assert second.names[1] == "VIP"
    # The four old segments are all found again (with their automatic names); one is new.
    assert second.new_ids == [5]
    assert {i: second.names[i] for i in (2, 3, 4)} == {i: first.names[i] for i in (2, 3, 4)}
    assert second.migration is not None
    assert int(second.migration.to_numpy().sum()) == 300
    stored = latest_model(fresh_store)
    assert stored is not None
    assert stored.k == 5
    assert stored.algorithm == "kmeans"
    restored = load_model(stored, five)
    assert restored.profiles == second.profiles
    assert restored.new_ids == [5]
    pd.testing.assert_frame_equal(restored.migration, second.migration)

    after = pd.Series(restored.estimator.predict(features), index=features.index)
    entered, exited = record_membership(fresh_store, 2, second.version, after, AT)
    moved = int((after != ids).sum())
    assert (entered, exited) == (moved, moved)
    events = read_frame(fresh_store, "SELECT kind, COUNT(*) AS n FROM segment_event GROUP BY kind")
    assert dict(zip(events["kind"], events["n"].astype(int), strict=True)) == {
        "entered": 300 + moved,
        "exited": moved,
    }


def test_a_model_from_an_older_version_is_refitted_with_fresh_ids(fresh_store: Engine) -> None:
    with Session(fresh_store) as session:
        session.add(
            SegmentModel(
                created_at=AT, algorithm="kmeans", k=4, settings={}, profiles=[], blob=b"old"
            )
        )
        session.commit()
    shop = generate_demo_shop(200, 7, datetime(2026, 11, 23))
    config = SegmentationConfig(stability_refits=0)
    model = ensure_model(fresh_store, config, segment_features(shop, config, AT), AT)

    assert model.version == 2
    assert model.fitted_now
    assert sorted(model.names) == [1, 2, 3, 4]
    assert model.migration is None
