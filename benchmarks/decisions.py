"""The decision procedure's operating characteristics, by simulation (the long version of the
suite's check in tests/test_experiment_decisions.py).

    python -m benchmarks.decisions
    python -m benchmarks.decisions --experiments 20000 --looks 30

For each scenario (baseline rate, registered minimum detectable effect), many two-arm
experiments are simulated with 30 equal looks up to the sequential design's horizon, once with
no true difference (A/A) and once with the registered effect. The table gives, per decision
rule, the share of A/A experiments in which an arm was ever shipped or stopped (the
false-decision rate; alpha 0.05 is the target), and the share shipped with the real effect
(power; the plan is 80%). "Peeking" is the fixed-horizon p read at every look, the plain
baseline the procedure replaces; the ratio column divides its false-decision rate by ours.
"""

from __future__ import annotations

import argparse
import time

from rich.console import Console
from rich.table import Table

from campaigns.experiments.operating import simulate

SCENARIOS = ((0.05, 0.01), (0.05, 0.02), (0.02, 0.005), (0.2, 0.02))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=10_000)
    parser.add_argument("--looks", type=int, default=30)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    table = Table(title=f"{args.experiments:,} experiments x {args.looks} looks per scenario")
    for column in (
        "baseline",
        "MDE",
        "per arm",
        "A/A: sequential",
        "A/A: fixed at horizon",
        "A/A: peeking",
        "peeking / sequential",
        "power: sequential",
        "power: fixed",
        "seconds",
    ):
        table.add_column(column, justify="right")
    for index, (baseline, effect) in enumerate(SCENARIOS):
        start = time.perf_counter()
        null = simulate(
            experiments=args.experiments,
            looks=args.looks,
            baseline=baseline,
            effect=effect,
            seed=args.seed + 2 * index,
        )
        real = simulate(
            experiments=args.experiments,
            looks=args.looks,
            baseline=baseline,
            effect=effect,
            true_effect=effect,
            seed=args.seed + 2 * index + 1,
        )
        elapsed = time.perf_counter() - start
        table.add_row(
            f"{baseline:.1%}",
            f"{100 * effect:.1f} pts",
            f"{null.per_look * null.looks:,}",
            f"{null.sequential_decided:.2%}",
            f"{null.fixed_decided:.2%}",
            f"{null.peeking_decided:.2%}",
            f"{null.peeking_decided / max(null.sequential_decided, 1e-9):.1f}x",
            f"{real.sequential_shipped:.1%}",
            f"{real.fixed_shipped:.1%}",
            f"{elapsed:.1f}",
        )
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
