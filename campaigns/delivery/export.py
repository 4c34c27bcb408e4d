"""The file channel: messages exported as CSV, JSONL or Parquet, one file per campaign and delivery.

Files are written to a temporary name and renamed into place, so a reader never sees a half
file; the drain records each file in the store between the two steps, so that a crash at any
point never exports a message twice (see :mod:`store.exports`). Beside each file a manifest
(``LABEL.manifest.json``) gives its message count, counts by segment and variant, size and
SHA-256, for the system that picks it up to verify. The idempotency key is a column too.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from campaigns.delivery.base import MESSAGE_FIELDS, Channel, OnResult, Outcome, Result

#: Exported columns: the message fields but the headers (a mapping, not a column of text).
EXPORT_COLUMNS = tuple(c for c in MESSAGE_FIELDS if c != "headers")

_SCHEMA = pa.schema(
    [(name, pa.int64() if name == "segment_id" else pa.string()) for name in EXPORT_COLUMNS]
)


@dataclass(frozen=True)
class StagedFile:
    """One campaign's messages of a batch, written to ``temp_path`` and waiting to be published."""

    campaign: str
    path: Path
    temp_path: Path
    ids: list[int]


class FileChannel(Channel):
    """Write each campaign's messages of a delivery to ``directory/CAMPAIGN/LABEL.FORMAT``.

    A two-phase channel: :meth:`stage` writes the files under temporary names, the drain records
    them in the store, then :meth:`publish` renames them into place (see :mod:`store.exports`).
    """

    batch_size = 100_000

    def __init__(self, name: str, directory: Path, fmt: str, batch_size: int = 100_000) -> None:
        self.name = name
        self.directory = directory
        self.format = fmt
        self.batch_size = batch_size

    def stage(self, batch: pd.DataFrame, label: str) -> list[StagedFile]:
        """Write the batch's files under temporary names (flushed to disk), one per campaign."""
        staged = []
        for campaign, group in batch.groupby("campaign", sort=True):
            path = _unused(self.directory / str(campaign), label, self.format)
            temp = stage_export(group[list(EXPORT_COLUMNS)], path, self.format)
            staged.append(StagedFile(str(campaign), path, temp, group["id"].astype(int).tolist()))
        return staged

    def publish(self, staged: StagedFile) -> None:
        """Rename a staged file (and its manifest) into place."""
        publish(staged.path, staged.temp_path)

    def send(self, batch: pd.DataFrame, label: str, on_result: OnResult | None = None) -> Outcome:
        """Stage and publish at once (for callers outside the drain, which records the steps)."""
        destinations: dict[int, str] = {}
        for staged in self.stage(batch, label):
            self.publish(staged)
            destinations.update(dict.fromkeys(staged.ids, str(staged.path)))
        ids = batch["id"].astype(int).tolist()
        return Outcome(ids=ids, results=[Result.sent(destinations[i]) for i in ids])


def _unused(folder: Path, label: str, fmt: str) -> Path:
    """``folder/LABEL.FMT``, or ``LABEL-2.FMT``... if taken: an export never replaces another."""
    path, n = folder / f"{label}.{fmt}", 1
    while path.exists() or _temporary(path).exists():
        n += 1
        path = folder / f"{label}-{n}.{fmt}"
    return path


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def manifest_path(path: Path) -> Path:
    """Where the manifest of the export at ``path`` lives."""
    return path.with_name(f"{path.name.rsplit('.', 1)[0]}.manifest.json")


def write_export(frame: pd.DataFrame, path: Path, fmt: str) -> dict[str, Any]:
    """Write ``frame`` atomically in ``fmt`` with its manifest beside it; return the manifest."""
    stage_export(frame, path, fmt)
    publish(path, _temporary(path))
    manifest: dict[str, Any] = json.loads(manifest_path(path).read_text(encoding="utf-8"))
    return manifest


def stage_export(frame: pd.DataFrame, path: Path, fmt: str) -> Path:
    """Write ``frame`` and its manifest under temporary names beside ``path``; return the file's.

    Both are flushed to disk before this returns, so that publishing them is only two renames.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary(path)
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
    staging = _temporary(manifest_path(path))
    staging.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    _fsync(staging)
    return temporary


def publish(path: Path, temporary: Path) -> bool:
    """Rename a staged export and its manifest into place; whether the export is now in place.

    Idempotent, so that recovery after a crash can call it again: a rename already done is
    skipped. The folder is flushed, so the names survive a power cut.
    """
    if temporary.exists():
        temporary.replace(path)
    staged_manifest = _temporary(manifest_path(path))
    if staged_manifest.exists():
        staged_manifest.replace(manifest_path(path))
    if path.parent.exists():
        _fsync_folder(path.parent)
    return path.exists()


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


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
