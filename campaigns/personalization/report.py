"""Model reports as lines of text and as one self-contained HTML page (plots as embedded PNGs)."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

from matplotlib.figure import Figure

from campaigns.personalization.models_store import StoredModel

_NAMES = {
    "logistic_regression": "logistic regression",
    "gradient_boosting": "gradient boosting",
    "two_model": "two-model",
    "class_transformation": "class transformation",
}


def report_lines(stored: StoredModel) -> list[str]:
    """The report of a stored model, as the terminal prints it; propensity and uplift models end
    with whether they beat chance and so whether runs target with them."""
    if stored.kind == "clv":
        from campaigns.personalization.clv import report as clv

        return clv.report_lines(
            stored.version, f"{stored.created_at:%Y-%m-%d %H:%M} UTC", stored.report
        )
    lines = _propensity_lines(stored) if stored.kind == "propensity" else _uplift_lines(stored)
    return lines + chance_lines(stored)


def chance_lines(stored: StoredModel) -> list[str]:
    """Whether the model beats chance, and what that means for runs."""
    chance = stored.report.get("chance")
    if chance is None:  # trained before the check existed
        return []
    low, high = chance["ci"]
    figure = (
        f"{chance['metric']} {chance['value']:.3f}, 95% interval [{low:.3f}, {high:.3f}] "
        f"({chance['method']})"
    )
    if chance["beats_chance"]:
        return [f"Beats chance: {figure}, above {chance['chance']:g}."]
    line = f"No better than chance: {figure}, not above {chance['chance']:g}. Stored as rejected"
    if stored.settings.get("accepted"):
        return [line + ", but accepted with --accept: runs target with it."]
    return [
        line + ": runs do not target with it (they use the newest model that beats chance, if "
        f"any). Train with more data, or give --accept to use v{stored.version} anyway."
    ]


def _propensity_lines(stored: StoredModel) -> list[str]:
    r = stored.report
    held = r["held_out"]
    lines = [
        f"Propensity model v{stored.version}: {_NAMES[r['chosen']]}, trained "
        f"{stored.created_at:%Y-%m-%d %H:%M} UTC on {r['source']} "
        f"({r['rows']:,} customers, {r['responders']:,} responders).",
        f"Class imbalance: {r['imbalance']}.",
        f"Cross-validation ({r['cv_folds']} folds, ROC AUC): "
        + "; ".join(
            f"{_NAMES[name]} {cv['mean']:.3f} ± {cv['std']:.3f}"
            for name, cv in r["cv_roc_auc"].items()
        )
        + ".",
        f"Held out ({held['rows']:,} customers): ROC AUC {held['roc_auc']:.3f}, average "
        f"precision {held['average_precision']:.3f} (base rate {held['base_rate']:.3f}), "
        f"mean score {held['mean_score']:.3f}.",
        "Lift by decile: " + " ".join(f"{row['lift']:.2f}" for row in held["lift_by_decile"]),
        "Calibration (predicted -> observed): "
        + ", ".join(f"{p['predicted']:.2f}->{p['observed']:.2f}" for p in held["calibration"]),
    ]
    return lines


def _uplift_lines(stored: StoredModel) -> list[str]:
    r = stored.report
    lines = [
        f"Uplift model v{stored.version}: {_NAMES[r['chosen']]}, trained "
        f"{stored.created_at:%Y-%m-%d %H:%M} UTC on {r['source']} ({r['rows']:,} customers, "
        f"{r['treated']:,} treated; conversion {r['conversion_rate_treated']:.2%} treated, "
        f"{r['conversion_rate_held_out']:.2%} held out).",
        f"Held out ({r['held_out_rows']:,} customers), area per customer above random targeting:",
    ]
    for name, part in r["held_out"].items():
        lines.append(
            f"  {_NAMES[name]}: Qini {part['qini_area']:.4f} (random "
            f"{part['qini_random_area']:.4f}, coefficient {part['qini_coefficient']:+.4f}); "
            f"uplift curve {part['uplift_area']:.4f} (random {part['uplift_random_area']:.4f})"
        )
    targeting = r["targeting"]
    share = targeting["share"]
    estimated = targeting["estimated_per_1000"]
    lines.append(
        f"Incremental conversions per 1,000 messages (top {share:.0%} by uplift / by propensity"
        f" / everyone): {estimated['uplift']:.1f} / {estimated['propensity']:.1f} / "
        f"{estimated['everyone']:.1f} estimated"
    )
    if "true_per_1000" in targeting:
        true = targeting["true_per_1000"]
        lines[-1] += (
            f"; {true['uplift']:.1f} / {true['propensity']:.1f} / {true['everyone']:.1f} "
            "true (simulation)"
        )
    if "mean_uplift_by_group" in r:
        lines.append(
            "Mean predicted uplift by latent group: "
            + ", ".join(f"{g} {v:+.3f}" for g, v in r["mean_uplift_by_group"].items())
        )
    return lines


# ------------------------------------------------------------------------------------------ HTML


def render_html(stored: StoredModel) -> str:
    """One page: the report lines, then the plots (no network needed to open it)."""
    if stored.kind == "clv":
        from campaigns.personalization.clv import report as clv

        return clv.render_html(
            stored.version, f"{stored.created_at:%Y-%m-%d %H:%M} UTC", stored.report
        )
    title = f"{stored.kind.capitalize()} model v{stored.version}"
    body = [f"<h1>{_e(title)}</h1>"]
    body += [f"<p>{_e(line)}</p>" for line in report_lines(stored)]
    if stored.kind == "propensity":
        held = stored.report["held_out"]
        body.append(_img(_calibration_plot(held["calibration"]), "Calibration curve"))
        body.append(_img(_lift_plot(held["lift_by_decile"]), "Lift by decile"))
    else:
        for name, part in stored.report["held_out"].items():
            body.append(_img(_curve_plot(part["curve"], _NAMES[name]), f"{_NAMES[name]} curves"))
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title></head><body>" + "\n".join(body) + "</body></html>\n"
    )


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _img(figure: Figure, alt: str) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode()
    return f"<img alt='{_e(alt)}' src='data:image/png;base64,{data}'>"


def _calibration_plot(points: list[dict[str, float]]) -> Figure:
    figure = Figure(figsize=(5, 4))
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    axes.plot(
        [p["predicted"] for p in points], [p["observed"] for p in points], marker="o", label="model"
    )
    axes.set_xlabel("predicted probability")
    axes.set_ylabel("observed rate")
    axes.set_title("Calibration (held out)")
    axes.legend()
    return figure


def _lift_plot(rows: list[dict[str, float]]) -> Figure:
    figure = Figure(figsize=(5, 4))
    axes = figure.add_subplot()
    axes.bar([int(r["decile"]) for r in rows], [r["lift"] for r in rows])
    axes.axhline(1.0, color="grey", linestyle="--")
    axes.set_xlabel("decile (1 = highest score)")
    axes.set_ylabel("lift")
    axes.set_title("Lift by decile (held out)")
    return figure


def _curve_plot(curve: list[dict[str, Any]], name: str) -> Figure:
    figure = Figure(figsize=(9, 4))
    for position, key in enumerate(("qini", "uplift"), start=1):
        axes = figure.add_subplot(1, 2, position)
        shares = [p["share"] for p in curve]
        values = [p[key] for p in curve]
        axes.plot(shares, values, marker=".", label=name)
        axes.plot([0, 1], [0, values[-1]], linestyle="--", color="grey", label="random")
        axes.set_xlabel("share targeted (by predicted uplift)")
        axes.set_ylabel("incremental conversions")
        axes.set_title(f"{key.capitalize()} curve (held out)")
        axes.legend()
    return figure
