"""Time the rule engine and rendering at scale.

    python -m benchmarks.rules --customers 1000000 --campaigns 20 --render 100000

Planning: ``--campaigns`` campaigns over ``--customers`` synthetic customers (schedule triggers
with ``where`` conditions, an inactive trigger, campaign and global caps, priority arbitration),
with a week of message history for the caps. Rendering: messages per second per core of
``compose`` (context, sandboxed Jinja, keys, the outbox frame) against plain Jinja rendering
the same text template with the same data, the reference the issue sets.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment

from campaigns.compose import compose
from campaigns.config import load_config
from campaigns.config.schema import Config
from campaigns.planner import CampaignPlan, PlanInputs, plan_campaigns
from templates import make_environment
from templates.filters import FILTERS

REPO = Path(__file__).resolve().parents[1]
AT = datetime(2026, 11, 23, 12, 0)
NAMES = {1: "VIP", 2: "Regulars", 3: "Occasional", 4: "Lapsed"}
CONDITIONS = [
    "income > 40000",
    'country in ["GB", "DE"] and frequency >= 2',
    "days_since(signup_at) < 365 or monetary > 500",
    "monetary / frequency >= 30",
    "children > 0 and income is not null",
    "not (recency > 200)",
    'gender == "female" and age >= 30',
    "frequency >= 3",
]


def customers(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frequency = rng.poisson(4, n).astype(float)
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:07d}" for i in range(n)],
            "email": [f"c{i}@example.com" for i in range(n)],
            "first_name": rng.choice(["Ana", "Ben", "Chloé", "Dev", "Eva"], n),
            "country": rng.choice(["GB", "DE", "FR", "US"], n),
            "timezone": "Europe/London",
            "signup_at": pd.Timestamp(AT) - pd.to_timedelta(rng.integers(0, 730, n), unit="D"),
            "age": rng.integers(18, 80, n),
            "gender": rng.choice(["female", "male"], n),
            "income": np.where(rng.random(n) < 0.02, np.nan, rng.lognormal(10.5, 0.5, n)),
            "children": rng.integers(0, 4, n),
            "recency": rng.exponential(90, n),
            "frequency": frequency,
            "monetary": frequency * rng.gamma(2, 20, n),
            "segment_id": rng.integers(1, 5, n),
        }
    )


def config(campaigns: int, folder: Path) -> Config:
    lines = [
        '[source]\ntype = "demo"\n',
        '[settings]\ncaps = [{ messages = 1, per = "1d" }, { messages = 3, per = "7d" }]\n',
        '[channels.export]\ntype = "file"\n',
    ]
    for i in range(campaigns):
        trigger = (
            '{ type = "inactive", days = 120 }'
            if i % 5 == 4
            else f'{{ type = "schedule", cron = "{i % 60} {i % 12} * * *" }}'
        )
        lines.append(
            f"[campaigns.c{i:02d}]\nsegments = [{1 + i % 4}, {1 + (i + 1) % 4}]\n"
            f"where = '{CONDITIONS[i % len(CONDITIONS)]}'\ntrigger = {trigger}\n"
            f'channel = "export"\ntemplate = "newsletter"\npriority = {i % 7}\n'
            f'caps = [{{ messages = 1, per = "7d" }}]\n'
        )
    path = folder / "config.toml"
    path.write_text(f'templates = "{REPO / "templates"}"\n' + "\n".join(lines))
    return load_config(path)


def history(table: pd.DataFrame, campaigns: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = len(table) // 2
    return pd.DataFrame(
        {
            "customer_id": table["customer_id"].to_numpy()[rng.integers(0, len(table), n)],
            "campaign": [f"c{i:02d}" for i in rng.integers(0, campaigns, n)],
            "created_at": pd.Timestamp(AT) - pd.to_timedelta(rng.random(n) * 7, unit="D"),
        }
    )


def per_second(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--campaigns", type=int, default=20)
    parser.add_argument("--render", type=int, default=100_000)
    args = parser.parse_args(argv)
    rows: list[tuple[str, str, str]] = []
    table = customers(args.customers)
    with tempfile.TemporaryDirectory() as folder:
        cfg = config(args.campaigns, Path(folder))
        inputs = PlanInputs(customers=table, at=AT, history=history(table, args.campaigns))
        start = time.perf_counter()
        plans = plan_campaigns(cfg, inputs, NAMES)
        seconds = time.perf_counter() - start
        selected = sum(len(p.selected) for p in plans)
        rows.append(
            (
                f"plan: {args.campaigns} campaigns x {args.customers:,} customers",
                f"{seconds:.2f} s",
                f"{selected:,} messages selected",
            )
        )

        # Rendering: the newsletter template (text only) for --render customers.
        sample = table.head(args.render).set_index("customer_id", drop=False).rename_axis(None)
        source = (REPO / "templates" / "newsletter.txt.j2").read_text()
        reference = Environment()
        reference.filters.update(FILTERS)
        plain = reference.from_string(source)
        contexts = [
            {"customer": c, "unsubscribe_url": "https://x.example/u"}
            for c in sample[["first_name"]].to_dict("records")
        ]
        start = time.perf_counter()
        for context in contexts:
            plain.render(context)
        baseline = time.perf_counter() - start
        rows.append(
            (
                "render: plain Jinja, same template",
                f"{baseline:.2f} s",
                per_second(len(contexts), baseline),
            )
        )

        plan = plans[0]
        chosen = sample[["customer_id", "segment_id"]].assign(window="w")
        segments = {i: {"id": i, "name": n, "profile": {}} for i, n in NAMES.items()}
        env = make_environment(REPO / "templates")
        for template in ("newsletter", "winback"):
            campaign = plan.config.model_copy(
                update={"template": template, "subject": "Hi {{ customer.first_name }}"}
            )
            job = CampaignPlan(plan.name, campaign, "due", "w", chosen, chosen)
            start = time.perf_counter()
            out = compose(job, sample, segments, env, AT, 1, "https://x.example/u", set())
            seconds = time.perf_counter() - start
            parts = "subject + text" if template == "newsletter" else "subject + text + HTML layout"
            rows.append(
                (
                    f"render: compose, {template} ({parts})",
                    f"{seconds:.2f} s",
                    per_second(len(out), seconds),
                )
            )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    width = max(len(r[0]) for r in rows)
    print(f"{'what':<{width}}  {'time':>9}  result")
    print("-" * (width + 32))
    for what, seconds_text, result in rows:
        print(f"{what:<{width}}  {seconds_text:>9}  {result}")
    print(f"peak RSS: {peak:,.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
