"""The file channel: messages exported as CSV, JSONL or Parquet, one file per campaign and delivery.

Files are written to a temporary name and renamed into place, so a reader never sees a half
file. Beside each file a manifest (``LABEL.manifest.json``) gives its message count, counts by
segment and variant, size and SHA-256, for the system that picks it up to verify. The
idempotency key is a column, so a receiver can drop a message it has already seen (a run killed
after writing but before marking sent exports those messages again).
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from campaigns.delivery.base import MESSAGE_FIELDS, Channel, Outcome, Result

#: Exported columns: the message fields but the headers (a mapping, not a column of text).
EXPORT_COLUMNS = tuple(c for c in MESSAGE_FIELDS if c != "headers")

_SCHEMA = pa.schema(
    [(name, pa.int64() if name == "segment_id" else pa.string()) for name in EXPORT_COLUMNS]
)


class FileChannel(Channel):
    """Write each campaign's messages of a delivery to ``directory/CAMPAIGN/LABEL.FORMAT``."""

    batch_size = 1_000_000

    def __init__(self, name: str, directory: Path, fmt: str) -> None:
        self.name = name
        self.directory = directory
        self.format = fmt

    def send(self, batch: pd.DataFrame, label: str) -> Outcome:
        destinations: dict[int, str] = {}
        for campaign, group in batch.groupby("campaign", sort=True):
            path = _unused(self.directory / str(campaign), label, self.format)
            write_export(group[list(EXPORT_COLUMNS)], path, self.format)
            destinations.update(dict.fromkeys(group["id"].astype(int).tolist(), str(path)))
        ids = batch["id"].astype(int).tolist()
        return Outcome(ids=ids, results=[Result.sent(destinations[i]) for i in ids])


def _unused(folder: Path, label: str, fmt: str) -> Path:
    """``folder/LABEL.FMT``, or ``LABEL-2.FMT``... if taken: an export never replaces another."""
    path, n = folder / f"{label}.{fmt}", 1
    while path.exists():
        n += 1
        path = folder / f"{label}-{n}.{fmt}"
    return path


def write_export(frame: pd.DataFrame, path: Path, fmt: str) -> dict[str, Any]:
    """Write ``frame`` atomically in ``fmt`` with its manifest beside it; return the manifest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    if fmt in ("csv", "parquet"):
        table = pa.Table.from_pandas(
            frame.astype({"segment_id": "Int64"}), schema=_SCHEMA, preserve_index=False
        )
        if fmt == "csv":
            # Arrow's writer is many times faster than DataFrame.to_csv on long text columns.
            options = pacsv.WriteOptions(quoting_style="needed")
            pacsv.write_csv(table, temporary, write_options=options)
        else:
            pq.write_table(table, temporary)
    else:
        # json.dumps rather than DataFrame.to_json, which escapes every "/" in URLs as "\/".
        records = frame.astype(object).where(frame.notna(), None).to_dict("records")
        with open(temporary, "w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    digest, size = _sha256(temporary)
    temporary.replace(path)
    manifest = {
        "file": path.name,
        "format": fmt,
        "messages": len(frame),
        "by_segment": _counts(frame["segment_id"].astype("Int64")),
        "by_variant": _counts(frame["variant"].fillna("")),
        "bytes": size,
        "sha256": digest,
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    manifest_path = path.with_name(f"{path.name.rsplit('.', 1)[0]}.manifest.json")
    staging = manifest_path.with_name(f".{manifest_path.name}.tmp")
    staging.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    _fsync(staging)
    staging.replace(manifest_path)
    return manifest


def _sha256(path: Path) -> tuple[str, int]:
    """The file's SHA-256 and size; the file is flushed to disk on the way."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
        os.fsync(handle.fileno())
    return digest.hexdigest(), size


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _counts(column: pd.Series) -> dict[str, int]:
    counts = column.astype(str).value_counts().sort_index()
    return {str(k): int(v) for k, v in counts.items()}
