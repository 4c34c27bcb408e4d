"""The file channel: messages exported as CSV or JSONL, one file per campaign and delivery.

Files are written to a temporary name and renamed into place, so a reader never sees a half
file. The idempotency key is a column, so a receiver can drop a message it has already seen (a
run killed after writing but before marking sent exports those messages again).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from campaigns.delivery.base import Channel, Outcome

EXPORT_COLUMNS = (
    "idempotency_key",
    "campaign",
    "customer_id",
    "segment_id",
    "variant",
    "recipient",
    "subject",
    "body_text",
    "body_html",
)


class FileChannel(Channel):
    """Write each campaign's messages of a delivery to ``directory/CAMPAIGN/LABEL.FORMAT``."""

    def __init__(self, name: str, directory: Path, fmt: str) -> None:
        self.name = name
        self.directory = directory
        self.format = fmt

    def send(self, batch: pd.DataFrame, label: str) -> Outcome:
        destinations: dict[int, str] = {}
        for campaign, group in batch.groupby("campaign", sort=True):
            path = self.directory / str(campaign) / f"{label}.{self.format}"
            _write_atomic(group[list(EXPORT_COLUMNS)], path, self.format)
            destinations.update(dict.fromkeys(group["id"].astype(int).tolist(), str(path)))
        ids = batch["id"].astype(int).tolist()
        return Outcome(
            ids=ids,
            destinations=[destinations[i] for i in ids],
            errors=[None] * len(ids),
        )


def _write_atomic(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    if fmt == "csv":
        frame.to_csv(temporary, index=False)
    else:
        # json.dumps rather than DataFrame.to_json, which escapes every "/" in URLs as "\/".
        records = frame.astype(object).where(frame.notna(), None).to_dict("records")
        with open(temporary, "w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    with open(temporary, "rb") as handle:
        os.fsync(handle.fileno())
    temporary.replace(path)
