"""Experiment config, deterministic assignment, templates per variant and the audience warning."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.config import load_config
from campaigns.config.schema import ExperimentConfig
from campaigns.errors import ConfigError
from campaigns.experiments import (
    HOLDOUT,
    assign_variants,
    experiment_spec,
    experiment_warnings,
    template_for,
)
from campaigns.experiments.plan import plan_experiment
from campaigns.experiments.stats import sample_ratio_check

CONFIG = """\
[source]
type = "demo"
customers = 300

[channels.export]
type = "file"

[campaigns.winback]
segments = ["*"]
trigger = { type = "schedule", cron = "0 10 * * *" }
channel = "export"
template = "winback"

[campaigns.winback.experiment]
holdout = 0.1
attribution_window = "7d"
minimum_detectable_effect = 0.02
baseline_rate = 0.05

[campaigns.winback.experiment.variants.control]
template = "winback"

[campaigns.winback.experiment.variants.discount]
template = "winback_discount"
weight = 2
parameters = { discount = 15 }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


SPEC = experiment_spec(
    "winback",
    ExperimentConfig.model_validate(
        {
            "holdout": 0.1,
            "variants": {
                "control": {"template": "winback"},
                "discount": {"template": "winback_discount", "weight": 2},
            },
        }
    ),
)


def test_an_experiment_loads_into_a_spec(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, CONFIG))
    campaign = config.campaigns["winback"]
    assert campaign.experiment is not None
    spec = experiment_spec("winback", campaign.experiment)
    assert spec.name == spec.salt == "winback"
    assert spec.arms == ("control", "discount", "holdout")
    assert spec.shares == pytest.approx({"control": 0.3, "discount": 0.6, "holdout": 0.1})
    assert spec.window.days == 7
    assert spec.parameters["discount"] == {"discount": 15}
    assert template_for(campaign, "discount") == "winback_discount"
    assert template_for(campaign, "control") == "winback"
    assert template_for(campaign, HOLDOUT) == "winback"
    assert template_for(campaign, None) == "winback"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'template = "winback_discount"',
            'template = "winback_discount"\n[campaigns.winback.experiment.variants.holdout]\n'
            'template = "x"',
            "config.toml:14: campaigns.winback.experiment: 'holdout' is reserved for the "
            "held-out arm; rename that variant",
        ),
        (
            "variants.control]",
            "variants.base]",
            "config.toml:14: campaigns.winback.experiment: control 'control' is not one of the "
            "variants ('base', 'discount'); name a variant 'control' or set control = 'NAME'",
        ),
        (
            'attribution_window = "7d"',
            'attribution_window = "a week"',
            "config.toml:16: campaigns.winback.experiment.attribution_window: must be a positive "
            "number of days or hours such as '14d' or '48h', got 'a week'",
        ),
        (
            "holdout = 0.1",
            "holdout = 1.0",
            "config.toml:15: campaigns.winback.experiment.holdout: must be less than 1, got 1.0",
        ),
    ],
)
def test_experiment_mistakes_name_line_and_key(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    path = write(tmp_path, CONFIG.replace(old, new))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path.parent}/{message}"


customer_ids = st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=50, unique=True)


@given(customer_ids)
def test_assignment_is_stable_whatever_the_order_or_company(ids: list[str]) -> None:
    alone = assign_variants(SPEC, ids)
    again = assign_variants(SPEC, list(reversed(ids)))
    assert list(alone) == list(reversed(list(again)))
    # Each customer's arm depends on nothing but the salt and the customer id.
    for customer, arm in zip(ids, alone, strict=True):
        assert assign_variants(SPEC, [customer]).iloc[0] == arm
    assert set(alone) <= {"control", "discount", HOLDOUT}


@given(st.text(min_size=1, max_size=20))
@settings(max_examples=20, deadline=None)
def test_assignment_matches_the_configured_shares(salt: str) -> None:
    from dataclasses import replace

    spec = replace(SPEC, salt=salt)
    arms = assign_variants(spec, [f"C{i:06d}" for i in range(6000)]).value_counts()
    observed = [int(arms.get(a, 0)) for a in spec.arms]
    check = sample_ratio_check(observed, [spec.shares[a] for a in spec.arms])
    # A correct split fails this only one time in 10^6 (the check flags p < 0.001;
    # hypothesis tries 20 salts): a biased hash fails it at once.
    assert check.p_value is not None
    assert check.p_value > 1e-6


def test_a_series_keeps_its_index_and_a_new_salt_reshuffles() -> None:
    from dataclasses import replace

    ids = pd.Series(["C1", "C2", "C3", "C4"], index=[10, 11, 12, 13])
    arms = assign_variants(SPEC, ids)
    assert list(arms.index) == [10, 11, 12, 13]
    assert arms.name == "variant"
    many = [f"C{i}" for i in range(2000)]
    first = assign_variants(SPEC, many)
    second = assign_variants(replace(SPEC, salt="winback-2"), many)
    assert 0.3 < (first != second).mean() < 0.7


def test_experiment_warnings_say_when_the_audience_is_too_small(tmp_path: Path) -> None:
    # NormalIndPower().solve_power(proportion_effectsize(0.07, 0.05), power=0.8, ratio=2)
    #   = 1648.8686877432074 in control, twice that in the variant
    config = load_config(write(tmp_path, CONFIG))
    assert experiment_warnings(config, {"winback": 100_000}) == []
    assert experiment_warnings(config, {"winback": 1_271}) == [
        "campaigns.winback.experiment: an audience of 1,271 gives 381 customers to 'control' "
        "and 762 to 'discount', but detecting a lift of 2.0 points over a 5.0% baseline "
        "(alpha 0.05, power 80%) needs 1,649 and 3,298; the smallest detectable lift is "
        "4.5 points"
    ]
    assert experiment_warnings(config, {}) == []


def test_plan_gives_sizes_per_variant_and_in_total() -> None:
    plan = plan_experiment(SPEC, audience=20_000, effect=0.01)
    # sample_size(0.05, 0.01, ratio=2): 6107 control, 12214 discount (statsmodels, see stats)
    assert (plan.needed["discount"].control, plan.needed["discount"].variant) == (6107, 12214)
    assert plan.total_needed() == 20357  # 12214 / 0.6
    # 6,000 control and 12,000 discount: the same effective size as 8,000 each
    assert plan.detectable["discount"].effect == pytest.approx(0.010092567104734752)
