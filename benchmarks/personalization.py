"""Time the personalization models at scale: recommendations and model scoring.

    python -m benchmarks.personalization                       # 1M customers, 5,000 products
    python -m benchmarks.personalization --customers 100000 --products 1000

A synthetic shop is generated in memory: products in 25 categories with a skewed popularity,
customers in 8 groups, each group with its own category preferences (as the demo shop's groups
have), a lognormal number of purchase lines each (about 10 on average) over two years; customer
and product ids are categorical strings, as a columnar store would return them. Timed on their
own:

- **fit**: the purchase matrix (with its decayed and counted forms), item-to-item cosine (CF),
  TF-IDF content neighbours, blend and popular-in-segment lists
  (:func:`campaigns.personalization.fit_recommender`);
- **discover cf**: the top 10 new-to-customer products by item-to-item CF (the fast default) for
  every customer, against **discover popular** (the best sellers they have not bought: the
  plain baseline, no model);
- **replenish repeat**: the top 10 by the repeat-aware model (own decayed history plus its
  50-neighbour products, the neighbourhood fitted on first use) for every customer, against
  **replenish rebuy** (each customer's own most-bought products: the plain baseline);
- **ease fit + discover**: EASE's dense inverse (products squared) and its top 10 for everyone;
- **template dicts**: ``recommend_for`` for 100,000 customers (what templates receive);
- **score propensity / uplift**: a propensity model and an uplift model (trained on 20,000
  demo-shop customers) scoring every customer's features.

Wall and CPU seconds are both printed: on a shared machine the wall time includes waiting for a
core (the load average is printed too). Peak memory is the process's peak resident set size.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

import numpy as np
import pandas as pd

from campaigns.personalization import (
    fit_recommender,
    recommend,
    recommend_for,
    simulate_experiment,
    train_propensity,
    train_uplift,
)
from segmentation.features import rfm_features
from store.sources.demo import generate_demo_shop

AT = datetime(2026, 11, 23)
TARGETS = {"fit + recommend": 60.0, "score propensity": 5.0, "score uplift": 5.0}
T = TypeVar("T")


def peak_rss_gib() -> float:
    """The process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def synthetic_shop(
    customers: int, products: int, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """Transactions, the catalogue and each customer's group (used as the segment)."""
    rng = np.random.default_rng(seed)
    categories = 25
    groups = 8
    product_category = rng.integers(0, categories, products)
    popularity = rng.gamma(0.7, 1.0, products)
    taste = rng.gamma(0.5, 1.0, (groups, categories))
    group = rng.integers(0, groups, customers)
    lines_per = np.maximum(1, rng.lognormal(1.9, 0.8, customers).astype(np.int64))
    line_customer = np.repeat(np.arange(customers), lines_per)
    # Each line: a category by the group's taste, then a product by popularity within it.
    weight = taste[:, product_category] * popularity  # groups x products
    cumulative = np.cumsum(weight / weight.sum(axis=1, keepdims=True), axis=1)
    line_product = np.empty(len(line_customer), dtype=np.int64)
    line_group = group[line_customer]
    u = rng.random(len(line_customer))
    for g in range(groups):
        mask = line_group == g
        line_product[mask] = np.minimum(np.searchsorted(cumulative[g], u[mask]), products - 1)
    customer_ids = pd.Categorical.from_codes(
        line_customer, categories=[f"C{i:08d}" for i in range(customers)]
    )
    product_names = [f"P{i:05d}" for i in range(products)]
    product_ids = pd.Categorical.from_codes(line_product, categories=product_names)
    seconds = rng.integers(0, 730 * 86_400, len(line_customer))
    transactions = pd.DataFrame(
        {
            "invoice": np.arange(len(line_customer)),
            "customer_id": customer_ids,
            "product_id": product_ids,
            "quantity": 1 + rng.poisson(0.3, len(line_customer)),
            "unit_price": np.round(rng.uniform(2, 60, len(line_customer)), 2),
            "invoiced_at": pd.Timestamp(AT) - pd.to_timedelta(seconds, unit="s"),
        }
    )
    words = np.array(["Classic", "Deluxe", "Organic", "Mini", "Large", "Travel", "Home", "Pro"])
    catalogue = pd.DataFrame(
        {
            "product_id": product_names,
            "name": [f"{words[i % 8]} {words[(i // 8) % 8]} item {i}" for i in range(products)],
            "category": [f"Category {c}" for c in product_category],
            "price": np.round(rng.uniform(2, 60, products), 2),
        }
    )
    segments = pd.Series(group, index=customer_ids.categories, name="segment_id")
    return transactions, catalogue, segments


def timed(rows: list[tuple[str, float, float, float]], name: str, step: Callable[[], T]) -> T:
    """Run ``step``; record its wall time, its CPU time (all threads) and the peak memory."""
    start, cpu = time.perf_counter(), time.process_time()
    result = step()
    rows.append((name, time.perf_counter() - start, time.process_time() - cpu, peak_rss_gib()))
    return result


def demo_features(customers: int, seed: int) -> pd.DataFrame:
    """The run's customer table (traits and RFM features) of a demo shop."""
    shop = generate_demo_shop(customers, seed, AT)
    table = shop.customers.set_index("customer_id", drop=False).rename_axis(None)
    return table.join(rfm_features(shop.transactions, shop.customers, AT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--products", type=int, default=5_000)
    parser.add_argument("--count", type=int, default=10)
    args = parser.parse_args()

    rows: list[tuple[str, float, float, float]] = []
    transactions, catalogue, segments = timed(
        rows, "generate shop", lambda: synthetic_shop(args.customers, args.products)
    )
    model = timed(
        rows,
        "fit",
        lambda: fit_recommender(transactions, catalogue, segments.index, AT, segments=segments),
    )
    everyone = np.arange(len(model.customers), dtype=np.int64)
    n = args.count
    picks = timed(rows, "discover cf", lambda: recommend(model, everyone, n, "cf"))
    timed(rows, "discover popular", lambda: recommend(model, everyone, n, "popular"))
    timed(rows, "replenish repeat", lambda: recommend(model, everyone, n, "repeat", "replenish"))
    timed(rows, "replenish rebuy", lambda: recommend(model, everyone, n, "rebuy", "replenish"))
    timed(rows, "ease fit + discover", lambda: recommend(model, everyone, n, "ease"))
    ids = list(model.customers[:100_000])
    timed(rows, "template dicts 100k", lambda: recommend_for(model, ids, 3, "cf"))

    training = demo_features(20_000, 1)
    experiment = simulate_experiment(None, training, "discount", seed=1)  # type: ignore[arg-type]
    sent = experiment[experiment["treated"] == 1].drop(columns=["treated", "true_uplift"])
    propensity = train_propensity(sent, "converted", folds=3)
    uplift = train_uplift(experiment)
    # A million customers to score: the demo table repeated (scoring cost does not depend on
    # the values).
    table = demo_features(50_000, 2)
    big = pd.concat([table] * max(1, args.customers // len(table)), ignore_index=True)
    timed(rows, "score propensity", lambda: propensity.score(big))
    timed(rows, "score uplift", lambda: uplift.score(big))

    step = {name: (seconds, cpu) for name, seconds, cpu, _ in rows}
    # Fit plus the top 10 of both purposes' default methods, wall and CPU seconds.
    fit_and_recommend = sum(step[s][0] for s in ("fit", "discover cf", "replenish repeat"))
    fit_and_recommend_cpu = sum(step[s][1] for s in ("fit", "discover cf", "replenish repeat"))
    print(
        f"{args.customers:,} customers, {args.products:,} products, "
        f"{model.interactions.matrix.nnz:,} customer-product pairs; top {args.count} each "
        f"({int((picks >= 0).sum()):,} recommendations); scoring {len(big):,} customers "
        f"({propensity.chosen} propensity, {uplift.chosen} uplift)"
    )
    baselines = {"discover cf": "discover popular", "replenish repeat": "replenish rebuy"}
    print(f"{'step':<22} {'seconds':>9} {'CPU s':>9} {'peak GiB':>9}  vs plain baseline (CPU)")
    for name, seconds, cpu, peak in rows:
        ratio = ""
        if name in baselines:
            ratio = f"  {cpu / max(step[baselines[name]][1], 1e-9):.1f}x {baselines[name]}"
        print(f"{name:<22} {seconds:>9.2f} {cpu:>9.2f} {peak:>9.2f}{ratio}")
    print(
        f"{'fit + recommend':<22} {fit_and_recommend:>9.2f} {fit_and_recommend_cpu:>9.2f}"
        "   (fit, discover cf, replenish repeat; target < 60 s CPU, < 4 GiB)"
    )
    checks = {
        "fit + recommend": fit_and_recommend_cpu,
        "score propensity": step["score propensity"][1],
        "score uplift": step["score uplift"][1],
    }
    for name, seconds in checks.items():
        verdict = "ok" if seconds < TARGETS[name] else "SLOWER THAN TARGET"
        print(f"- {name}: {seconds:.2f} CPU s against {TARGETS[name]:.0f} s: {verdict}")
    print(f"Peak memory {peak_rss_gib():.2f} GiB; load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
