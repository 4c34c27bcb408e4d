"""The process that :mod:`benchmarks.faults` kills: a ``campaign run`` or ``load`` that prints the
name of each stage as it starts (``STAGE <name>``), so the harness knows where it is when it
sends SIGKILL.

    python -m benchmarks.fault_driver run CONFIG AT
    python -m benchmarks.fault_driver load CONFIG AT
"""

from __future__ import annotations

import sys
from datetime import datetime

from campaigns.config import load_config
from campaigns.data import load_data
from campaigns.run import run_campaigns
from store.engine import opened_store
from store.locks import run_lock


class Stages:
    """A progress callback that announces each new stage on stdout at once."""

    def __init__(self) -> None:
        self.current: str | None = None

    def __call__(self, stage: str, advance: int, total: int | None) -> None:
        if stage != self.current:
            self.current = stage
            print(f"STAGE {stage}", flush=True)


def main(argv: list[str]) -> int:
    what, path, at_text = argv
    config = load_config(path)
    at = datetime.fromisoformat(at_text)
    stages = Stages()
    if what == "load":
        with opened_store(config.store.url, config.root) as engine, run_lock(engine):
            load_data(engine, config, at, stages)
    else:
        result = run_campaigns(config, at=at, progress=stages)
        print(f"DONE queued {result.new_messages} sent {result.totals.sent}", flush=True)
    print("STAGE exit", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
