"""Time the segmentation engine at scale: features, fit, assignment and the k = "auto" search.

    python -m benchmarks.segmentation                      # 10M transaction lines, 1M customers
    python -m benchmarks.segmentation --lines 1000000 --customers 100000

A synthetic transaction log (Arrow-backed string ids, as the store returns them) is generated in
memory: customers buy a lognormal number of invoices of one to four lines, spread over two years.
Then, each timed on its own: RFM features from the whole log; a fit of the default model (k-means
with k = 4, mini-batch above 200,000 customers, with its stability and held-out scores); the
assignment of every customer; and a fit with ``k = "auto"`` over k = 2..8. Peak memory is the
process's peak resident set size after each step. The machine's load average is printed with the
table, because the machine may be shared.
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
import pyarrow as pa

from segmentation import Segmenter, rfm_features

AT = datetime(2026, 11, 23)
TARGETS = {"features": 10.0, "fit": 30.0, "assign": 2.0, "auto search": 60.0}
T = TypeVar("T")


def peak_rss_gib() -> float:
    """The process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def synthetic_log(lines: int, customers: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """About ``lines`` transaction lines of ``customers`` customers, and the customer table."""
    rng = np.random.default_rng(seed)
    ids = pa.array([f"C{i:08d}" for i in range(customers)])
    # Invoices per customer: lognormal, so a few customers buy very often (heavy tail).
    per_customer = np.maximum(1, rng.lognormal(0.8, 0.9, customers).astype(np.int64))
    lines_per_invoice = 2.5
    # A few per cent more than needed, then cut to exactly ``lines`` lines.
    scale = 1.05 * lines / (per_customer.sum() * lines_per_invoice)
    per_customer = np.maximum(1, np.round(per_customer * scale)).astype(np.int64)
    invoice_customer = np.repeat(np.arange(customers), per_customer)
    n_invoices = len(invoice_customer)
    invoice_lines = rng.integers(1, 5, n_invoices)
    line_invoice = np.repeat(np.arange(n_invoices), invoice_lines)[:lines]
    n = len(line_invoice)
    start = np.datetime64("2024-11-23", "s").astype(np.int64)
    end = np.datetime64("2026-11-22", "s").astype(np.int64)
    invoice_time = rng.integers(start, end, n_invoices).astype("datetime64[s]")
    invoice_ids = pa.array([f"I{i:09d}" for i in range(n_invoices)])
    transactions = pd.DataFrame(
        {
            "invoice": pd.Series(invoice_ids.take(pa.array(line_invoice)), dtype="string[pyarrow]"),
            "customer_id": pd.Series(
                ids.take(pa.array(invoice_customer[line_invoice])), dtype="string[pyarrow]"
            ),
            "product_id": "P0001",
            "quantity": rng.integers(1, 4, n),
            "unit_price": np.round(rng.lognormal(2.5, 0.6, n), 2),
            "invoiced_at": invoice_time[line_invoice].astype("datetime64[ns]"),
        }
    )
    signup = rng.integers(start - 86_400 * 365, end, customers).astype("datetime64[s]")
    customer_table = pd.DataFrame(
        {
            "customer_id": pd.Series(ids, dtype="string[pyarrow]"),
            "signup_at": signup.astype("datetime64[ns]"),
        }
    )
    return transactions, customer_table


def timed(step: Callable[[], T]) -> tuple[T, float, float]:
    start = time.perf_counter()
    result = step()
    return result, time.perf_counter() - start, peak_rss_gib()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--customers", type=int, default=1_000_000)
    args = parser.parse_args()

    load_before = os.getloadavg()
    transactions, customers = synthetic_log(args.lines, args.customers)
    generated = peak_rss_gib()
    rows: list[tuple[str, str, float, float]] = []

    n_lines = len(transactions)
    features, seconds, memory = timed(lambda: rfm_features(transactions, customers, AT))
    rows.append(("features", f"{n_lines:,} lines -> {len(features):,}", seconds, memory))

    model, seconds, memory = timed(lambda: Segmenter(k=4).fit(features))
    rows.append(("fit", f"k = 4, {model.algorithm_}, with stability", seconds, memory))

    _, seconds, memory = timed(lambda: model.predict(features))
    rows.append(("assign", f"{len(features):,} customers", seconds, memory))

    auto, seconds, memory = timed(lambda: Segmenter(k="auto", k_range=(2, 8)).fit(features))
    rows.append(("auto search", f"k = 2..8 -> k = {auto.k_}, then the fit", seconds, memory))

    load_after = os.getloadavg()
    print(f"Generated the log in memory (peak so far {generated:.2f} GiB).")
    print("| step | what | seconds | target | peak memory |")
    print("|---|---|---:|---:|---:|")
    for step, what, seconds, memory in rows:
        verdict = "ok" if seconds < TARGETS[step] else "SLOW"
        print(
            f"| {step} | {what} | {seconds:.1f} | < {TARGETS[step]:.0f} s ({verdict}) "
            f"| {memory:.2f} GiB |"
        )
    print(
        f"Load average (1, 5, 15 min) before {', '.join(f'{x:.2f}' for x in load_before)}; "
        f"after {', '.join(f'{x:.2f}' for x in load_after)}; {os.cpu_count()} cores."
    )
    print(f"k = 'auto': {auto.search_.reason}.")


if __name__ == "__main__":
    main()
