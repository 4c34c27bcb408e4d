"""The data profile as one self-contained HTML page: tables, and plots embedded as PNGs, each
answering one question and drawn only when it has data: how each numeric column is distributed
(histograms), where its outliers lie (box plots), which columns move together (a correlation
heatmap), how revenue moved month by month, and how many orders customers place."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from campaigns.data_profile.lines import number

_CSS = (
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
    "text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}img{max-width:100%}"
)


def render_html(profile: dict[str, Any], lines: list[str]) -> str:
    """The page: the summary ``lines`` (as the terminal prints them), then per table its
    columns and plots."""
    body = ["<h1>Data profile</h1>"]
    body += [f"<p>{_e(line)}</p>" for line in lines]
    for name, table in profile["tables"].items():
        if not table["rows"]:
            continue
        body.append(f"<h2>{_e(name.capitalize())}</h2>")
        body.append(_columns_table(table))
        numeric = [c for c in table["column_profiles"] if c.get("histogram")]
        if numeric:
            body.append(_img(_histograms(numeric), f"Distribution of each numeric {name} column"))
            body.append(_img(_boxes(numeric), f"Outliers of each numeric {name} column"))
        if table["correlations"] is not None:
            body.append(_img(_heatmap(table["correlations"]), f"Correlations of {name} columns"))
    log = profile["transaction_log"]
    if log is not None:
        body.append("<h2>The transaction log</h2>")
        if len(log["revenue_by_month"]) > 1:
            body.append(_img(_revenue(log["revenue_by_month"]), "Revenue by month"))
        body.append(_img(_orders(log["orders_per_customer"]["histogram"]), "Orders per customer"))
    return (
        "<!doctype html>\n<html><head><meta charset='utf-8'><title>Data profile</title>"
        f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _columns_table(table: dict[str, Any]) -> str:
    rows = []
    for c in table["column_profiles"]:
        numeric = c["type"] == "number" and c.get("mean") is not None
        rows.append(
            f"<tr><td class='l'>{_e(c['name'])}</td><td class='l'>{c['type']}</td>"
            f"<td>{c['missing']:,}</td><td>{c['distinct']:,}</td>"
            + (
                f"<td>{number(c['mean'])}</td><td>{number(c['median'])}</td>"
                f"<td>{number(c['min'])}</td><td>{number(c['max'])}</td>"
                f"<td>{_num(c['skew'])}</td><td>{c['outliers']:,}</td>"
                if numeric
                else "<td></td>" * 6
            )
            + "</tr>"
        )
    return (
        f"<p>{table['rows']:,} rows, {table['columns']} columns, {table['duplicate_rows']:,} "
        "exact duplicate rows.</p><table><tr><th class='l'>column</th><th class='l'>type</th>"
        "<th>missing</th><th>distinct</th><th>mean</th><th>median</th><th>min</th><th>max</th>"
        "<th>skew</th><th>outliers</th></tr>" + "".join(rows) + "</table>"
    )


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _grid(count: int) -> tuple[Figure, Any]:
    columns = min(count, 3)
    rows = (count + columns - 1) // columns
    figure = Figure(figsize=(4 * columns, 2.8 * rows))
    FigureCanvasAgg(figure)
    axes = np.atleast_1d(figure.subplots(rows, columns)).ravel()
    for extra in axes[count:]:
        extra.set_visible(False)
    return figure, axes


def _histograms(columns: list[dict[str, Any]]) -> Figure:
    figure, axes = _grid(len(columns))
    for ax, column in zip(axes, columns, strict=False):
        edges = column["histogram"]["edges"]
        counts = column["histogram"]["counts"]
        ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge")
        ax.set_title(f"{column['name']} (skew {_num(column['skew'])})", fontsize=9)
        ax.set_ylabel("rows", fontsize=8)
    figure.suptitle("How is each numeric column distributed?")
    figure.tight_layout()
    return figure


def _boxes(columns: list[dict[str, Any]]) -> Figure:
    figure, axes = _grid(len(columns))
    for ax, column in zip(axes, columns, strict=False):
        low, high = column["outlier_fences"]
        stats = [
            {
                "med": column["median"],
                "q1": column["q1"],
                "q3": column["q3"],
                "whislo": max(column["min"], low),
                "whishi": min(column["max"], high),
                "fliers": [],
            }
        ]
        ax.bxp(stats, orientation="horizontal", showfliers=False)
        ax.set_yticks([])
        ax.set_title(
            f"{column['name']}: {column['outliers']:,} outliers, range "
            f"{number(column['min'])} to {number(column['max'])}",
            fontsize=9,
        )
    figure.suptitle("Where do the quartiles and Tukey's fences lie?")
    figure.tight_layout()
    return figure


def _heatmap(correlations: dict[str, Any]) -> Figure:
    names = correlations["columns"]
    matrix = np.array(correlations["pearson"], dtype=np.float64)
    size = max(4.0, 0.6 * len(names) + 2)
    figure = Figure(figsize=(size + 1, size))
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    image = ax.imshow(matrix, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    if len(names) <= 15:
        for i in range(len(names)):
            for j in range(len(names)):
                value = matrix[i, j]
                red, green, blue = image.cmap(image.norm(value))[:3]
                dark = 0.2126 * red + 0.7152 * green + 0.0722 * blue < 0.5
                ax.text(
                    j,
                    i,
                    f"{value:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if dark else "black",
                )
    ax.set_title("Which numeric columns move together? (Pearson)")
    figure.colorbar(image, ax=ax)
    return figure


def _revenue(months: list[dict[str, Any]]) -> Figure:
    figure = Figure(figsize=(9, 3.5))
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    ax.bar([m["month"] for m in months], [m["revenue"] for m in months])
    ax.set_title("How did revenue move month by month?")
    ax.set_ylabel("revenue")
    step = max(1, len(months) // 12)
    ax.set_xticks(range(0, len(months), step), [m["month"] for m in months][::step], rotation=45)
    return figure


def _orders(histogram: dict[str, int]) -> Figure:
    figure = Figure(figsize=(6, 3.5))
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    ax.bar(list(histogram), list(histogram.values()))
    ax.set_title("How many orders do customers place?")
    ax.set_xlabel("orders")
    ax.set_ylabel("customers")
    return figure


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _img(figure: Figure, alt: str) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode()
    return f"<figure><img alt='{_e(alt)}' src='data:image/png;base64,{data}'></figure>"
