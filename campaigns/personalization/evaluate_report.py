"""The recommendation evaluation as terminal tables and as one self-contained HTML page."""

from __future__ import annotations

import html

from matplotlib.figure import Figure

from campaigns.personalization.evaluate import Evaluation, TaskEvaluation
from campaigns.personalization.ranking import METRICS
from campaigns.personalization.report import _img

LABELS = {
    "repeat": "repeat-aware (ours)",
    "rebuy": "personal rebuy",
    "popular": "popularity",
    "cf": "item-to-item CF (ours)",
    "ease": "EASE (ours)",
    "random": "random",
}
TASK_LABELS = {
    "replenish": "replenish (repeats allowed; popularity includes past purchases)",
    "discover": "discover (new-to-customer products only; popularity of products new to them)",
}
METRIC_LABELS = {
    "precision": "precision",
    "recall": "recall",
    "ndcg": "NDCG",
    "map": "MAP",
    "hit_rate": "hit rate",
}


def headline(task: TaskEvaluation, k: int) -> str:
    """The task's main comparison: the tuned model against the baseline on the latest split."""
    split = task.latest
    ours = "repeat" if task.purpose == "replenish" else split.tuning.method
    metric = "ndcg" if task.purpose == "replenish" else "precision"
    score = split.score(ours)
    diff = score.difference[metric] if score.difference else None
    base = split.score(task.baseline).metrics[metric].value
    if diff is None:
        return ""
    verdict = "better" if diff.low > 0 else ("worse" if diff.high < 0 else "no different")
    ratio = f", {score.metrics[metric].value / base:.2f} times" if base > 0 else ""
    return (
        f"{task.purpose}: {LABELS[ours]} {METRIC_LABELS[metric]}@{k} "
        f"{score.metrics[metric].value:.4f} against {LABELS[task.baseline]} {base:.4f}{ratio}; "
        f"paired difference {diff.value:+.4f}, 95% interval [{diff.low:+.4f}, {diff.high:+.4f}]: "
        f"{verdict}."
    )


def split_rows(task: TaskEvaluation) -> list[list[str]]:
    """The latest split's table: one row per method (mean [95% interval] per metric)."""
    rows = []
    for score in task.latest.scores:
        cells = [LABELS.get(score.method, score.method)]
        for name in ("precision", "recall", "ndcg", "map"):
            e = score.metrics[name]
            cells.append(f"{e.value:.4f} [{e.low:.4f}, {e.high:.4f}]")
        cells.append(f"{score.coverage:.3f}")
        d = score.difference
        cells.append("" if d is None else f"{d['ndcg'].value:+.4f} [{d['ndcg'].low:+.4f}, "
                     f"{d['ndcg'].high:+.4f}]")  # fmt: skip
        rows.append(cells)
    return rows


def rolling_rows(task: TaskEvaluation) -> list[list[str]]:
    """NDCG per cutoff, one row per method, and the mean over cutoffs."""
    rows = []
    for method in [s.method for s in task.latest.scores]:
        cells = [LABELS.get(method, method)]
        cells += [f"{split.score(method).metrics['ndcg'].value:.4f}" for split in task.splits]
        cells.append(f"{task.mean(method, 'ndcg'):.4f}")
        rows.append(cells)
    return rows


def markdown_table(evaluation: Evaluation) -> str:
    """Both tasks' latest-split tables in Markdown (for the docs)."""
    k = evaluation.k
    out = []
    for task in evaluation.tasks:
        split = task.latest
        out.append(
            f"**{task.purpose}**, cutoff {split.cutoff:%Y-%m-%d}, {split.customers:,} customers "
            f"(method chosen by validation: {split.tuning.method}):\n"
        )
        out.append(
            f"| method | precision@{k} | recall@{k} | NDCG@{k} | MAP@{k} | coverage | "
            f"NDCG@{k} - {LABELS[task.baseline]} |"
        )
        out.append("|---|---:|---:|---:|---:|---:|---:|")
        for cells in split_rows(task):
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
        cutoffs = ", ".join(
            f"{s.cutoff:%Y-%m-%d} (validation chose {s.tuning.method})" for s in task.splits
        )
        means = ", ".join(
            f"{LABELS.get(s.method, s.method)} {task.mean(s.method, 'ndcg'):.4f}"
            for s in split.scores
        )
        out.append(f"Mean NDCG@{k} over the cutoffs {cutoffs}: {means}.\n")
    return "\n".join(out)


def summary_table(evaluation: Evaluation) -> str:
    """The latest split of both tasks in one short Markdown table (for the README)."""
    k = evaluation.k
    out = [
        f"| task | method | precision@{k} | NDCG@{k} | NDCG@{k} vs baseline (95% interval) |",
        "|---|---|---:|---:|---|",
    ]
    for task in evaluation.tasks:
        for score in task.latest.scores:
            d = score.difference
            versus = (
                "baseline"
                if d is None
                else f"{d['ndcg'].value:+.3f} [{d['ndcg'].low:+.3f}, {d['ndcg'].high:+.3f}]"
            )
            out.append(
                f"| {task.purpose} | {LABELS.get(score.method, score.method)} | "
                f"{score.metrics['precision'].value:.3f} | {score.metrics['ndcg'].value:.3f} | "
                f"{versus} |"
            )
    return "\n".join(out) + "\n"


def render_html(evaluation: Evaluation) -> str:
    """One page: the headlines, each task's table, and one plot per metric."""
    k = evaluation.k
    title = f"Recommendation evaluation (k = {k}, {evaluation.test_days}-day test windows)"
    body = [f"<h1>{_e(title)}</h1>"]
    body += [f"<p>{_e(headline(t, k))}</p>" for t in evaluation.tasks]
    for task in evaluation.tasks:
        body.append(f"<h2>{_e(TASK_LABELS[task.purpose])}</h2>")
        header = ["method", f"precision@{k}", f"recall@{k}", f"NDCG@{k}", f"MAP@{k}", "coverage",
                  f"NDCG@{k} - {LABELS[task.baseline]}"]  # fmt: skip
        body.append(_html_table(header, split_rows(task)))
    if evaluation.note:
        body.append(f"<p>Note: {_e(evaluation.note)}</p>")
    for metric in METRICS:
        body.append(f"<h2>{_e(METRIC_LABELS[metric])}@{k}</h2>")
        body.append(_img(_metric_plot(evaluation, metric), f"{METRIC_LABELS[metric]} by cutoff"))
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title></head><body>" + "\n".join(body) + "</body></html>\n"
    )


def _metric_plot(evaluation: Evaluation, metric: str) -> Figure:
    """Per task, each method's mean ``metric`` by cutoff with its 95% interval."""
    figure = Figure(figsize=(5.5 * len(evaluation.tasks), 3.6))
    for number, task in enumerate(evaluation.tasks, start=1):
        axes = figure.add_subplot(1, len(evaluation.tasks), number)
        splits = list(reversed(task.splits))
        x = list(range(len(splits)))
        for method in [s.method for s in task.latest.scores]:
            estimates = [s.score(method).metrics[metric] for s in splits]
            values = [e.value for e in estimates]
            errors = [
                [e.value - e.low for e in estimates],
                [e.high - e.value for e in estimates],
            ]
            axes.errorbar(x, values, yerr=errors, marker="o", capsize=3,
                          label=LABELS.get(method, method))  # fmt: skip
        axes.set_xticks(x, [f"{s.cutoff:%Y-%m-%d}" for s in splits])
        axes.set_title(task.purpose)
        axes.set_xlabel("cutoff")
        axes.set_ylabel(f"{METRIC_LABELS[metric]}@{evaluation.k}")
        axes.legend(fontsize=7)
    figure.tight_layout()
    return figure


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table border='1' cellpadding='4'><tr>{head}</tr>{body}</table>"


def _e(text: str) -> str:
    return html.escape(text, quote=True)
