"""Time rendering on 1 and 2 (or more) processes against raw Jinja in the same process.

    python -m benchmarks.rendering --messages 200000

``compose`` renders the winback campaign (subject, text part, HTML part extending a layout) for
``--messages`` synthetic customers with ``Parallel(processes=P)`` for each P of ``--processes``
(default 1 and 2), chunks of ``--chunk-size``. The baseline is raw Jinja (no sandbox, no limits)
rendering the same text template once per customer in this process, as the issue asks; each
figure is also given as a ratio to it, and the pools as a speed-up over one process. "CPU s" is
the CPU time of this process and its render workers: on a busy machine the wall-clock speed-up
is bounded by the cores other work leaves free, the CPU time shows what the pool itself costs.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

from jinja2 import Environment

from benchmarks.rules import AT, NAMES, REPO, customers
from campaigns.compose import compose
from campaigns.config.schema import CampaignConfig
from campaigns.planner import CampaignPlan
from campaigns.rendering import Parallel, available_cores
from templates import make_environment
from templates.filters import FILTERS


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the render workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--chunk-size", type=int, default=20_000)
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    table = customers(args.messages).set_index("customer_id", drop=False).rename_axis(None)

    source = (REPO / "templates" / "winback.txt.j2").read_text()
    reference = Environment()
    reference.filters.update(FILTERS)
    plain = reference.from_string(source)
    contexts = [
        {
            "customer": c,
            "segment": {"id": 1, "name": "VIP"},
            "unsubscribe_url": "https://x.example/u",
            "now": AT,
        }
        for c in table.drop(columns="segment_id").to_dict("records")
    ]
    started = time.perf_counter()
    for context in contexts:
        plain.render(context)
    baseline = time.perf_counter() - started
    del contexts

    campaign = CampaignConfig(
        segments=["*"],
        trigger={"type": "once", "at": AT},
        channel="export",
        template="winback",
        subject="We miss you, {{ customer.first_name }}",
    )
    chosen = table[["customer_id", "segment_id"]].assign(window="w").reset_index(drop=True)
    plan = CampaignPlan("winback", campaign, "due", "w", chosen, chosen)
    segments = {i: {"id": i, "name": n, "profile": {}} for i, n in NAMES.items()}
    env = make_environment(REPO / "templates")
    timings: list[tuple[int, float, float]] = []
    for processes in args.processes:
        parallel = Parallel(processes, args.chunk_size)
        cpu = _cpu_seconds()
        started = time.perf_counter()
        out = compose(
            plan, table, segments, env, AT, 1, "https://x.example/u", set(), parallel=parallel
        )
        seconds = time.perf_counter() - started
        timings.append((parallel.workers(len(out)), seconds, _cpu_seconds() - cpu))
        assert len(out) == args.messages
        assert out["last_error"].isna().all()
        del out

    count = args.messages
    print(
        f"Rendering {count:,} winback messages (subject + text + HTML layout), "
        f"{available_cores()} cores, chunks of {args.chunk_size:,}"
    )
    header = (
        f"{'how':<40} {'seconds':>8} {'CPU s':>7} {'messages/s':>11} {'x raw Jinja':>11} "
        f"{'speed-up':>9}"
    )
    print(header)
    print("-" * len(header))
    print(f"{'raw Jinja, text template only, 1 process':<40} {baseline:>8.2f} {'':>7} "
          f"{count / baseline:>11,.0f} {1.0:>11.2f} {'':>9}")  # fmt: skip
    one = timings[0][1]
    for workers, seconds, cpu in timings:
        label = f"compose, {workers} process{'es' * (workers > 1)}"
        print(f"{label:<40} {seconds:>8.2f} {cpu:>7.2f} {count / seconds:>11,.0f} "
              f"{seconds / baseline:>11.2f} {one / seconds:>9.2f}")  # fmt: skip
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load = os.getloadavg()
    print(
        f"peak RSS {peak:,.0f} MiB; load average before {load_before[0]:.2f}, after {load[0]:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
