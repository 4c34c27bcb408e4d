"""Lifetime value: BG/NBD, Gamma-Gamma and BG/BB reproduce the published estimates on the real
CDNOW and donations data, and Hardie's spreadsheet figures; standard errors equal those of
statsmodels' numerical Hessian."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from campaigns.personalization.clv import bgbb, bgnbd, gamma_gamma
from campaigns.personalization.clv.model import train_clv
from campaigns.personalization.clv.summary import rfm_summary

pytestmark = pytest.mark.shared_data


def cdnow_sample(shared_data: Path) -> pd.DataFrame:
    """The 1/10 sample as transaction lines (one line per record; ids from the sample column)."""
    raw = pd.read_csv(
        shared_data / "cdnow" / "CDNOW_sample.txt",
        sep=r"\s+",
        header=None,
        dtype=str,
        names=["master_id", "customer_id", "date", "cds", "dollars"],
    )
    return pd.DataFrame(
        {
            "invoice": raw["customer_id"] + raw["date"],
            "customer_id": raw["customer_id"],
            "product_id": "cd",
            "quantity": 1,
            "unit_price": raw["dollars"].astype(float),
            "invoiced_at": pd.to_datetime(raw["date"], format="%Y%m%d"),
        }
    )


#: The end of the 39-week calibration period (T = 38.86 weeks for a first purchase on 1 January).
CALIBRATION_END = datetime(1997, 9, 30)


@pytest.fixture
def cdnow(shared_data: Path) -> pd.DataFrame:
    return rfm_summary(cdnow_sample(shared_data), CALIBRATION_END)


def arrays(summary: pd.DataFrame, *columns: str) -> list[np.ndarray]:
    return [summary[c].to_numpy(dtype=float) for c in columns]


def test_our_summary_of_the_raw_log_is_the_shipped_one(
    cdnow: pd.DataFrame, shared_data: Path
) -> None:
    shipped = pd.read_csv(shared_data / "cdnow" / "cdnow_customers_summary_with_transactions.csv")
    assert len(cdnow) == len(shipped) == 2_357
    ours = cdnow.reset_index(drop=True)  # both in customer order
    np.testing.assert_array_equal(ours["x"], shipped["x"])
    # The shipped file rounds weeks and dollars to two decimals.
    np.testing.assert_allclose(ours["t_x"], shipped["t_x"], atol=0.005)
    np.testing.assert_allclose(ours["T"], shipped["T"], atol=0.005)
    np.testing.assert_allclose(ours["zbar"].fillna(0), shipped["zbar"], atol=0.005)


def test_bgnbd_reproduces_fader_hardie_lee_2005(cdnow: pd.DataFrame) -> None:
    fit = bgnbd.fit(*arrays(cdnow, "x", "t_x", "T"))
    # Fader, Hardie & Lee (2005), "Counting your customers the easy way", section 5:
    # r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL = -9582.4.
    assert [round(v, 3) for v in fit.values] == [0.243, 4.414, 0.793, 2.426]
    assert round(fit.log_likelihood, 1) == -9582.4
    assert fit.customers == 2_357
    assert fit.converged


def test_bgnbd_standard_errors_are_statsmodels_inverse_hessian(cdnow: pd.DataFrame) -> None:
    from statsmodels.tools.numdiff import approx_hess3

    x, t_x, T = arrays(cdnow, "x", "t_x", "T")
    fit = bgnbd.fit(x, t_x, T)
    hessian = approx_hess3(np.array(fit.values), lambda p: -bgnbd.log_likelihood(p, x, t_x, T))
    reference = np.sqrt(np.diag(np.linalg.inv(hessian)))
    np.testing.assert_allclose(fit.standard_errors, reference, rtol=1e-3)


def test_bgnbd_predictions_match_hardies_spreadsheet(cdnow: pd.DataFrame) -> None:
    fit = bgnbd.fit(*arrays(cdnow, "x", "t_x", "T"))
    # Hardie's BG/NBD spreadsheet (brucehardie.com note 004): customer 1 (x = 2, t_x = 30.43,
    # T = 38.86) is expected to buy 1.226 times in the next 39 weeks...
    one = bgnbd.conditional_expected_purchases(
        fit, 39, np.array([2.0]), np.array([30.43]), np.array([38.86])
    )
    assert one[0] == pytest.approx(1.226, abs=0.001)
    # ...and a new customer E[X(t)] times as many in the first t weeks.
    expected = bgnbd.expected_purchases(fit, np.array([0.1429, 1.0, 3.0, 31.8571, 32.0, 78.0]))
    np.testing.assert_allclose(
        expected, [0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576], atol=0.002
    )
    alive = bgnbd.p_alive(fit, *arrays(cdnow, "x", "t_x", "T"))
    assert ((alive > 0) & (alive <= 1)).all()
    assert (alive[cdnow["x"].to_numpy() == 0] == 1).all()  # the model's assumption


def test_gamma_gamma_reproduces_fader_hardie_lee_2005(cdnow: pd.DataFrame) -> None:
    repeat = cdnow[cdnow["x"] > 0]
    fit = gamma_gamma.fit(*arrays(repeat, "x", "zbar"))
    # Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves", and Fader & Hardie's
    # note 025: p = 6.25, q = 3.74, gamma = 15.44 from the 946 repeat customers.
    assert fit.customers == 946
    assert [round(v, 2) for v in fit.values] == [6.25, 3.74, 15.44]
    # Note 025's spreadsheet: the expected average spend of the first ten customers.
    first = cdnow.iloc[:10]
    spend = gamma_gamma.expected_spend(fit, *arrays(first, "x", "zbar"))
    np.testing.assert_allclose(
        spend, [24.65, 18.91, 35.17, 35.17, 35.17, 71.46, 18.91, 35.17, 27.28, 35.17], atol=0.02
    )


@pytest.fixture
def donations(shared_data: Path) -> list[np.ndarray]:
    data = pd.read_csv(shared_data / "lifetimes_donations" / "donations.csv")
    return arrays(data, "frequency", "recency", "periods", "weights")


def test_bgbb_reproduces_fader_hardie_shang_2010(donations: list[np.ndarray]) -> None:
    x, t_x, n, weights = donations
    fit = bgbb.fit(x, t_x, n, weights)
    # Fader, Hardie & Shang (2010), Table 2: alpha = 1.204, beta = 0.750, gamma = 0.657,
    # delta = 2.783, LL = -33,225.6.
    assert [round(v, 3) for v in fit.values] == [1.204, 0.750, 0.657, 2.783]
    assert round(fit.log_likelihood, 1) == -33_225.6
    assert fit.customers == 11_104
    # Hardie's BG/BB spreadsheet (note 010): 3,454.9 donors expected with no repeat donation in
    # the six years and 1,253.1 with one every year...
    assert bgbb.probability_of_transactions(fit, 0, 6) * 11_104 == pytest.approx(3_454.9, abs=0.1)
    assert bgbb.probability_of_transactions(fit, 6, 6) * 11_104 == pytest.approx(1_253.1, abs=0.1)
    # ...and 12,884.2 donations in the next five years ("Conditional Expectations (II)").
    future = bgbb.conditional_expected_transactions(fit, 5, x, t_x, n)
    assert float(future @ weights) == pytest.approx(12_884.2, abs=0.1)
    # Table 6, P(alive in 2002): 0.11 for (x = 0, t_x = 0), 0.59 for (2, 4), 0.93 for (6, 6).
    alive = dict(zip(zip(x, t_x, strict=True), bgbb.p_alive(fit, x, t_x, n), strict=True))
    assert [round(alive[k], 2) for k in ((0, 0), (2, 4), (6, 6))] == [0.11, 0.59, 0.93]


def test_train_clv_on_cdnow_checks_the_holdout(shared_data: Path) -> None:
    transactions = cdnow_sample(shared_data)
    at = datetime(1998, 6, 30)
    model, report = train_clv(transactions, at, holdout_days=273)
    calibration = report["calibration"]
    assert calibration["end"] == "1997-09-30T00:00:00"
    values = [p["value"] for p in calibration["purchases"]["parameters"]]
    assert [round(v, 3) for v in values] == [0.243, 4.414, 0.793, 2.426]
    holdout = report["holdout"]
    # The actual holdout purchases, by a plain pandas count of purchase days after week 39.
    days = transactions.drop_duplicates(["customer_id", "invoiced_at"])
    assert holdout["actual_total"] == (days["invoiced_at"] > CALIBRATION_END).sum()
    assert holdout["customers"] == 2_357
    rows = {row["frequency"]: row for row in holdout["by_frequency"]}
    assert rows["0"]["customers"] == (rfm_summary(transactions, CALIBRATION_END)["x"] == 0).sum()
    # Fader, Hardie & Lee (2005), section 5: the 1,411 customers without a repeat purchase in
    # the calibration period made 334 in the holdout (0.24 each); BG/NBD predicts 0.23.
    assert rows["0"]["customers"] == 1_411
    assert rows["0"]["actual"] * 1_411 == 334
    assert round(rows["0"]["predicted"], 2) == 0.23
    # Frequent buyers buy more than predicted (as in the paper's Figure 4): 1,653 of 1,882.
    assert round(holdout["predicted_total"]) == 1_653
    assert holdout["actual_total"] == 1_882
    independence = calibration["independence"]
    assert independence["customers"] == 946
    assert abs(independence["correlation"]) < 0.3  # Fader, Hardie & Lee: about 0.11
    columns = model.columns(transactions, at)
    assert list(columns.columns) == [
        "p_alive",
        "expected_purchases_90d",
        "expected_spend",
        "clv_12m",
    ]
    assert len(columns) == 2_357
    assert columns["clv_12m"].ge(0).all()
    assert columns["p_alive"].between(0, 1).all()
