"""The shape of ``config.toml``: frozen pydantic models, validated once when the file is loaded.

Past :func:`campaigns.config.load_config` the rest of the library receives these typed, immutable
values and never re-checks them.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown timezone {value!r}; use an IANA name such as 'Europe/London'"
        ) from None
    return value


# ---------------------------------------------------------------------------------------- store


class StoreConfig(_Model):
    """Where the store lives. A relative SQLite path is taken from the config file's folder."""

    url: str = "sqlite:///.campaign/campaign.db"

    @field_validator("url")
    @classmethod
    def _known_dialect(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgresql+psycopg://")):
            raise ValueError(
                "must start with 'sqlite:///' or 'postgresql+psycopg://', "
                f"got {value.split(':', 1)[0]!r}"
            )
        return value


# --------------------------------------------------------------------------------------- source


class DemoSource(_Model):
    """The built-in synthetic shop, generated deterministically from ``seed``."""

    type: Literal["demo"]
    customers: int = Field(default=5000, gt=0)
    seed: int = 7
    #: Last day of the generated history; by default the day the store is first filled.
    end: datetime | None = None


class TableFile(_Model):
    """One CSV or Parquet file and how its columns map onto ours (ours = theirs)."""

    path: Path
    format: Literal["auto", "csv", "parquet"] = "auto"
    separator: str = ","
    encoding: str = "utf-8"
    #: strftime format of date columns; by default pandas infers it.
    date_format: str | None = None
    #: Our column name = the file's column name.
    columns: dict[str, str] = Field(default_factory=dict)
    #: Further file columns to keep as customer traits (customers file only); "*" keeps all.
    traits: list[str] = Field(default_factory=list)


class FilesSource(_Model):
    """Customers and transactions read from files; rows that cannot be used go to ``quarantine``."""

    type: Literal["files"]
    transactions: TableFile
    customers: TableFile | None = None
    products: TableFile | None = None
    quarantine: Path = Path("quarantine")


Source = Annotated[DemoSource | FilesSource, Field(discriminator="type")]


# --------------------------------------------------------------------------------- segmentation

Feature = Literal["recency", "frequency", "monetary", "tenure", "average_order_value"]


class SegmentationConfig(_Model):
    """How customers are grouped into segments."""

    model: Literal["kmeans"] = "kmeans"
    k: int = Field(default=4, ge=2, le=30)
    features: list[Feature] = Field(default=["recency", "frequency", "monetary"], min_length=1)
    seed: int = 0
    #: Business names by segment id, replacing the automatic descriptive names.
    names: dict[int, str] = Field(default_factory=dict)


# ------------------------------------------------------------------------------------- channels


class FileChannel(_Model):
    """Write messages to files (one per channel and run), ready for an ESP or CRM upload."""

    type: Literal["file"]
    format: Literal["csv", "jsonl"] = "csv"
    directory: Path = Path("out")


Channel = Annotated[FileChannel, Field(discriminator="type")]


# ------------------------------------------------------------------------------------ campaigns

_CRON_FIELDS = 5


class ScheduleTrigger(_Model):
    """Fire on a cron schedule (minute hour day month weekday) in a timezone."""

    type: Literal["schedule"]
    cron: str
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return _check_timezone(value)

    @model_validator(mode="after")
    def _valid_cron(self) -> ScheduleTrigger:
        if len(self.cron.split()) != _CRON_FIELDS:
            raise ValueError(
                f"cron must have 5 fields (minute hour day month weekday), got {self.cron!r}"
            )
        try:
            CronTrigger.from_crontab(self.cron, timezone=self.timezone)
        except ValueError as exc:
            raise ValueError(f"invalid cron expression {self.cron!r}: {exc}") from None
        return self


class OnceTrigger(_Model):
    """Fire once, at a given time (a one-shot broadcast)."""

    type: Literal["once"]
    at: datetime
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return _check_timezone(value)


Trigger = Annotated[ScheduleTrigger | OnceTrigger, Field(discriminator="type")]

#: What a campaign name may look like (it appears in idempotency keys and file names).
CAMPAIGN_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class CampaignConfig(_Model):
    """One campaign: who (segments), when (trigger), how (channel, template) and how important."""

    description: str = ""
    enabled: bool = True
    #: Segment names or ids; "*" selects every segment.
    segments: list[str | int] = Field(min_length=1)
    trigger: Trigger
    channel: str
    #: Template base name in the templates folder: NAME.txt.j2 (required) and NAME.html.j2.
    template: str
    #: The subject line, itself a template over the same context.
    subject: str = ""
    #: Higher wins when several campaigns want the same customer in one run.
    priority: int = 0


class Settings(_Model):
    """Rules that apply across campaigns."""

    #: At most this many messages per customer from one run (highest priority first).
    max_messages_per_customer_per_run: int = Field(default=1, ge=1)
    #: Base of the unsubscribe link shown to templates as ``unsubscribe_url``.
    unsubscribe_base_url: str = "https://example.com/unsubscribe"


class Config(_Model):
    """The whole of ``config.toml``."""

    store: StoreConfig = StoreConfig()
    source: Source
    segmentation: SegmentationConfig = SegmentationConfig()
    settings: Settings = Settings()
    templates: Path = Path("templates")
    channels: dict[str, Channel] = Field(min_length=1)
    campaigns: dict[str, CampaignConfig] = Field(default_factory=dict)
    #: The folder of the config file: relative paths are resolved against it (set by the loader).
    root: Path = Path()

    def path(self, value: Path) -> Path:
        """Resolve a path from the config against the config file's folder."""
        return value if value.is_absolute() else self.root / value
