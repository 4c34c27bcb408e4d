"""``campaign track``: import clicks, conversions and exposures from CSV or JSON Lines files.

Every row that cannot be used is reported with its line number and a reason; nothing is dropped
silently. Timestamps are ISO 8601; one without an offset is UTC.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from campaigns.errors import DataError
from campaigns.experiments.exposures import existing_arms, record_exposures
from store.bulk import insert_frame

Kind = Literal["clicks", "conversions", "exposures"]

_REQUIRED: dict[str, tuple[str, ...]] = {
    "clicks": ("customer_id", "timestamp"),
    "conversions": ("customer_id", "timestamp"),
    "exposures": ("experiment", "variant", "customer_id", "timestamp"),
}
_OPTIONAL: dict[str, tuple[str, ...]] = {
    "clicks": ("message_id",),
    "conversions": ("value", "message_id"),
    "exposures": ("message_id",),
}


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


def import_events(engine: Engine, path: Path, kind: Kind) -> ImportResult:
    """Import a file of ``kind`` events into the store; return counts and the refused rows.

    Clicks and conversions: ``customer_id``, ``timestamp``, optional ``value`` (conversions) and
    ``message_id``. Exposures: ``experiment``, ``variant``, ``customer_id``, ``timestamp`` and
    optional ``message_id``; a customer's first exposure in an experiment counts, repeats are
    counted and skipped, and a row putting a customer in a second arm is refused.
    """
    columns = (*_REQUIRED[kind], *_OPTIONAL[kind])
    rows, bad = _read_rows(path, _REQUIRED[kind], columns)
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
        frame = pd.DataFrame(
            {
                "customer_id": rows["customer_id"],
                "message_id": rows["message_id"],
                "converted_at": rows["timestamp"],
                "value": rows.get("value", 0.0),
                "source": "tracking",
                "kind": "click" if kind == "clicks" else "conversion",
            }
        )
        imported = insert_frame(engine, "conversion", frame)
    return ImportResult(kind, path, imported, repeats, tuple(sorted(bad, key=lambda b: b.line)))
