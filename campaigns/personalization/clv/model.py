"""The lifetime-value model a workspace trains and its runs use: BG/NBD (or BG/BB) for purchases
and P(alive), Gamma-Gamma for spend per purchase, checked on a holdout period.

Training (:func:`train_clv`) fits on the purchases up to ``at - holdout_days`` (the calibration
period), compares the predicted purchases in the holdout period with what customers did, by
their calibration frequency, and then fits again on everything up to ``at``: the second fit is
the one runs score with. Scoring (:meth:`ClvModel.columns`) summarises each customer's purchases
up to the run's time and adds four customer columns:

``p_alive``
    The probability that the customer is still a customer (BG/NBD: 1 for customers who have
    not bought again yet, since the model lets customers drop out only after a purchase).
``expected_purchases_90d``
    Expected purchase days in the next 90 days.
``expected_spend``
    Expected spend per purchase (Gamma-Gamma; the population mean for one-time buyers).
``clv_12m``
    Expected spend over the next 12 months: expected purchases month by month times
    ``expected_spend``, each month discounted at the annual ``discount_rate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd

from campaigns.personalization.clv import bgbb, bgnbd, gamma_gamma
from campaigns.personalization.clv._mle import Fit
from campaigns.personalization.clv.summary import (
    as_floats,
    holdout_purchases,
    period_summary,
    purchase_days,
    rfm_summary,
)
from campaigns.personalization.errors import PersonalizationError

#: The customer columns a trained model adds.
COLUMNS: tuple[str, ...] = ("p_alive", "expected_purchases_90d", "expected_spend", "clv_12m")
#: Time units of the BG/NBD model, in days.
UNITS: dict[str, float] = {"days": 1.0, "weeks": 7.0}
#: Calibration frequencies at and above this are one row of the holdout check.
FREQUENCY_CAP = 7
_MONTH_DAYS = 365.25 / 12

Model = Literal["bgnbd", "bgbb"]


@dataclass(frozen=True)
class ClvModel:
    """A fitted purchase model and spend model.

    :param model: ``"bgnbd"`` (continuous time) or ``"bgbb"`` (periods)
    :param unit_days: BG/NBD's time unit, or BG/BB's period, in days
    :param purchases: the purchase model's parameters
    :param spend: the Gamma-Gamma parameters (None when no customer bought twice)
    :param discount_rate: annual rate that ``clv_12m`` discounts future months at
    """

    model: Model
    unit_days: float
    purchases: Fit
    spend: Fit | None
    discount_rate: float

    def columns(self, transactions: pd.DataFrame, at: datetime) -> pd.DataFrame:
        """The four customer columns (see the module docstring) of each customer with a
        purchase up to ``at``, indexed by customer id."""
        summary = rfm_summary(transactions, at, self.unit_days if self.model == "bgnbd" else 1.0)
        if summary.empty:
            return pd.DataFrame(columns=list(COLUMNS), dtype=np.float64)
        x, zbar = as_floats(summary["x"]), as_floats(summary["zbar"])
        expected = self._expected_by(transactions, summary, at)
        alive = self._p_alive(transactions, summary, at)
        spend = (
            gamma_gamma.expected_spend(self.spend, x, zbar)
            if self.spend is not None
            else np.full(len(x), np.nan)
        )
        months = np.arange(0, 13)
        cumulative = np.column_stack([expected(m * _MONTH_DAYS) for m in months])
        discount = (1 + self.discount_rate) ** (-months[1:] / 12)
        clv = (np.diff(cumulative, axis=1) @ discount) * spend
        return pd.DataFrame(
            {
                "p_alive": alive,
                "expected_purchases_90d": expected(90.0),
                "expected_spend": spend,
                "clv_12m": clv,
            },
            index=summary.index,
        )

    def _expected_by(self, transactions: pd.DataFrame, summary: pd.DataFrame, at: datetime) -> Any:
        if self.model == "bgnbd":
            x, t_x, T = (as_floats(summary[c]) for c in ("x", "t_x", "T"))

            def continuous(days: float) -> np.ndarray:
                if days == 0:
                    return np.zeros(len(x))
                return bgnbd.conditional_expected_purchases(
                    self.purchases, days / self.unit_days, x, t_x, T
                )

            return continuous
        periods = period_summary(transactions, at, self.unit_days).reindex(summary.index)
        px, pt, pn = (as_floats(periods[c]) for c in ("x", "t_x", "n"))

        def discrete(days: float) -> np.ndarray:
            if days == 0:
                return np.zeros(len(px))
            return bgbb.conditional_expected_transactions(
                self.purchases, days / self.unit_days, px, pt, pn
            )

        return discrete

    def _p_alive(
        self, transactions: pd.DataFrame, summary: pd.DataFrame, at: datetime
    ) -> np.ndarray:
        if self.model == "bgnbd":
            x, t_x, T = (as_floats(summary[c]) for c in ("x", "t_x", "T"))
            return bgnbd.p_alive(self.purchases, x, t_x, T)
        periods = period_summary(transactions, at, self.unit_days).reindex(summary.index)
        return bgbb.p_alive(self.purchases, *(as_floats(periods[c]) for c in ("x", "t_x", "n")))


def _fit_purchases(
    transactions: pd.DataFrame, at: datetime, model: Model, unit_days: float
) -> tuple[Fit, pd.DataFrame]:
    summary = rfm_summary(transactions, at, unit_days if model == "bgnbd" else 1.0)
    if int((summary["x"] > 0).sum()) < 2:
        raise PersonalizationError(
            f"fewer than two customers bought on two different days up to {at:%Y-%m-%d}; "
            "a lifetime-value model needs repeat purchases (try a later --at or a shorter "
            "--holdout-days)"
        )
    if model == "bgnbd":
        fit = bgnbd.fit(*(as_floats(summary[c]) for c in ("x", "t_x", "T")))
    else:
        periods = period_summary(transactions, at, unit_days)
        fit = bgbb.fit(*(as_floats(periods[c]) for c in ("x", "t_x", "n")))
    return fit, summary


def _fit_spend(summary: pd.DataFrame) -> tuple[Fit | None, dict[str, Any]]:
    """Gamma-Gamma on repeat customers with a positive mean spend, and the independence check."""
    from scipy.stats import pearsonr

    repeat = summary[(summary["x"] > 0) & (summary["zbar"] > 0)]
    check: dict[str, Any] = {"customers": len(repeat), "correlation": None, "p_value": None}
    if len(repeat) < 3:
        return None, check
    if repeat["x"].nunique() > 1 and repeat["zbar"].nunique() > 1:
        result = pearsonr(as_floats(repeat["x"]), as_floats(repeat["zbar"]))
        check.update(correlation=float(result.statistic), p_value=float(result.pvalue))
    return gamma_gamma.fit(as_floats(repeat["x"]), as_floats(repeat["zbar"])), check


def _holdout_check(
    transactions: pd.DataFrame,
    model: Model,
    unit_days: float,
    fit: Fit,
    summary: pd.DataFrame,
    calibration_end: datetime,
    at: datetime,
) -> dict[str, Any]:
    """Predicted against actual purchases in the holdout, by calibration frequency."""
    length = (at - calibration_end).total_seconds() / 86_400
    x = as_floats(summary["x"])
    if model == "bgnbd":
        actual = as_floats(holdout_purchases(transactions, calibration_end, at, summary.index))
        predicted = bgnbd.conditional_expected_purchases(
            fit, length / unit_days, x, as_floats(summary["t_x"]), as_floats(summary["T"])
        )
        counted = "purchase days"
    else:
        periods = period_summary(transactions, calibration_end, unit_days)
        x = as_floats(periods["x"])
        horizon = float(np.floor(length / unit_days))
        actual = _holdout_periods(transactions, periods, at, unit_days, horizon)
        predicted = bgbb.conditional_expected_transactions(
            fit, horizon, x, as_floats(periods["t_x"]), as_floats(periods["n"])
        )
        counted = "periods with a purchase"
    band = np.minimum(x, FREQUENCY_CAP).astype(int)
    rows = []
    for value in range(FREQUENCY_CAP + 1):
        mine = band == value
        if not mine.any():
            continue
        rows.append(
            {
                "frequency": f"{value}+" if value == FREQUENCY_CAP else str(value),
                "customers": int(mine.sum()),
                "actual": float(actual[mine].mean()),
                "predicted": float(predicted[mine].mean()),
            }
        )
    return {
        "calibration_end": calibration_end.isoformat(),
        "holdout_days": round(length, 6),
        "counted": counted,
        "customers": len(x),
        "actual_total": float(actual.sum()),
        "predicted_total": float(predicted.sum()),
        "by_frequency": rows,
    }


def _holdout_periods(
    transactions: pd.DataFrame,
    periods: pd.DataFrame,
    at: datetime,
    period_days: float,
    horizon: float,
) -> np.ndarray:
    days = purchase_days(transactions, at)
    days = days[days["customer_id"].isin(periods.index)]
    first = days.groupby("customer_id")["day"].transform("min")
    index = np.floor((days["day"] - first) / period_days)
    n = days["customer_id"].map(periods["n"])
    later = pd.DataFrame({"customer_id": days["customer_id"], "period": index})[
        (index > n) & (index <= n + horizon)
    ].drop_duplicates()
    counts: pd.Series = later.groupby("customer_id").size()
    result: np.ndarray = counts.reindex(periods.index, fill_value=0).to_numpy(dtype=np.float64)
    return result


def last_purchase_day(transactions: pd.DataFrame) -> datetime | None:
    """Midnight after the last transaction line (the natural ``at`` of a log that has ended)."""
    if transactions.empty:
        return None
    last = pd.to_datetime(transactions["invoiced_at"]).max()
    return (last.normalize() + pd.Timedelta(days=1)).to_pydatetime()


def train_clv(
    transactions: pd.DataFrame,
    at: datetime,
    holdout_days: int = 90,
    unit: str = "weeks",
    model: Model = "bgnbd",
    period_days: float = 365.0,
    discount_rate: float = 0.1,
) -> tuple[ClvModel, dict[str, Any]]:
    """Fit, check on the holdout and refit (see the module docstring).

    :return: the model fitted on everything up to ``at``, and the report (JSON-ready)
    """
    if unit not in UNITS:
        raise PersonalizationError(f"unit must be one of {', '.join(UNITS)}, got {unit!r}")
    unit_days = UNITS[unit] if model == "bgnbd" else float(period_days)
    report: dict[str, Any] = {
        "model": model,
        "unit": unit if model == "bgnbd" else f"periods of {period_days:g} days",
        "unit_days": unit_days,
        "at": at.isoformat(),
        "discount_rate": discount_rate,
        "calibration": None,
        "holdout": None,
    }
    if holdout_days > 0:
        calibration_end = at - timedelta(days=holdout_days)
        fit, summary = _fit_purchases(transactions, calibration_end, model, unit_days)
        spend, check = _fit_spend(summary)
        report["calibration"] = {
            "end": calibration_end.isoformat(),
            "purchases": fit.as_dict(),
            "spend": spend.as_dict() if spend is not None else None,
            "independence": check,
        }
        report["holdout"] = _holdout_check(
            transactions, model, unit_days, fit, summary, calibration_end, at
        )
    fit, summary = _fit_purchases(transactions, at, model, unit_days)
    spend, check = _fit_spend(summary)
    trained = ClvModel(model, unit_days, fit, spend, discount_rate)
    columns = trained.columns(transactions, at)
    report.update(
        customers=len(summary),
        repeat_customers=int((summary["x"] > 0).sum()),
        purchases=fit.as_dict(),
        spend=spend.as_dict() if spend is not None else None,
        independence=check,
        scores={
            "customers": len(columns),
            "mean_p_alive": _mean(columns["p_alive"]),
            "expected_purchases_90d": float(columns["expected_purchases_90d"].sum()),
            "mean_expected_spend": _mean(columns["expected_spend"]),
            "clv_12m": float(np.nansum(columns["clv_12m"])),
        },
    )
    return trained, report


def _mean(values: pd.Series) -> float | None:
    clean = values.dropna()
    return float(clean.mean()) if len(clean) else None
