"""The lifetime-value model's report: lines for the terminal and one self-contained HTML page."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

_MODELS = {"bgnbd": "BG/NBD", "bgbb": "BG/BB", "gamma_gamma": "Gamma-Gamma"}


def _parameters(fit: dict[str, Any]) -> str:
    parts = []
    for p in fit["parameters"]:
        error = "" if p["standard_error"] is None else f" ± {p['standard_error']:.3f}"
        parts.append(f"{p['name']} = {p['value']:.3f}{error}")
    return ", ".join(parts) + f" (log-likelihood {fit['log_likelihood']:,.1f})"


def report_lines(version: int, created: str, report: dict[str, Any]) -> list[str]:
    """The report as the terminal prints it."""
    model = _MODELS[report["model"]]
    lines = [
        f"Lifetime-value model v{version}: {model} + Gamma-Gamma, trained {created} on "
        f"purchases up to {report['at'][:16].replace('T', ' ')} ({report['customers']:,} "
        f"customers, {report['repeat_customers']:,} bought again); time in {report['unit']}.",
        f"{model} (± standard error): {_parameters(report['purchases'])}.",
    ]
    if report["spend"] is not None:
        lines.append(f"Gamma-Gamma: {_parameters(report['spend'])}.")
    else:
        lines.append("Gamma-Gamma: not fitted (fewer than 3 customers with repeat purchases).")
    lines.append(_independence(report["independence"]))
    calibration = report["calibration"]
    if calibration is not None:
        holdout = report["holdout"]
        lines.append(
            f"Calibration up to {calibration['end'][:10]}: {model} "
            f"{_parameters(calibration['purchases'])}."
        )
        lines.append(
            f"Holdout ({holdout['holdout_days']:g} days, {holdout['customers']:,} customers): "
            f"{holdout['actual_total']:,.0f} {holdout['counted']} actual, "
            f"{holdout['predicted_total']:,.1f} predicted."
        )
        lines.append(
            "By calibration frequency (customers: actual / predicted per customer): "
            + "; ".join(
                f"{row['frequency']} ({row['customers']:,}): {row['actual']:.2f} / "
                f"{row['predicted']:.2f}"
                for row in holdout["by_frequency"]
            )
        )
    scores = report["scores"]
    mean_alive = "n/a" if scores["mean_p_alive"] is None else f"{scores['mean_p_alive']:.3f}"
    lines.append(
        f"Scores for {scores['customers']:,} customers: mean p_alive {mean_alive}, "
        f"{scores['expected_purchases_90d']:,.1f} purchases expected in 90 days, 12-month "
        f"value {scores['clv_12m']:,.2f} in all (discounted at {report['discount_rate']:.0%} a "
        "year)."
    )
    return lines


def _independence(check: dict[str, Any]) -> str:
    if check["correlation"] is None:
        return "Independence of frequency and spend: not enough repeat customers to check."
    verdict = (
        "weak, as Gamma-Gamma assumes"
        if abs(check["correlation"]) < 0.3
        else "strong: Gamma-Gamma's spend figures are doubtful"
    )
    return (
        f"Independence check ({check['customers']:,} repeat customers): correlation of "
        f"frequency and mean spend {check['correlation']:+.3f} (p = {check['p_value']:.3g}), "
        f"{verdict}."
    )


def render_html(version: int, created: str, report: dict[str, Any]) -> str:
    """The report lines, a table of parameters and the calibration/holdout plot."""
    title = f"Lifetime-value model v{version}"
    body = [f"<h1>{_e(title)}</h1>"]
    body += [f"<p>{_e(line)}</p>" for line in report_lines(version, created, report)]
    body.append(_parameter_table(report))
    holdout = report["holdout"]
    if holdout is not None and holdout["by_frequency"]:
        body.append(_img(_holdout_plot(holdout), "Predicted and actual holdout purchases"))
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )


_CSS = (
    "body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;"
    "text-align:right}td.l,th.l{text-align:left}img{max-width:100%}"
)


def _parameter_table(report: dict[str, Any]) -> str:
    rows = []
    for label, fit in (("whole history", report["purchases"]), ("whole history", report["spend"])):
        if fit is None:
            continue
        for p in fit["parameters"]:
            error = "" if p["standard_error"] is None else f"{p['standard_error']:.4f}"
            rows.append(
                f"<tr><td class='l'>{_e(_MODELS[fit['model']])}</td><td class='l'>"
                f"{_e(p['name'])}</td><td>{p['value']:.4f}</td><td>{error}</td>"
                f"<td class='l'>{label}</td></tr>"
            )
    return (
        "<table><tr><th class='l'>model</th><th class='l'>parameter</th><th>estimate</th>"
        "<th>standard error</th><th class='l'>fit</th></tr>" + "".join(rows) + "</table>"
    )


def _holdout_plot(holdout: dict[str, Any]) -> Figure:
    rows = holdout["by_frequency"]
    figure = Figure(figsize=(7, 4))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    labels = [row["frequency"] for row in rows]
    axes.plot(labels, [row["actual"] for row in rows], marker="o", label="actual")
    axes.plot(
        labels, [row["predicted"] for row in rows], marker="s", linestyle="--", label="predicted"
    )
    axes.set_xlabel("repeat purchases in the calibration period")
    axes.set_ylabel(f"{holdout['counted']} per customer in the holdout")
    axes.set_title(
        f"Do the predictions hold? Holdout of {holdout['holdout_days']:g} days after "
        f"{holdout['calibration_end'][:10]}"
    )
    axes.legend()
    return figure


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _img(figure: Figure, alt: str) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode()
    return f"<figure><img alt='{_e(alt)}' src='data:image/png;base64,{data}'></figure>"
