"""``campaign report --html``: one self-contained page, plots embedded as PNG (no network).

Each plot answers one question and is drawn only when it has data to answer it; otherwise the
page says why it is missing.
"""

from __future__ import annotations

import base64
import io
from html import escape
from typing import TYPE_CHECKING

from campaigns.experiments.analysis import (
    METRIC_NAMES,
    NOT_CHECKED,
    ArmResult,
    ExperimentAnalysis,
    format_p,
)
from campaigns.experiments.guardrails import METRIC_LABELS
from campaigns.experiments.stats import Interval, wilson_interval

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: A plot: its question (the heading), and either the PNG (base64) or why it is not drawn.
Plot = tuple[str, str | None, str | None]


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _rates_plot(analysis: ExperimentAnalysis) -> Plot:
    from matplotlib.figure import Figure  # imported here: only HTML reports need matplotlib

    metric = METRIC_NAMES[analysis.primary_metric]
    question = f"Which arm has the highest {metric} rate?"
    arms = [a for a in analysis.arms if a.exposures]
    if not arms:
        return question, None, "Not drawn: no exposures yet."
    figure = Figure(figsize=(6.5, 0.8 + 0.5 * len(arms)))
    axes = figure.subplots()
    for i, arm in enumerate(arms):
        hits = arm.clicks if analysis.primary_metric == "ctr" else arm.conversions
        ci = wilson_interval(hits, arm.exposures, analysis.alpha)
        rate = hits / arm.exposures
        axes.errorbar(
            [100 * rate],
            [i],
            # Clamped: at a rate of 0 or 1 rounding can put the bound a hair past the rate.
            xerr=[[max(0.0, 100 * (rate - ci.low))], [max(0.0, 100 * (ci.high - rate))]],
            fmt="o",
            capsize=4,
            color="C7" if arm.is_control else "C0",
        )
    axes.set_yticks(range(len(arms)), [_label(a) for a in arms])
    axes.set_ylim(-0.6, len(arms) - 0.4)
    axes.invert_yaxis()
    axes.set_xlabel(f"{metric} rate (%), {100 * (1 - analysis.alpha):.0f}% Wilson interval")
    axes.grid(axis="x", alpha=0.3)
    return question, _png(figure), None


def _lift_plot(analysis: ExperimentAnalysis) -> Plot:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
    from matplotlib.figure import Figure

    question = "How has each variant's lift over control moved as exposures came in?"
    series = [a for a in analysis.arms if a.lift_over_time and a.variant != "holdout"]
    days = sorted({p.day for a in series for p in a.lift_over_time})
    if not series:
        return question, None, "Not drawn: no variant has a comparison with control yet."
    if len(days) < 2:
        return (
            question,
            None,
            f"Not drawn: every exposure so far is from one day ({days[0].isoformat()}), so there "
            "is no change over time to show yet.",
        )
    figure = Figure(figsize=(7, 3.4))
    axes = figure.subplots()
    for index, arm in enumerate(series):
        points = arm.lift_over_time
        x = date2num([p.day for p in points])  # type: ignore[no-untyped-call]
        colour = f"C{index}"
        axes.plot(x, [100 * (p.lift or 0) for p in points], color=colour, label=arm.variant)
        band = [p.sequential_ci for p in points]
        if all(b is not None for b in band):
            intervals = [b for b in band if b is not None]
            axes.fill_between(
                x,
                [100 * b.low for b in intervals],
                [100 * b.high for b in intervals],
                color=colour,
                alpha=0.15,
            )
    axes.axhline(0, color="black", linewidth=0.8)
    # The axis spans the experiment's days (half a day of margin either side), whatever
    # matplotlib's default limits would be.
    first, last = date2num([days[0], days[-1]])  # type: ignore[no-untyped-call]
    axes.set_xlim(first - 0.5, last + 0.5)
    locator = AutoDateLocator(minticks=3, maxticks=8)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    axes.set_xlabel("exposure day (cumulative data)")
    axes.set_ylabel("lift over control (points)")
    axes.legend(loc="upper left", fontsize="small", title="shaded: always-valid interval")
    axes.grid(alpha=0.3)
    return question, _png(figure), None


def _split_plot(analysis: ExperimentAnalysis) -> Plot:
    from matplotlib.figure import Figure

    question = "Does the split of exposures match the planned shares?"
    srm = analysis.srm
    if srm.status == NOT_CHECKED:
        return question, None, "Not drawn: the design gives no planned shares to compare with."
    if srm.p_value is None:
        return question, None, "Not drawn: no exposures yet."
    figure = Figure(figsize=(6.5, 2.8))
    axes = figure.subplots()
    labels = list(analysis.split_arms)
    positions = list(range(len(srm.observed)))
    axes.bar([p - 0.2 for p in positions], srm.observed, width=0.4, label="observed")
    axes.bar([p + 0.2 for p in positions], srm.expected, width=0.4, label="planned")
    axes.set_xticks(positions, labels)
    axes.set_ylabel("exposures")
    axes.legend(fontsize="small")
    return question, _png(figure), None


def _label(arm: ArmResult) -> str:
    return (
        f"{arm.variant} (control)" if arm.is_control and arm.variant != "control" else arm.variant
    )


def _pct(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f}%"


def _pts(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:+.2f}"


def _end(value: float, scale: float) -> str:
    return "∞" if value == float("inf") else f"{scale * value:.2f}"


def _ci(value: Interval | None, scale: float = 100, unit: str = "") -> str:
    if value is None:
        return "–"
    return f"[{_end(value.low, scale)}, {_end(value.high, scale)}]{unit}"


def _p(value: float | None) -> str:
    return "–" if value is None else (f"{value:.4f}" if value >= 1e-4 else f"{value:.1e}")


def _count(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


_MAIN = (
    "arm", "assigned", "delivered", "failed", "clicks", "CTR", "conversions", "conversion rate",
    "lift (points)", "interval", "relative lift", "interval", "test", "p", "p (adjusted)",
    "always-valid p (adjusted)", "always-valid interval", "P(beats control)",
    "expected loss if shipped", "decision",
)  # fmt: skip


def _main_row(arm: ArmResult) -> list[str]:
    primary = arm.primary
    delivery = arm.delivery
    decision = arm.decision
    return [
        _label(arm),
        f"{arm.exposures:,}",
        _count(delivery.delivered if delivery else None),
        _count(delivery.failed if delivery else None),
        f"{arm.clicks:,}",
        _pct(arm.ctr),
        f"{arm.conversions:,}",
        _pct(arm.conversion_rate),
        _pts(primary.abs_lift if primary else None),
        _ci(arm.abs_lift_ci_adjusted if primary else None),
        _pct(primary.rel_lift if primary else None, 1),
        _ci(arm.rel_lift_ci_adjusted if primary else None, unit="%"),
        (primary.test or "–") if primary else "–",
        _p(primary.p_value if primary else None),
        _p(arm.p_value_adjusted if primary else None),
        _p(arm.sequential_p_adjusted),
        _ci(arm.sequential_ci_adjusted),
        _pct(arm.prob_beat_control, 1),
        _pts(arm.expected_loss.choose_variant if arm.expected_loss else None),
        f"{decision.action}: {decision.reason}" if decision else "–",
    ]


_EXTRA = (
    "arm", "revenue / exposure", "revenue diff", "interval", "Welch p", "CUPED lift (points)",
    "CUPED interval", "CUPED variance cut", "orders per clicker", "diff", "delta-method p",
)  # fmt: skip


def _extra_row(arm: ArmResult) -> list[str]:
    revenue, cuped, ratio = arm.revenue, arm.cuped, arm.orders_per_clicker
    return [
        _label(arm),
        "–" if arm.revenue_per_exposure is None else f"{arm.revenue_per_exposure:.2f}",
        "–" if revenue is None or revenue.diff is None else f"{revenue.diff:+.2f}",
        _ci(revenue.ci if revenue else None, scale=1),
        _p(revenue.p_value if revenue else None),
        _pts(cuped.diff if cuped else None),
        _ci(cuped.ci if cuped else None),
        _pct(cuped.variance_reduction if cuped else None, 0),
        "–" if ratio is None or ratio.variant is None else f"{ratio.variant:.3f}",
        "–" if ratio is None or ratio.diff is None else f"{ratio.diff:+.3f}",
        _p(ratio.p_value if ratio else None),
    ]


def _table(headers: tuple[str, ...], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 80em; }
table { border-collapse: collapse; font-size: 0.85em; margin-bottom: 1em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.5em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.verdict { font-size: 1.2em; margin: 1em 0; }
.srm { padding: 0.8em; border-radius: 4px; }
.srm.bad { background: #fdd; border: 2px solid #c00; font-weight: bold; }
.srm.good { background: #efe; border: 1px solid #6a6; }
.srm.none { background: #ffd; border: 1px solid #aa6; }
.missing { color: #666; font-style: italic; }
"""


def _srm_text(analysis: ExperimentAnalysis) -> tuple[str, str]:
    srm = analysis.srm
    if srm.status == NOT_CHECKED:
        return "none", "Sample ratio check not run: the design gives no planned shares."
    if srm.mismatch:
        return "bad", (
            f"Sample ratio mismatch: {format_p(srm.p_value)} (chi-square against the planned "
            "split). The split is broken; do not trust these results."
        )
    return "good", (
        f"Sample ratio check passed: {format_p(srm.p_value)} (chi-square against the planned "
        "split; flagged below 0.001)."
    )


def _design(analysis: ExperimentAnalysis) -> str:
    spec = analysis.spec
    metric = METRIC_NAMES[analysis.primary_metric]
    effect = analysis.minimum_detectable_effect
    mde = "not given" if effect is None else f"{100 * effect:.1f} points"
    text = (
        f"Primary metric: {metric}; control: {analysis.control}; alpha {analysis.alpha:g}; "
        f"minimum detectable effect {mde}."
    )
    if spec is not None:
        text += (
            f" Decision rule: {spec.decision} ({spec.alternative}), {spec.multiplicity} across "
            "variants. Intervals are score intervals that invert the test (relative: the risk "
            "ratio's), at the level matching the adjustment; the always-valid p and interval "
            "(mixture SPRT) stay valid however often you look."
        )
        if spec.missing_design:
            text += " Not given by the design: " + ", ".join(spec.missing_design) + "."
    return text


def render_html(analysis: ExperimentAnalysis) -> str:
    """The whole report as one HTML document."""
    srm_class, srm_text = _srm_text(analysis)
    compared = [a for a in analysis.arms if a.primary is not None or a.is_control]
    plots = []
    for question, png, why in (_rates_plot(analysis), _lift_plot(analysis), _split_plot(analysis)):
        plots.append(f"<h2>{escape(question)}</h2>")
        if png is not None:
            plots.append(f'<img alt="{escape(question)}" src="data:image/png;base64,{png}">')
        else:
            plots.append(f'<p class="missing">{escape(why or "")}</p>')
    notes = "".join(f"<p>{escape(note)}</p>" for note in analysis.notes)
    secondary = [
        [
            _label(arm),
            METRIC_NAMES[name],
            _pts(c.abs_lift),
            _ci(c.abs_lift_ci),
            c.test or "–",
            _p(c.p_value),
        ]
        for arm in analysis.arms
        for name, c in arm.secondary
    ]
    guardrails = [
        [
            _label(arm),
            METRIC_LABELS[g.metric],
            _pct(g.control.rate, 3),
            _pct(g.variant.rate, 3),
            _p(g.comparison.p_value),
            "harmed" if g.harmed else "ok",
        ]
        for arm in analysis.arms
        for g in arm.guardrails
    ]
    sections = [
        f'<p class="srm {srm_class}">{escape(srm_text)}</p>',
        f'<p class="verdict">{escape(analysis.verdict)}</p>{notes}',
        f"<p>{escape(_design(analysis))}</p>",
    ]
    if compared:
        sections.append(_table(_MAIN, [_main_row(a) for a in compared]))
        sections.append("<h2>Revenue, CUPED and orders per clicker</h2>")
        sections.append(_table(_EXTRA, [_extra_row(a) for a in compared if a.primary]))
    if secondary:
        sections.append("<h2>Secondary metrics (not adjusted)</h2>")
        sections.append(
            _table(("arm", "metric", "lift (points)", "interval", "test", "p"), secondary)
        )
    if guardrails:
        sections.append("<h2>Guardrails (one-sided: is the variant's rate higher?)</h2>")
        sections.append(_table(("arm", "metric", "control", "variant", "p", "status"), guardrails))
    body = "\n".join([*sections, *plots])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Experiment {escape(analysis.experiment)}</title><style>{_STYLE}</style></head>
<body>
<h1>Experiment {escape(analysis.experiment)}</h1>
{body}
</body></html>
"""
