"""Trained personalization models, versioned in the store (one sequence of versions per kind)."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from campaigns.personalization.errors import PersonalizationError
from store.tables import PersonalizationModel

#: The kinds of model the store keeps.
KINDS: tuple[str, ...] = ("propensity", "uplift", "clv")


@dataclass(frozen=True)
class StoredModel:
    """A model read back from the store."""

    kind: str
    version: int
    created_at: datetime
    settings: dict[str, Any]
    report: dict[str, Any]
    model: Any


def save_model(
    engine: Engine,
    kind: str,
    model: Any,
    report: dict[str, Any],
    settings: dict[str, Any],
    now: datetime,
) -> int:
    """Store ``model`` as the next version of ``kind``; return the version."""
    latest = _latest_row(engine, kind)
    version = (latest.version + 1) if latest is not None else 1
    row = PersonalizationModel(
        kind=kind,
        version=version,
        created_at=now,
        settings=settings,
        report=report,
        blob=pickle.dumps(model),
    )
    with Session(engine) as session:
        session.add(row)
        session.commit()
    return version


def latest_row(engine: Engine, kind: str) -> PersonalizationModel | None:
    """The newest stored row of ``kind`` (settings and report, the model still pickled)."""
    return _latest_row(engine, kind)


def _latest_row(engine: Engine, kind: str) -> PersonalizationModel | None:
    with Session(engine) as session:
        return session.exec(
            select(PersonalizationModel)
            .where(PersonalizationModel.kind == kind)
            .order_by(col(PersonalizationModel.version).desc())
        ).first()


def latest_model(engine: Engine, kind: str) -> StoredModel | None:
    """The newest stored model of ``kind``, or None."""
    if kind not in KINDS:
        raise PersonalizationError(f"unknown model {kind!r}; expected one of {', '.join(KINDS)}")
    row = _latest_row(engine, kind)
    if row is None:
        return None
    return StoredModel(
        row.kind, row.version, row.created_at, row.settings, row.report, pickle.loads(row.blob)
    )


def usable_model(engine: Engine, kind: str) -> StoredModel | None:
    """The newest model of ``kind`` that runs may target with: one that beat chance, or was
    accepted anyway (``--accept``); rejected versions are skipped."""
    from campaigns.personalization.chance import is_rejected

    with Session(engine) as session:
        rows = session.exec(
            select(PersonalizationModel)
            .where(PersonalizationModel.kind == kind)
            .order_by(col(PersonalizationModel.version).desc())
        )
        for row in rows:
            if not is_rejected(row.report, row.settings):
                return StoredModel(
                    row.kind,
                    row.version,
                    row.created_at,
                    row.settings,
                    row.report,
                    pickle.loads(row.blob),
                )
    return None


def require_model(engine: Engine, kind: str) -> StoredModel:
    """The newest stored model of ``kind``, or an error saying how to train one."""
    stored = latest_model(engine, kind)
    if stored is None:
        raise PersonalizationError(
            f"no {kind} model in the store yet; run 'campaign model train {kind}' first"
        )
    return stored
