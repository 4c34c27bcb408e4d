"""The data profile as lines of text (the terminal and the top of the HTML page)."""

from __future__ import annotations

from typing import Any


def summary_lines(profile: dict[str, Any]) -> list[str]:
    """One line per table, the transaction log's figures, the quarantine and the warnings."""
    lines = []
    for name, table in profile["tables"].items():
        missing = [
            f"{c['name']} {c['missing']:,}" for c in table["column_profiles"] if c["missing"]
        ]
        lines.append(
            f"{name.capitalize()}: {table['rows']:,} rows, {table['columns']} columns, "
            f"{table['duplicate_rows']:,} exact duplicate rows; missing values: "
            + (", ".join(missing) if missing else "none")
            + "."
        )
    log = profile["transaction_log"]
    if log is not None:
        orders = log["orders_per_customer"]
        returns = log["returns"]
        lines.append(
            f"Transactions from {log['first'][:10]} to {log['last'][:10]}: {log['lines']:,} "
            f"lines, {log['invoices']:,} invoices, {log['customers']:,} customers, revenue "
            f"{log['revenue']:,.2f}."
        )
        lines.append(
            f"Orders per customer: mean {orders['mean']:.2f}, median {orders['median']:g}, 90th "
            f"percentile {orders['p90']:g}, max {orders['max']:,}; "
            f"{orders['one_order_share']:.1%} ordered once."
        )
        lines.append(
            f"Returns: {returns['lines']:,} loaded lines ({returns['share']:.2%}) are returns or "
            f"cancellations; the load set aside {returns['quarantined']:,} more "
            f"({returns['quarantined_share']:.2%} of the source's lines)."
        )
    quarantined = profile["quarantined"]
    if quarantined:
        lines.append(
            "Quarantined by the last load: "
            + ", ".join(f"{reason} {n:,}" for reason, n in sorted(quarantined.items()))
            + "."
        )
    lines += [f"Warning: {w}" for w in profile["warnings"]]
    return lines


def number(value: float | None) -> str:
    """A figure for a table: thousands separated above 1,000, four significant digits below."""
    if value is None:
        return ""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
