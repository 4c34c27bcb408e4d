"""Time ``campaign data profile`` at scale: ten million transaction lines.

    python -m benchmarks.profile                       # 10M lines, 1M customers
    python -m benchmarks.profile --lines 1000000 --customers 100000

The log is the synthetic one of ``benchmarks.segmentation`` (Arrow-backed string ids, as the
store returns them). Timed on their own: the profile of the transaction table (types, missing,
distinct values, duplicate rows, distributions, skew, outliers, correlations), the transaction
log's own figures (orders per customer, revenue by month, returns), and the customer table's
profile. The baseline is the plain pandas way of getting the table's figures, in the same
process: ``isna().sum()``, ``nunique()``, ``duplicated().sum()``, ``describe()`` and ``skew()``.
"""

from __future__ import annotations

import argparse
import os
import time

import pandas as pd

from benchmarks.segmentation import peak_rss_gib, synthetic_log
from campaigns.data_profile.tables import profile_table
from campaigns.data_profile.transactions import profile_transactions

TARGET_SECONDS = 20.0


def plain_pandas(frame: pd.DataFrame) -> None:
    """The same table figures the plain pandas way."""
    frame.isna().sum()
    frame.nunique()
    frame.duplicated().sum()
    numeric = frame.select_dtypes("number")
    numeric.describe()
    numeric.skew()
    numeric.corr()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--customers", type=int, default=1_000_000)
    args = parser.parse_args()
    load_before = os.getloadavg()
    transactions, customers = synthetic_log(args.lines, args.customers)
    generated = peak_rss_gib()

    start, cpu = time.perf_counter(), time.process_time()
    factorised: dict[str, object] = {}
    table = profile_table(transactions, factorised)  # type: ignore[arg-type]
    table_seconds = time.perf_counter() - start
    start = time.perf_counter()
    log = profile_transactions(transactions, None, factorised)  # type: ignore[arg-type]
    log_seconds = time.perf_counter() - start
    start = time.perf_counter()
    profile_table(customers)
    customer_seconds = time.perf_counter() - start
    profile_cpu = time.process_time() - cpu
    start = time.perf_counter()
    plain_pandas(transactions)
    plain_seconds = time.perf_counter() - start
    total = table_seconds + log_seconds + customer_seconds
    verdict = "ok" if total < TARGET_SECONDS else "SLOW"
    assert log is not None
    load_after = os.getloadavg()

    print(
        f"{len(transactions):,} lines of {len(customers):,} customers (generated; peak "
        f"{generated:.2f} GiB)."
    )
    print("| step | seconds |")
    print("|---|---:|")
    print(
        f"| transaction table: columns, duplicates ({table['duplicate_rows']:,}), "
        f"distributions, correlations | {table_seconds:.1f} |"
    )
    print(
        f"| transaction log: {log['invoices']:,} invoices, orders per customer, "
        f"{len(log['revenue_by_month'])} months of revenue, returns | {log_seconds:.1f} |"
    )
    print(f"| customer table | {customer_seconds:.1f} |")
    print(
        f"| whole profile | {total:.1f} (target < {TARGET_SECONDS:.0f} s: {verdict}; "
        f"{profile_cpu:.1f} s of CPU) |"
    )
    print(
        f"| baseline: plain pandas on the transaction table | {plain_seconds:.1f} "
        f"(ratio {plain_seconds / table_seconds:.1f}x the table's profile) |"
    )
    print(
        f"Peak memory {peak_rss_gib():.2f} GiB. Load average (1, 5, 15 min) before "
        f"{', '.join(f'{v:.2f}' for v in load_before)}; after "
        f"{', '.join(f'{v:.2f}' for v in load_after)}; {os.cpu_count()} cores."
    )


if __name__ == "__main__":
    main()
