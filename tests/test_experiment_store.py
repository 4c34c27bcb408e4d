"""Exposures, tracking imports and attribution in the store (SQLite and PostgreSQL), and the
demo shop's known true effect recovered end to end."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, text

from campaigns.config.schema import CampaignConfig, ExperimentConfig
from campaigns.errors import DataError
from campaigns.experiments import (
    HOLDOUT,
    aggregate,
    analyse,
    assign_variants,
    campaign_arms,
    experiment_spec,
    exposures_frame,
    import_events,
    promote,
    promoted_variant,
    record_campaign_exposures,
    record_exposures,
    variant_context,
)
from campaigns.experiments.exposures import pre_period_spend
from campaigns.experiments.sending import trial_renders
from campaigns.experiments.spec import imported_spec
from store.bulk import insert_frame
from store.sources.demo import generate_demo_shop, simulate_conversions, true_probability

T0 = datetime(2026, 11, 1, 9, 0)


def _exposures(rows: list[tuple[str, str, datetime]], experiment: str = "exp") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "experiment": experiment,
            "variant": [r[0] for r in rows],
            "customer_id": [r[1] for r in rows],
            "exposed_at": [r[2] for r in rows],
        }
    )


def _conversions(rows: list[tuple[str, datetime, float]], kind: str = "conversion") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "converted_at": [r[1] for r in rows],
            "value": [r[2] for r in rows],
            "source": "tracking",
            "kind": kind,
        }
    )


def test_the_first_exposure_of_a_customer_counts(fresh_store: Engine) -> None:
    first = _exposures([("a", "C1", T0), ("b", "C2", T0), ("a", "C1", T0 - timedelta(hours=1))])
    assert record_exposures(fresh_store, first) == 2
    again = _exposures([("a", "C1", T0 + timedelta(days=1)), ("a", "C3", T0)])
    assert record_exposures(fresh_store, again) == 1
    assert record_exposures(fresh_store, again.iloc[:0]) == 0
    data = aggregate(fresh_store, imported_spec("exp", ["a", "b"], "a"))
    assert {v: a.exposures for v, a in data.arms.items()} == {"a": 2, "b": 1}
    # The exposure_count rollup follows deletes too (its triggers).
    with fresh_store.begin() as connection:
        connection.execute(text("DELETE FROM exposure WHERE customer_id = 'C3'"))
    data = aggregate(fresh_store, imported_spec("exp", ["a", "b"], "a"))
    assert {v: a.exposures for v, a in data.arms.items()} == {"a": 1, "b": 1}


def test_attribution_counts_the_first_conversion_and_sums_values(fresh_store: Engine) -> None:
    record_exposures(
        fresh_store,
        _exposures([("a", "C1", T0), ("a", "C2", T0), ("b", "C3", T0), ("b", "C4", T0)]),
    )
    day = timedelta(days=1)
    insert_frame(
        fresh_store,
        "conversion",
        _conversions(
            [
                ("C1", T0, 10.0),  # at the exposure: counts
                ("C1", T0 + 3 * day, 5.0),  # a second one: revenue only
                ("C2", T0 - day, 99.0),  # before the exposure: no
                ("C3", T0 + 13 * day, 7.0),  # inside the 14-day window
                ("C4", T0 + 14 * day, 50.0),  # the window's end is exclusive
                ("C9", T0 + day, 1.0),  # never exposed
            ]
        ),
    )
    insert_frame(fresh_store, "conversion", _conversions([("C2", T0 + day, 0.0)], kind="click"))
    spec = imported_spec("exp", ["a", "b"], "a")
    data = aggregate(fresh_store, spec)
    a, b = data.arms["a"], data.arms["b"]
    assert (a.exposures, a.conversions, a.clicks) == (2, 1, 1)
    assert (a.revenue.total, a.revenue.total_sq) == (15.0, 225.0)
    assert (b.exposures, b.conversions, b.clicks, b.revenue.total) == (2, 1, 0, 7.0)
    # A longer window takes C4's conversion in.
    wider = aggregate(fresh_store, replace(spec, window=timedelta(days=15)))
    assert wider.arms["b"].conversions == 2
    assert [(d.day.isoformat(), d.variant, d.exposures, d.conversions) for d in data.daily] == [
        ("2026-11-01", "a", 2, 1),
        ("2026-11-01", "b", 2, 1),
    ]


def test_attribution_from_transactions_with_the_pre_period_covariate(fresh_store: Engine) -> None:
    lines = pd.DataFrame(
        {
            "invoice": ["I1", "I1", "I2", "I3", "I4"],
            "customer_id": ["C1", "C1", "C1", "C2", "C3"],
            "product_id": "P1",
            "quantity": [1, 2, 1, 1, 1],
            "unit_price": [10.0, 5.0, 8.0, 4.0, 6.0],
            "invoiced_at": [
                T0 + timedelta(days=2),  # I1: 20.00 after exposure, one conversion
                T0 + timedelta(days=2),
                T0 - timedelta(days=10),  # I2: 8.00 spent before exposure (covariate)
                T0 + timedelta(days=30),  # I3: outside the window
                T0 - timedelta(days=200),  # I4: before the 90-day pre-period
            ],
        }
    )
    insert_frame(fresh_store, "transaction_line", lines)
    # The covariate is fixed when the exposure is recorded, from the 90 days before it.
    exposures = _exposures([("a", "C1", T0), ("b", "C2", T0), ("b", "C3", T0)])
    record_exposures(fresh_store, exposures, covariate_days=90)
    spec = replace(imported_spec("exp", ["a", "b"], "a"), conversions="transactions")
    data = aggregate(fresh_store, spec)
    a, b = data.arms["a"], data.arms["b"]
    assert (a.conversions, a.revenue.total, b.conversions) == (1, 20.0, 0)
    assert a.cuped_conversion is not None
    assert (a.cuped_conversion.sum_x, a.cuped_conversion.sum_xy) == (8.0, 8.0)
    assert a.cuped_revenue is not None
    assert a.cuped_revenue.sum_xy == 160.0
    assert b.cuped_conversion is not None
    assert b.cuped_conversion.sum_x == 0.0
    assert pre_period_spend(fresh_store, exposures, 0).tolist() == [0.0, 0.0, 0.0]
    assert pre_period_spend(fresh_store, exposures, 300).tolist() == [8.0, 0.0, 6.0]


def test_an_experiment_without_exposures_is_empty(fresh_store: Engine) -> None:
    data = aggregate(fresh_store, imported_spec("none", ["control", "b"]))
    assert data.arms == {}
    assert analyse(data, imported_spec("none", ["control", "b"])).verdict == (
        "No exposures yet: nothing to judge."
    )


def test_promotion_is_recorded_and_reversible(fresh_store: Engine) -> None:
    assert promoted_variant(fresh_store, "exp") is None
    promote(fresh_store, "exp", "b", T0)
    assert promoted_variant(fresh_store, "exp") == "b"
    promote(fresh_store, "exp", None, T0 + timedelta(days=1))
    assert promoted_variant(fresh_store, "exp") is None


# ---------------------------------------------------------------------------------- imports


def test_import_conversions_reports_bad_rows_with_line_numbers(
    fresh_store: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "conversions.csv"
    path.write_text(
        "customer_id,timestamp,value,message_id\n"
        "C1,2026-11-02T10:00:00,12.50,\n"
        ",2026-11-02T10:00:00,1,\n"
        "C2,yesterday,1,\n"
        "C3,2026-11-02T10:00:00+01:00,lots,\n"
        "C4,2026-11-02,3,x\n"
        "C5,2026-11-03 08:00,,7\n"
        "C6,2026-11-03\n",
        encoding="utf-8",
    )
    known = [("control", f"C{i}", T0) for i in range(1, 7)]
    record_exposures(fresh_store, _exposures(known))
    result = import_events(fresh_store, path, "conversions")
    assert result.imported == 2
    assert [str(b) for b in result.bad] == [
        "line 3: missing_customer_id: no customer_id",
        "line 4: bad_timestamp: 'yesterday' is not an ISO 8601 time",
        "line 5: bad_value: 'lots' is not a number",
        "line 6: bad_message_id: 'x' is not a message number",
        "line 8: wrong_field_count: 2 fields, the header has 4",
    ]


def test_import_clicks_from_json_lines(fresh_store: Engine, tmp_path: Path) -> None:
    path = tmp_path / "clicks.jsonl"
    path.write_text(
        '{"customer_id": "C1", "timestamp": "2026-11-01T10:00:00Z", "message_id": 4}\n'
        "\n"
        "not json\n"
        "[1, 2]\n"
        '{"customer_id": "C2"}\n',
        encoding="utf-8",
    )
    record_exposures(fresh_store, _exposures([("control", "C1", T0), ("b", "C2", T0)]))
    result = import_events(fresh_store, path, "clicks")
    assert result.imported == 1
    assert [str(b) for b in result.bad] == [
        "line 3: bad_json: Expecting value",
        "line 4: bad_json: not an object",
        "line 5: missing_timestamp: no timestamp",
    ]
    data = aggregate(fresh_store, imported_spec("exp", ["control", "b"]))
    assert data.arms["control"].clicks == 1


def test_events_of_unknown_and_unreachable_customers_are_refused(
    fresh_store: Engine, tmp_path: Path
) -> None:
    # C1 got a message (control), H1 and H2 were held out and sent nothing; X9 is nobody.
    record_exposures(
        fresh_store,
        _exposures([("control", "C1", T0), (HOLDOUT, "H1", T0), (HOLDOUT, "H2", T0)]),
    )
    rows = "customer_id,timestamp\nC1,2026-11-02\nX9,2026-11-02\nH1,2026-11-02\nH2,2026-11-03\n"
    path = tmp_path / "events.csv"
    path.write_text(rows, encoding="utf-8")
    clicks = import_events(fresh_store, path, "clicks")
    assert clicks.imported == 1
    assert [str(b) for b in clicks.bad] == [
        "line 3: unknown_customer: customer X9 is neither in the customer table nor exposed in "
        "an experiment",
        "line 4: held_out_customer: customer H1 is in a holdout and was sent no message, so the "
        "click cannot be real",
        "line 5: held_out_customer: customer H2 is in a holdout and was sent no message, so the "
        "click cannot be real",
    ]
    unsubscribes = import_events(fresh_store, path, "unsubscribes")
    assert unsubscribes.imported == 1
    assert [b.reason for b in unsubscribes.bad] == [
        "unknown_customer",
        "held_out_customer",
        "held_out_customer",
    ]
    # What a holdout measures: its conversions are kept.
    conversions = import_events(fresh_store, path, "conversions")
    assert conversions.imported == 3
    assert [b.reason for b in conversions.bad] == ["unknown_customer"]
    kinds = pd.read_sql_query(
        "SELECT kind, COUNT(*) AS n FROM conversion GROUP BY kind", fresh_store
    )
    assert dict(zip(kinds["kind"], kinds["n"], strict=True)) == {
        "click": 1,
        "conversion": 3,
        "unsubscribe": 1,
    }


def test_import_exposures_refuses_a_second_arm_and_counts_repeats(
    fresh_store: Engine, tmp_path: Path
) -> None:
    record_exposures(fresh_store, _exposures([("control", "C1", T0)], experiment="ext"))
    path = tmp_path / "exposures.csv"
    path.write_text(
        "experiment,variant,customer_id,timestamp\n"
        "ext,control,C1,2026-11-05T00:00:00\n"
        "ext,b,C1,2026-11-05T00:00:00\n"
        "ext,b,C2,2026-11-05T00:00:00\n"
        "ext,control,C2,2026-11-06T00:00:00\n"
        "ext,,C3,2026-11-06T00:00:00\n",
        encoding="utf-8",
    )
    result = import_events(fresh_store, path, "exposures")
    assert (result.imported, result.repeats) == (1, 1)
    assert [str(b) for b in result.bad] == [
        "line 3: conflicting_variant: customer C1 is already in 'ext' arm 'control'",
        "line 5: conflicting_variant: customer C2 is already in 'ext' arm 'b'",
        "line 6: missing_variant: no variant",
    ]


def test_import_errors_are_one_clear_message(fresh_store: Engine, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"^tracking file .*nope.csv not found$"):
        import_events(fresh_store, tmp_path / "nope.csv", "clicks")
    path = tmp_path / "x.csv"
    path.write_text("who,when\nC1,2026-11-01\n", encoding="utf-8")
    with pytest.raises(DataError) as caught:
        import_events(fresh_store, path, "conversions")
    assert str(caught.value) == (
        f"tracking file {path} has no column 'customer_id'; its columns are: 'who', 'when'"
    )


# -------------------------------------------------------------------- the demo's true effect


@pytest.fixture(scope="module")
def demo_customers() -> pd.DataFrame:
    shop = generate_demo_shop(36_000, seed=5, end=datetime(2026, 10, 31))
    return shop.customers[["customer_id", "latent_group"]]


def test_the_demo_shops_true_effect_is_recovered(
    fresh_store: Engine, demo_customers: pd.DataFrame
) -> None:
    config = ExperimentConfig.model_validate(
        {
            "holdout": 0.1,
            "conversions": "tracked",
            "variants": {
                "control": {"template": "winback"},
                "discount": {"template": "winback_discount"},
                "story": {"template": "winback_story"},
            },
        }
    )
    spec = experiment_spec("winback", config)
    rng = np.random.default_rng(2026)
    arms = assign_variants(spec, demo_customers["customer_id"])
    exposed_at = T0 + pd.to_timedelta(rng.integers(0, 7 * 86_400, len(arms)), unit="s")
    record_exposures(
        fresh_store,
        pd.DataFrame(
            {
                "experiment": "winback",
                "variant": arms,
                "customer_id": demo_customers["customer_id"],
                "exposed_at": exposed_at,
            }
        ),
    )
    converted = np.zeros(len(arms), dtype=bool)
    for arm in spec.arms:
        rows = (arms == arm).to_numpy()
        variant = None if arm == HOLDOUT else arm
        converted[rows] = simulate_conversions(demo_customers[rows], variant, rng)
    delay = pd.to_timedelta(rng.integers(0, 14 * 86_400, int(converted.sum())), unit="s")
    events = _conversions(
        list(
            zip(
                demo_customers["customer_id"][converted],
                exposed_at[converted] + delay,
                rng.gamma(2.0, 15.0, int(converted.sum())),
                strict=True,
            )
        )
    )
    insert_frame(fresh_store, "conversion", events)

    analysis = analyse(aggregate(fresh_store, spec), spec)
    assert not analysis.srm.mismatch
    for arm in ("discount", "story", HOLDOUT):
        group = demo_customers["latent_group"][(arms == arm).to_numpy()]
        variant = None if arm == HOLDOUT else arm
        truth = float(
            np.mean([true_probability(g, variant) - true_probability(g, "control") for g in group])
        )
        primary = analysis.arm(arm).primary
        assert primary is not None
        assert primary.abs_lift_ci is not None
        assert primary.abs_lift_ci.contains(truth), (arm, truth, primary.abs_lift_ci)
    # The discount's true lift is about 2.6 points: found (by the always-valid test), shipped.
    assert analysis.verdict.startswith("discount raises conversion by ")
    assert "discount raises conversion by" in analysis.verdict
    assert ": ship it." in analysis.verdict
    assert analysis.recommended == "discount"
    assert analysis.arm("discount").prob_beat_control == pytest.approx(1.0, abs=1e-6)


# ------------------------------------------------------------------------ the run's interface


def _campaign() -> CampaignConfig:
    return CampaignConfig.model_validate(
        {
            "segments": ["*"],
            "trigger": {"type": "schedule", "cron": "0 10 * * *"},
            "channel": "export",
            "template": "winback",
            "experiment": {
                "holdout": 0.2,
                "variants": {
                    "control": {"template": "winback"},
                    "discount": {"template": "winback_discount", "parameters": {"discount": 15}},
                },
            },
        }
    )


def test_a_run_gets_arms_contexts_and_exposures(fresh_store: Engine) -> None:
    campaign = _campaign()
    ids = pd.Series([f"C{i}" for i in range(200)], index=range(100, 300))
    arms = campaign_arms(fresh_store, "winback", campaign, ids)
    assert arms is not None
    assert arms.experiment == "winback"
    assert list(arms.arms.index) == list(ids.index)
    assert set(arms.arms) == {"control", "discount", HOLDOUT}
    assert (~arms.messaged).sum() == (arms.arms == HOLDOUT).sum()
    assert variant_context(campaign, "discount") == {"name": "discount", "discount": 15}
    assert variant_context(campaign, None) is None
    assert trial_renders(campaign) == [
        ("winback", {"name": "control"}),
        ("winback_discount", {"name": "discount", "discount": 15}),
    ]
    assert trial_renders(campaign.model_copy(update={"experiment": None})) == [("winback", None)]
    frame = exposures_frame(arms, ids, T0)
    assert record_exposures(fresh_store, frame) == 200
    assert record_campaign_exposures(fresh_store, arms, ids, T0) == 0  # first exposures count
    # The holdout is exposed too: every arm is measured.
    data = aggregate(fresh_store, experiment_spec("winback", campaign.experiment))  # type: ignore[arg-type]
    assert sum(a.exposures for a in data.arms.values()) == 200
    assert data.arms[HOLDOUT].exposures == (arms.arms == HOLDOUT).sum()

    promote(fresh_store, "winback", "discount", T0)
    promoted = campaign_arms(fresh_store, "winback", campaign, ids)
    assert promoted is not None
    assert set(promoted.arms) == {"discount"}
    assert exposures_frame(promoted, ids, T0).empty
    plain = campaign.model_copy(update={"experiment": None})
    assert campaign_arms(fresh_store, "winback", plain, ids) is None
