"""``campaign report --html``: one self-contained page, plots embedded as PNG (no network)."""

from __future__ import annotations

import base64
import io
from html import escape

import numpy as np

from campaigns.experiments.analysis import METRIC_NAMES, ArmResult, ExperimentAnalysis, format_p
from campaigns.experiments.stats import Interval, wilson_interval


def _png(figure: object) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=96, bbox_inches="tight")  # type: ignore[attr-defined]
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _plots(analysis: ExperimentAnalysis) -> list[tuple[str, str]]:
    from matplotlib.figure import Figure  # imported here: only HTML reports need matplotlib

    metric = METRIC_NAMES[analysis.primary_metric]
    plots = []
    arms = [a for a in analysis.arms if a.exposures]

    figure = Figure(figsize=(6, 3))
    axes = figure.subplots()
    for i, arm in enumerate(arms):
        hits = arm.clicks if analysis.primary_metric == "ctr" else arm.conversions
        ci = wilson_interval(hits, arm.exposures, analysis.alpha)
        rate = hits / arm.exposures
        axes.errorbar(
            [100 * rate],
            [i],
            xerr=[[100 * (rate - ci.low)], [100 * (ci.high - rate)]],
            fmt="o",
            capsize=4,
            color="C0" if not arm.is_control else "C7",
        )
    axes.set_yticks(range(len(arms)), [a.variant for a in arms])
    axes.set_xlabel(f"{metric} rate (%) with {100 * (1 - analysis.alpha):.0f}% Wilson interval")
    plots.append((f"{metric.capitalize()} rate per arm", _png(figure)))

    figure = Figure(figsize=(6, 3.2))
    axes = figure.subplots()
    drawn = False
    for index, arm in enumerate(a for a in analysis.arms if a.lift_over_time):
        days = np.array([p.day for p in arm.lift_over_time], dtype="datetime64[D]")
        lift = [100 * (p.lift or 0) for p in arm.lift_over_time]
        colour = f"C{index}"
        axes.plot(days, lift, color=colour, label=arm.variant)
        seq = [p.sequential_ci or Interval(0, 0) for p in arm.lift_over_time]
        axes.fill_between(
            days, [100 * s.low for s in seq], [100 * s.high for s in seq], color=colour, alpha=0.2
        )
        drawn = True
    axes.axhline(0, color="black", linewidth=0.8)
    axes.set_ylabel("lift (points)")
    if drawn:
        axes.legend(loc="upper left", fontsize="small")
    figure.autofmt_xdate()
    plots.append(("Cumulative lift over time, with the always-valid interval", _png(figure)))

    figure = Figure(figsize=(6, 2.6))
    axes = figure.subplots()
    labels = list(analysis.split_arms)
    positions = list(range(len(analysis.srm.observed)))
    axes.bar([p - 0.2 for p in positions], analysis.srm.observed, width=0.4, label="observed")
    axes.bar([p + 0.2 for p in positions], analysis.srm.expected, width=0.4, label="expected")
    axes.set_xticks(positions, labels)
    axes.set_ylabel("exposures")
    axes.legend(fontsize="small")
    plots.append(
        (f"Exposure split (sample-ratio check {format_p(analysis.srm.p_value)})", _png(figure))
    )
    return plots


def _pct(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f}%"


def _pts(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:+.2f}"


def _ci(value: Interval | None, scale: float = 100, unit: str = "") -> str:
    if value is None:
        return "–"
    return f"[{scale * value.low:.2f}, {scale * value.high:.2f}]{unit}"


def _p(value: float | None) -> str:
    return "–" if value is None else (f"{value:.4f}" if value >= 1e-4 else f"{value:.1e}")


def _row(arm: ArmResult) -> list[str]:
    primary = arm.primary
    revenue = arm.revenue
    return [
        arm.variant + (" (control)" if arm.is_control else ""),
        f"{arm.exposures:,}",
        f"{arm.clicks:,}",
        _pct(arm.ctr),
        f"{arm.conversions:,}",
        _pct(arm.conversion_rate),
        "–" if arm.revenue_per_exposure is None else f"{arm.revenue_per_exposure:.2f}",
        _pts(primary.abs_lift if primary else None),
        _ci(primary.abs_lift_ci if primary else None),
        _ci(primary.wald_ci if primary else None),
        _pct(primary.rel_lift if primary else None, 1),
        _ci(primary.rel_lift_ci if primary else None, unit="%"),
        primary.test or "–" if primary else "–",
        _p(primary.p_value if primary else None),
        _p(arm.p_value_adjusted),
        _p(arm.sequential.p_value if arm.sequential else None),
        _ci(arm.sequential.ci if arm.sequential else None),
        _pct(arm.prob_beat_control, 1),
        "–" if revenue is None or revenue.diff is None else f"{revenue.diff:+.2f}",
        _p(revenue.p_value if revenue else None),
        _pts(arm.cuped.diff if arm.cuped else None),
        _ci(arm.cuped.ci if arm.cuped else None),
        _pct(arm.cuped.variance_reduction if arm.cuped else None, 0),
    ]


_HEADERS = (
    "arm", "exposures", "clicks", "CTR", "conversions", "conversion rate", "revenue / exposure",
    "abs. lift (points)", "Newcombe 95% CI", "Wald 95% CI", "rel. lift", "delta-method CI",
    "test", "p", "p (Holm)", "always-valid p", "always-valid CI", "P(beats control)",
    "revenue diff", "Welch p", "CUPED lift", "CUPED CI", "CUPED variance cut",
)  # fmt: skip

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.5em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.verdict { font-size: 1.3em; margin: 1em 0; }
.srm { padding: 0.8em; border-radius: 4px; }
.srm.bad { background: #fdd; border: 2px solid #c00; font-weight: bold; }
.srm.good { background: #efe; border: 1px solid #6a6; }
"""


def render_html(analysis: ExperimentAnalysis) -> str:
    """The whole report as one HTML document."""
    srm = analysis.srm
    srm_class = "bad" if srm.mismatch else "good"
    srm_text = (
        f"Sample ratio mismatch: {format_p(srm.p_value)} (chi-square against the configured "
        "split). The split is broken; do not trust these results."
        if srm.mismatch
        else f"Sample ratio check passed: {format_p(srm.p_value)} (chi-square against the "
        "configured split; flagged below 0.001)."
    )
    if not analysis.configured:
        srm_text += " Imported experiment: equal shares assumed."
    head = "".join(f"<th>{escape(h)}</th>" for h in _HEADERS)
    rows = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in _row(arm)) + "</tr>"
        for arm in analysis.arms
    )
    plots = "".join(
        f'<h2>{escape(title)}</h2><img alt="{escape(title)}" src="data:image/png;base64,{png}">'
        for title, png in _plots(analysis)
    )
    notes = "".join(f"<p>{escape(note)}</p>" for note in analysis.notes)
    secondary = "".join(
        f"<tr><td>{escape(arm.variant)}</td><td>{escape(METRIC_NAMES[name])}</td>"
        f"<td>{escape(_pts(c.abs_lift))}</td><td>{escape(_ci(c.abs_lift_ci))}</td>"
        f"<td>{escape(c.test or '–')}</td><td>{escape(_p(c.p_value))}</td></tr>"
        for arm in analysis.arms
        for name, c in arm.secondary
    )
    if secondary:
        secondary = (
            "<h2>Secondary metrics (not adjusted)</h2><table><thead><tr><th>arm</th>"
            "<th>metric</th><th>lift (points)</th><th>Newcombe 95% CI</th><th>test</th>"
            f"<th>p</th></tr></thead><tbody>{secondary}</tbody></table>"
        )
    metric = METRIC_NAMES[analysis.primary_metric]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Experiment {escape(analysis.experiment)}</title><style>{_STYLE}</style></head>
<body>
<h1>Experiment {escape(analysis.experiment)}</h1>
<p class="srm {srm_class}">{escape(srm_text)}</p>
<p class="verdict">{escape(analysis.verdict)}</p>{notes}
<p>Primary metric: {escape(metric)}; control: {escape(analysis.control)}; alpha
{analysis.alpha:g}; minimum detectable effect {100 * analysis.minimum_detectable_effect:.1f}
points. Lifts are against control. The p-value is the pooled two-proportion z-test, or Fisher's
exact test when an expected cell is below 5; with more than one variant, Holm-adjusted. The
always-valid p and interval (mixture SPRT) stay valid however often you look.</p>
<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>
{secondary}
{plots}
</body></html>
"""
