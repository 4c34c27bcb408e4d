"""Loading and validating ``config.toml``."""

from campaigns.config.loader import load_config
from campaigns.config.rules import OnceTrigger, ScheduleTrigger
from campaigns.config.schema import (
    CampaignConfig,
    Config,
    DemoSource,
    FileChannel,
    FilesSource,
    SegmentationConfig,
    TableFile,
)

__all__ = [
    "CampaignConfig",
    "Config",
    "DemoSource",
    "FileChannel",
    "FilesSource",
    "OnceTrigger",
    "ScheduleTrigger",
    "SegmentationConfig",
    "TableFile",
    "load_config",
]
