"""The self-contained HTML segment report: tables and matplotlib plots as embedded PNGs.

Nothing is fetched when the page is opened (no scripts, fonts or images from the network). Each
plot answers one question and is drawn only when it has data: the segment sizes, a heatmap of
each segment's z-scores (labels in black or white by the cell's luminance), the quality metrics
by k (only when several k were tried), a 2-D PCA view and a t-SNE view of a fixed-seed sample of
customers (by segment name), the dendrogram of a Ward model, and the segment sizes over time
(when the store has more than one assignment). The make-up of the segments by the columns not
clustered on, with its chi-square tests, and the customers left unsegmented are tables.
"""

from __future__ import annotations

import base64
import html
import io
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from segmentation.model import Segmenter

#: Customers drawn in the PCA view at most.
SCATTER_SAMPLE = 5_000
#: Customers embedded by t-SNE at most (it is quadratic-ish and takes seconds per thousand).
TSNE_SAMPLE = 1_000


def render_html(
    estimator: Segmenter,
    data: dict[str, Any],
    features: pd.DataFrame,
    seed: int = 0,
    tsne_sample: int | None = None,
) -> str:
    """The report page for a fitted model, its report data and the customers' features.

    ``tsne_sample`` customers (default :data:`TSNE_SAMPLE`) of the plotted sample are embedded
    by t-SNE.
    """
    tsne_sample = TSNE_SAMPLE if tsne_sample is None else tsne_sample
    model = data["model"]
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(features), min(len(features), SCATTER_SAMPLE), replace=False))
    sample = features.iloc[rows]
    labels = estimator.predict(sample)
    space = estimator.transform_space(sample)
    names = {int(s["id"]): f"{s['id']} {s['name']}" for s in data["segments"]}
    parts = [
        f"<h1>Segmentation model v{model['version']}</h1>",
        f"<p>{_e(model['algorithm'])}, {model['k']} segments on "
        f"{_e(', '.join(model['features']))}; fitted at {_e(str(model['fitted_at']))}.</p>",
        f"<p><b>Why this k:</b> {_e(model['k_reason'])}.</p>",
        *(f"<p><b>Warning:</b> {_e(w)}</p>" for w in data.get("warnings", [])),
        "<h2>Segments</h2>",
        _profiles_table(data),
        f"<p>{_e(str(data.get('naming', '')).capitalize())}.</p>" if data.get("naming") else "",
        _not_segmented(data),
        _img(_sizes_plot(data), "Segment sizes"),
        _img(_heatmap(data, list(model["features"])), "Profile heatmap (z-scores)"),
        "<h2>Choosing k</h2>",
        _metrics_table(data),
        _img(_metrics_plot(data), "Quality metrics by k")
        if len(data["k_search"]) > 1
        else f"<p>k = {model['k']} was fixed, so there is no curve over k to draw: the table "
        "scores that k alone.</p>",
        "<h2>Customers in two dimensions</h2>",
        f"<p>A fixed-seed sample of {len(sample):,} customers in the preprocessed space.</p>",
        _img(_pca_plot(space, labels, names), "PCA"),
        _img(
            _tsne_plot(space[: max(tsne_sample, 0)], labels[: max(tsne_sample, 0)], seed, names),
            "t-SNE",
        ),
    ]
    linkage = getattr(estimator.clusterer_, "linkage_", None)
    if linkage is not None:
        parts += ["<h2>Dendrogram</h2>", _img(_dendrogram(linkage), "Ward dendrogram")]
    parts += ["<h2>Preprocessing</h2>", _preprocessing(data)]
    if data.get("migration"):
        parts += ["<h2>Migration from the previous version</h2>", _migration_table(data)]
    if data.get("makeup"):
        parts += ["<h2>Make-up by the columns not clustered on</h2>", _makeup(data, names)]
    history = data.get("history") or []
    if len(history) > 1:
        parts += [
            "<h2>Segment sizes over time</h2>",
            _img(_history_plot(history, names), "Segment sizes over time"),
        ]
    body = "\n".join(parts)
    return (
        "<!doctype html>\n<html><head><meta charset='utf-8'>"
        f"<title>Segments v{model['version']}</title><style>{_CSS}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )


_CSS = (
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
    "text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}img{max-width:100%}"
)


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure)
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(png: str, alt: str) -> str:
    return f"<figure><img alt='{_e(alt)}' src='data:image/png;base64,{png}'></figure>"


def _fmt(value: Any, spec: str) -> str:
    return "" if value is None else format(value, spec)


def _profiles_table(data: dict[str, Any]) -> str:
    features = list(data["model"]["features"])
    shown = [f for f in features if f in (data["segments"][0]["means"] if data["segments"] else {})]
    head = "".join(f"<th>mean {_e(f)}</th>" for f in shown)
    rows = []
    for s in data["segments"]:
        cells = "".join(f"<td>{_fmt(s['means'].get(f), ',.2f')}</td>" for f in shown)
        rows.append(
            f"<tr><td>{s['id']}</td><td class='l'>{_e(s['name'])}</td><td>{s['size']:,}</td>"
            f"<td>{_fmt(s['share'], '.1%')}</td><td>{_fmt(s['revenue_share'], '.1%')}</td>"
            f"{cells}</tr>"
        )
    return (
        "<table><tr><th>id</th><th class='l'>name</th><th>customers</th><th>share</th>"
        f"<th>revenue</th>{head}</tr>{''.join(rows)}</table>"
    )


def _metrics_table(data: dict[str, Any]) -> str:
    rows = []
    for s in data["k_search"]:
        mark = " (chosen)" if s["k"] == data["chosen_k"] else ""
        rows.append(
            f"<tr><td>{s['k']}{mark}</td><td>{_fmt(s['inertia'], ',.1f')}</td>"
            f"<td>{_fmt(s['silhouette'], '.3f')}</td>"
            f"<td>{_fmt(s['calinski_harabasz'], ',.1f')}</td>"
            f"<td>{_fmt(s['davies_bouldin'], '.3f')}</td><td>{_fmt(s['stability'], '.3f')}</td>"
            f"<td>{_fmt(s['holdout'], '.3f')}</td></tr>"
        )
    knee = data["knee"]
    note = f"<p>Knee of the inertia curve: k = {knee}.</p>" if knee is not None else ""
    return (
        "<table><tr><th>k</th><th>inertia</th><th>silhouette</th><th>Calinski-Harabasz</th>"
        "<th>Davies-Bouldin</th><th>stability (ARI)</th><th>held-out (ARI)</th></tr>"
        f"{''.join(rows)}</table>{note}"
    )


def _preprocessing(data: dict[str, Any]) -> str:
    prep = data["preprocessing"]
    missing = ", ".join(f"{k} {v:,}" for k, v in prep["missing"].items() if v) or "none"
    outliers = ", ".join(f"{k} {v:,}" for k, v in (prep["outliers"] or {}).items() if v) or "none"
    return (
        f"<p>{prep['rows']:,} customers. Missing values ({_e(prep['missing_strategy'])}): "
        f"{_e(missing)}; rows dropped: {prep['rows_dropped_missing']:,}. Outliers "
        f"({_e(str(prep['outlier_rule']))}, {_e(prep['outlier_action'])}): {_e(outliers)}; rows "
        f"dropped: {prep['rows_dropped_outliers']:,}. Logged: "
        f"{_e(', '.join(prep['logged']) or 'none')}. Scaling: {_e(prep['scaling'])}.</p>"
    )


def _migration_table(data: dict[str, Any]) -> str:
    migration: dict[str, dict[str, int]] = data["migration"]
    news = sorted({n for row in migration.values() for n in row}, key=_key)
    head = "".join(f"<th>{_e(n)}</th>" for n in news)
    rows = "".join(
        f"<tr><th>{_e(old)}</th>"
        + "".join(f"<td>{migration[old].get(n, 0):,}</td>" for n in news)
        + "</tr>"
        for old in sorted(migration, key=_key)
    )
    return f"<table><tr><th>old \\ new</th>{head}</tr>{rows}</table>"


def _key(value: str) -> tuple[int, str]:
    return (int(value), "") if value.isdigit() else (10**9, value)


def _metrics_plot(data: dict[str, Any]) -> str:
    scores = data["k_search"]
    ks = [s["k"] for s in scores]
    figure = Figure(figsize=(12, 6.5))
    axes = figure.subplots(2, 3).ravel()
    panels = [
        ("inertia", "Inertia (elbow)"),
        ("silhouette", "Silhouette (higher is better)"),
        ("calinski_harabasz", "Calinski-Harabasz (higher is better)"),
        ("davies_bouldin", "Davies-Bouldin (lower is better)"),
        ("stability", "Bootstrap stability, ARI"),
        ("holdout", "Held-out agreement, ARI"),
    ]
    for ax, (key, title) in zip(axes, panels, strict=True):
        values = [np.nan if s[key] is None else s[key] for s in scores]
        ax.plot(ks, values, marker="o")
        if key == "stability":
            errors = [0.0 if s["stability_std"] is None else s["stability_std"] for s in scores]
            ax.errorbar(ks, values, yerr=errors, fmt="none", capsize=3)
        if key == "inertia" and data["knee"] is not None:
            knee = ks.index(data["knee"])
            ax.plot([ks[knee]], [values[knee]], marker="o", markersize=12, fillstyle="none")
            ax.annotate("knee", (ks[knee], values[knee]), xytext=(8, 8), textcoords="offset points")
        ax.axvline(data["chosen_k"], linestyle=":", color="grey")
        ax.set_title(title, fontsize=10)
        ax.set_xticks(ks)
    figure.tight_layout()
    return _png(figure)


def _scatter(
    points: npt.NDArray[np.float64],
    labels: npt.NDArray[np.int64],
    title: str,
    names: Mapping[int, str],
) -> str:
    figure = Figure(figsize=(7, 5.5))
    ax = figure.subplots()
    for segment in np.unique(labels):
        mine = labels == segment
        label = names.get(int(segment), f"segment {segment}")
        ax.scatter(points[mine, 0], points[mine, 1], s=6, alpha=0.6, label=label)
    ax.set_title(title)
    ax.legend(markerscale=3, fontsize=8)
    return _png(figure)


def _pca_plot(
    space: npt.NDArray[np.float64], labels: npt.NDArray[np.int64], names: Mapping[int, str]
) -> str:
    if space.shape[1] < 2:
        space = np.column_stack([space, np.zeros(len(space))])
    pca = PCA(n_components=2).fit(space)
    explained = pca.explained_variance_ratio_.sum()
    return _scatter(
        pca.transform(space),
        labels,
        f"Segments in the first two principal components ({explained:.0%} of the variance)",
        names,
    )


def _tsne_plot(
    space: npt.NDArray[np.float64],
    labels: npt.NDArray[np.int64],
    seed: int,
    names: Mapping[int, str],
) -> str:
    if len(space) < 5:
        return _scatter(np.zeros((len(space), 2)), labels, "t-SNE (too few customers)", names)
    perplexity = float(min(30, (len(space) - 1) / 3))
    # One thread: Barnes-Hut t-SNE on a thousand points runs a thousand short OpenMP loops,
    # where thread start-up (and, on a busy machine, spinning) costs more than it saves.
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        # Duplicate customers (identical features) make t-SNE warn about its distances.
        warnings.simplefilter("ignore", RuntimeWarning)
        points = TSNE(
            n_components=2, perplexity=perplexity, init="pca", random_state=seed
        ).fit_transform(space)
    return _scatter(points, labels, f"Segments in a t-SNE map of {len(space):,} customers", names)


def _dendrogram(linkage: npt.NDArray[np.float64]) -> str:
    from scipy.cluster.hierarchy import dendrogram

    figure = Figure(figsize=(10, 4))
    ax = figure.subplots()
    dendrogram(linkage, truncate_mode="lastp", p=30, ax=ax, no_labels=True)
    ax.set_title("Ward tree (last 30 merges)")
    ax.set_ylabel("merge distance")
    return _png(figure)


def _heatmap(data: dict[str, Any], features: Sequence[str]) -> str:
    segments = data["segments"]
    columns = [f for f in features if segments and f in segments[0]["zscores"]]
    matrix = np.array([[s["zscores"][c] for c in columns] for s in segments], dtype=np.float64)
    figure = Figure(figsize=(max(5.0, 0.8 * len(columns) + 3), 0.5 * len(segments) + 2))
    ax = figure.subplots()
    limit = float(np.nanmax(np.abs(matrix))) if matrix.size else 1.0
    image = ax.imshow(matrix, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
    ax.set_yticks(range(len(segments)), [f"{s['id']} {s['name']}" for s in segments])
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            # Dark cells (deep red or blue) get white labels, light ones black.
            colour = "white" if _luminance(image.cmap(image.norm(matrix[i, j]))) < 0.5 else "black"
            ax.text(j, i, f"{matrix[i, j]:.1f}", ha="center", va="center", fontsize=8, color=colour)
    figure.colorbar(image, ax=ax, label="z-score")
    return _png(figure)


def _luminance(rgba: Any) -> float:
    """Relative luminance (ITU-R BT.709 weights) of a colour with channels in 0..1."""
    red, green, blue = (float(c) for c in tuple(rgba)[:3])
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def _not_segmented(data: dict[str, Any]) -> str:
    left_out = data.get("not_segmented") or {}
    if not left_out.get("customers"):
        return ""
    shown = ", ".join(left_out["customer_ids"])
    more = left_out["customers"] - len(left_out["customer_ids"])
    return (
        f"<p><b>Not segmented:</b> {left_out['customers']:,} customers, "
        f"{_e(left_out['reason'])}: {_e(shown)}{f' and {more:,} more' if more else ''}. "
        'Campaigns for every segment ("*") still reach them.</p>'
    )


def _makeup(data: dict[str, Any], names: Mapping[int, str]) -> str:
    parts = []
    for part in data["makeup"]:
        segments = list(part["shares"])
        head = "".join(f"<th>{_e(names.get(int(s), s))}</th>" for s in segments)
        rows = "".join(
            f"<tr><td class='l'>{_e(c)}</td>"
            + "".join(
                f"<td>{part['shares'][s].get(c, 0.0):.1%} ({part['counts'][s].get(c, 0):,})</td>"
                for s in segments
            )
            + "</tr>"
            for c in part["categories"]
        )
        test = (
            f"<p>Chi-square test of independence: chi2 = {part['chi2']:,.1f}, dof = "
            f"{part['dof']}, p = {part['p_value']:.3g}, Cramér's V = {part['cramers_v']:.2f}; "
            f"{part['low_expected_share']:.0%} of cells expect fewer than 5 customers.</p>"
            if part["p_value"] is not None
            else ""
        )
        parts.append(
            f"<h3>{_e(part['column'])} ({_e(part['categories_from'])})</h3><table><tr>"
            f"<th class='l'>{_e(part['column'])}</th>{head}</tr>{rows}</table>{test}"
        )
    if data.get("makeup_skipped"):
        parts.append(
            "<p>Not broken down: "
            + _e("; ".join(f"{s['column']} ({s['reason']})" for s in data["makeup_skipped"]))
            + ".</p>"
        )
    return "\n".join(parts)


def _history_plot(history: list[dict[str, Any]], names: Mapping[int, str]) -> str:
    times = [np.datetime64(row["at"]) for row in history]
    segments = sorted({int(s) for row in history for s in row["sizes"]})
    figure = Figure(figsize=(8, 4))
    ax = figure.subplots()
    for segment in segments:
        ax.plot(
            times,
            [row["sizes"].get(str(segment), 0) for row in history],
            marker="o",
            label=names.get(segment, f"segment {segment}"),
        )
    ax.set_ylabel("customers")
    ax.set_title("How many customers each segment held after each run")
    ax.legend(fontsize=8)
    figure.autofmt_xdate()
    return _png(figure)


def _sizes_plot(data: dict[str, Any]) -> str:
    segments = data["segments"]
    figure = Figure(figsize=(7, 0.4 * len(segments) + 1.5))
    ax = figure.subplots()
    ax.barh([f"{s['id']} {s['name']}" for s in segments], [s["size"] for s in segments])
    ax.invert_yaxis()
    ax.set_xlabel("customers")
    return _png(figure)
