"""What a data source is, as ``[source]`` in ``config.toml`` describes it: the demo shop or files.

These models live with the sources that read them, below the config layer, so that ``store``
needs nothing from ``campaigns``; :mod:`campaigns.config.schema` makes them part of the config.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


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
    #: For a customers file without an id column: number the rows from 1 as customer ids.
    row_ids: bool = False


class FilesSource(_Model):
    """Customers and transactions read from files; rows that cannot be used go to ``quarantine``."""

    type: Literal["files"]
    #: The transaction log; without one, a customers file alone is segmented by its traits.
    transactions: TableFile | None = None
    customers: TableFile | None = None
    products: TableFile | None = None
    #: The events feed (customer_id, event, occurred_at) that ``event`` triggers fire on.
    events: TableFile | None = None
    quarantine: Path = Path("quarantine")
    #: Transaction lines that repeat an earlier line exactly: "quarantine" (as duplicate_line)
    #: or "keep" (load them all, for logs where two identical lines are two real orders).
    duplicates: Literal["quarantine", "keep"] = "quarantine"

    @model_validator(mode="after")
    def _some_table(self) -> FilesSource:
        if self.transactions is None and self.customers is None:
            raise ValueError(
                "needs [source.transactions], [source.customers] or both; neither is given"
            )
        return self


Source = Annotated[DemoSource | FilesSource, Field(discriminator="type")]
