"""``campaign track``: import clicks, conversions, guardrail events (unsubscribes, complaints) and
exposures from CSV or JSON Lines files.

Every row that cannot be used is reported with its line number and a reason; nothing is dropped
silently. Timestamps are ISO 8601; one without an offset is UTC. An event must belong to a known
customer (in the customer table, or exposed in an experiment); a click, unsubscribe or complaint
of a held-out customer who was sent no message at all is refused, since they could not have seen
one (their conversions are kept: that is what a holdout measures).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from sqlalchemy import Engine, bindparam, text

from campaigns.config.schema import TOPIC_NAME
from campaigns.engagement.imports import IMPORTED_KINDS, record_imported
from campaigns.errors import DataError
from campaigns.experiments.exposures import existing_arms, record_exposures
from store.bulk import insert_frame

Kind = Literal["clicks", "conversions", "unsubscribes", "bounces", "complaints", "exposures"]
KINDS: tuple[str, ...] = (
    "clicks",
    "conversions",
    "unsubscribes",
    "bounces",
    "complaints",
    "exposures",
)

#: The ``conversion.kind`` each kind of event file is stored as.
EVENT_KIND = {
    "clicks": "click",
    "conversions": "conversion",
    "unsubscribes": "unsubscribe",
    "complaints": "complaint",
}
#: Events that need a message to have been seen (refused for held-out customers sent nothing).
_NEED_A_MESSAGE = ("clicks", "unsubscribes", "bounces", "complaints")

_EVENT = ("customer_id", "timestamp")
_REQUIRED: dict[str, tuple[str, ...]] = {
    "clicks": _EVENT,
    "conversions": _EVENT,
    "unsubscribes": _EVENT,
    "bounces": _EVENT,
    "complaints": _EVENT,
    "exposures": ("experiment", "variant", "customer_id", "timestamp"),
}
_OPTIONAL: dict[str, tuple[str, ...]] = {
    "clicks": ("message_id",),
    "conversions": ("value", "message_id"),
    "unsubscribes": ("message_id", "topic"),
    "bounces": ("message_id", "bounce", "reason"),
    "complaints": ("message_id",),
    "exposures": ("message_id",),
}
#: Customer ids per ``IN (...)`` lookup.
_CHUNK = 500


@dataclass(frozen=True)
class BadRow:
    """A row that was not imported: its line in the file, a reason code and the detail."""

    line: int
    reason: str
    detail: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}: {self.detail}"


@dataclass(frozen=True)
class ImportResult:
    """What an import did: rows stored, repeat exposures not stored, and rows refused."""

    kind: str
    path: Path
    imported: int
    repeats: int
    bad: tuple[BadRow, ...]


def _read_rows(
    path: Path, required: tuple[str, ...], columns: tuple[str, ...]
) -> tuple[pd.DataFrame, list[BadRow]]:
    """All rows as strings with their line numbers, plus rows that are not even rows."""
    bad: list[BadRow] = []
    records: list[dict[str, Any]] = []
    try:
        handle = path.open(encoding="utf-8-sig", newline="")  # a spreadsheet may add a BOM
    except FileNotFoundError:
        raise DataError(f"tracking file {path} not found") from None
    with handle:
        if path.suffix.lower() in {".jsonl", ".ndjson", ".json"}:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    bad.append(BadRow(number, "bad_json", exc.msg))
                    continue
                if not isinstance(record, dict):
                    bad.append(BadRow(number, "bad_json", "not an object"))
                    continue
                records.append({"line": number, **{k: record.get(k) for k in columns}})
        else:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise DataError(f"tracking file {path} is empty; expected a header row")
            header = [h.strip() for h in header]
            missing = [c for c in required if c not in header]
            if missing:
                raise DataError(
                    f"tracking file {path} has no column {missing[0]!r}; its columns are: "
                    + ", ".join(repr(h) for h in header)
                )
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    bad.append(
                        BadRow(
                            reader.line_num,
                            "wrong_field_count",
                            f"{len(row)} fields, the header has {len(header)}",
                        )
                    )
                    continue
                record = dict(zip(header, row, strict=True))
                records.append({"line": reader.line_num, **{k: record.get(k) for k in columns}})
    return pd.DataFrame(records, columns=["line", *columns]), bad


def _text(column: pd.Series) -> pd.Series:
    return column.map(lambda v: "" if v is None or v != v else str(v).strip())


def _validate(kind: str, rows: pd.DataFrame) -> tuple[pd.DataFrame, list[BadRow]]:
    bad: list[BadRow] = []
    keep = pd.Series(True, index=rows.index)

    def refuse(mask: pd.Series, reason: str, detail: pd.Series) -> None:
        nonlocal keep
        mask = mask & keep
        bad.extend(
            BadRow(int(line), reason, str(d))
            for line, d in zip(rows.loc[mask, "line"], detail[mask], strict=True)
        )
        keep = keep & ~mask

    for name in _REQUIRED[kind]:
        values = _text(rows[name])
        rows[name] = values
        refuse(values == "", f"missing_{name}", pd.Series(f"no {name}", index=rows.index))
    raw_time = rows["timestamp"]
    times = pd.to_datetime(raw_time, format="ISO8601", utc=True, errors="coerce")
    refuse(times.isna(), "bad_timestamp", raw_time.map(lambda v: f"{v!r} is not an ISO 8601 time"))
    rows["timestamp"] = times.dt.tz_localize(None)
    if "value" in rows:
        raw_value = _text(rows["value"])
        values = pd.to_numeric(raw_value.replace("", "0"), errors="coerce")
        refuse(
            values.isna() | ~np.isfinite(values.fillna(0)),
            "bad_value",
            raw_value.map(lambda v: f"{v!r} is not a number"),
        )
        rows["value"] = values
    if "topic" in rows:
        topic = _text(rows["topic"])
        refuse(
            (topic != "") & ~topic.str.fullmatch(TOPIC_NAME.pattern.strip("^$")),
            "bad_topic",
            topic.map(lambda v: f"{v!r} is not a topic name"),
        )
        rows["topic"] = topic
    if "bounce" in rows:
        bounce = _text(rows["bounce"]).str.lower()
        refuse(
            ~bounce.isin(["", "hard", "soft"]),
            "bad_bounce",
            bounce.map(lambda v: f"{v!r} is not 'hard' or 'soft'"),
        )
        rows["bounce"] = bounce
    raw_message = _text(rows["message_id"])
    message = pd.to_numeric(raw_message.replace("", None), errors="coerce")
    refuse(
        (raw_message != "") & (message.isna() | (message % 1 != 0)),
        "bad_message_id",
        raw_message.map(lambda v: f"{v!r} is not a message number"),
    )
    rows["message_id"] = message.astype("Int64")
    return rows.loc[keep], bad


def _conflicts(engine: Engine, rows: pd.DataFrame) -> pd.Series:
    """Rows that put a customer in a second arm of an experiment (in the file or the store)."""
    conflict = pd.Series(False, index=rows.index)
    detail = pd.Series("", index=rows.index)
    for experiment, group in rows.groupby("experiment", sort=False):
        first = group.sort_values("timestamp", kind="stable").drop_duplicates("customer_id")
        arms = existing_arms(engine, str(experiment))
        known = pd.concat([arms, first.set_index("customer_id")["variant"]])
        known = known[~known.index.duplicated(keep="first")]
        expected = group["customer_id"].map(known)
        clash = expected != group["variant"]
        conflict.loc[group.index] = clash
        detail.loc[group.index] = (
            "customer "
            + group["customer_id"]
            + f" is already in {experiment!r} arm "
            + expected.astype(str).map(repr)
        )
    detail.loc[~conflict] = ""
    return detail


def _existing(engine: Engine, sql: str, ids: list[str]) -> set[str]:
    """The ids among ``ids`` that ``sql`` (with ``IN :ids``) returns, in chunks."""
    found: set[str] = set()
    query = text(sql).bindparams(bindparam("ids", expanding=True))
    with engine.connect() as connection:
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            found.update(str(row[0]) for row in connection.execute(query, {"ids": chunk}))
    return found


def _customer_checks(engine: Engine, kind: str, rows: pd.DataFrame) -> pd.Series:
    """The reason and detail to refuse each event row for, or "" (unknown or held out)."""
    ids = sorted(set(rows["customer_id"]))
    known = _existing(
        engine, "SELECT customer_id FROM customer WHERE customer_id IN :ids", ids
    ) | _existing(
        engine, "SELECT DISTINCT customer_id FROM exposure WHERE customer_id IN :ids", ids
    )
    reason = pd.Series("", index=rows.index)
    unknown = ~rows["customer_id"].isin(known)
    reason[unknown] = (
        "unknown_customer\x1fcustomer "
        + rows.loc[unknown, "customer_id"]
        + " is neither in the customer table nor exposed in an experiment"
    )
    if kind in _NEED_A_MESSAGE:
        held = _existing(
            engine,
            "SELECT DISTINCT customer_id FROM exposure WHERE variant = 'holdout' "
            "AND customer_id IN :ids",
            ids,
        )
        messaged = _existing(
            engine, "SELECT DISTINCT customer_id FROM message WHERE customer_id IN :ids", ids
        )
        unseen = rows["customer_id"].isin(held - messaged) & ~unknown
        reason[unseen] = (
            "held_out_customer\x1fcustomer "
            + rows.loc[unseen, "customer_id"]
            + f" is in a holdout and was sent no message, so the {kind[:-1]} cannot be real"
        )
    return reason


def _experiment_rows(
    rows: pd.DataFrame, experiment: str, arms: Sequence[str] | None
) -> tuple[pd.DataFrame, list[BadRow]]:
    """Exposure rows of one named experiment: the ``experiment`` column may be left out, and a
    variant outside the design's ``arms`` is refused."""
    bad: list[BadRow] = []
    named = _text(rows["experiment"])
    other = (named != "") & (named != experiment)
    bad.extend(
        BadRow(int(line), "other_experiment", f"{name!r} is not {experiment!r}")
        for line, name in zip(rows.loc[other, "line"], named[other], strict=True)
    )
    rows = rows.loc[~other].assign(experiment=experiment)
    if arms is not None:
        variants = _text(rows["variant"])
        unknown = (variants != "") & ~variants.isin(list(arms))
        listed = ", ".join(repr(a) for a in arms)
        bad.extend(
            BadRow(int(line), "unknown_variant", f"{v!r} is not an arm of the design ({listed})")
            for line, v in zip(rows.loc[unknown, "line"], variants[unknown], strict=True)
        )
        rows = rows.loc[~unknown]
    return rows, bad


def import_events(
    engine: Engine,
    path: Path,
    kind: Kind,
    experiment: str | None = None,
    arms: Sequence[str] | None = None,
) -> ImportResult:
    """Import a file of ``kind`` events into the store; return counts and the refused rows.

    Clicks, conversions, unsubscribes and complaints: ``customer_id``, ``timestamp``, optional
    ``value`` (conversions) and ``message_id``; rows of unknown customers, and clicks,
    unsubscribes and complaints of held-out customers sent no message, are refused.
    Exposures: ``experiment``, ``variant``, ``customer_id``, ``timestamp`` and
    optional ``message_id``; a customer's first exposure in an experiment counts, repeats are
    counted and skipped, and a row putting a customer in a second arm is refused. With
    ``experiment`` (``campaign experiment import``) the rows are that experiment's: the
    ``experiment`` column is optional, and a variant outside ``arms`` is refused.
    """
    columns = (*_REQUIRED[kind], *_OPTIONAL[kind])
    required = _REQUIRED[kind]
    if experiment is not None:
        required = tuple(c for c in required if c != "experiment")
    rows, bad = _read_rows(path, required, columns)
    if experiment is not None:
        rows, other = _experiment_rows(rows, experiment, arms)
        bad.extend(other)
    rows, invalid = _validate(kind, rows)
    bad.extend(invalid)
    repeats = 0
    if kind == "exposures":
        detail = _conflicts(engine, rows)
        clash = detail != ""
        bad.extend(
            BadRow(int(line), "conflicting_variant", d)
            for line, d in zip(rows.loc[clash, "line"], detail[clash], strict=True)
        )
        rows = rows.loc[~clash]
        frame = rows.rename(columns={"timestamp": "exposed_at"})
        imported = record_exposures(engine, frame)
        repeats = len(frame) - imported
    else:
        refused = _customer_checks(engine, kind, rows)
        out = refused != ""
        for line, detail in zip(rows.loc[out, "line"], refused[out], strict=True):
            reason, text_ = detail.split("\x1f", 1)
            bad.append(BadRow(int(line), reason, text_))
        rows = rows.loc[~out]
        if kind in IMPORTED_KINDS:
            # Engagement events, and the suppressions they make, at once; a row seen before is
            # a repeat, counted and not stored again.
            fresh = record_imported(engine, kind, rows)
            repeats = len(rows) - sum(fresh)
            rows = rows.loc[fresh] if kind != "bounces" else rows.iloc[0:0]
            if kind == "bounces":
                return ImportResult(
                    kind, path, sum(fresh), repeats, tuple(sorted(bad, key=lambda b: b.line))
                )
        frame = pd.DataFrame(
            {
                "customer_id": rows["customer_id"],
                "message_id": rows["message_id"],
                "converted_at": rows["timestamp"],
                "value": rows.get("value", 0.0),
                "source": "tracking",
                "kind": EVENT_KIND[kind],
            }
        )
        imported = insert_frame(engine, "conversion", frame)
    return ImportResult(kind, path, imported, repeats, tuple(sorted(bad, key=lambda b: b.line)))
