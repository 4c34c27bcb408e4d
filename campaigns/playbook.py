"""``campaign segment suggest``: a first campaign per segment, as a TOML draft ready to paste.

Each segment of the current model gets one *play*, chosen from where its median customer sits
among all customers (the positions the names are read from) and, when a lifetime-value model is
stored, from its customers' P(alive) and expected spend:

- ``loyalty``: high or top spend, recent; a weekly thank-you, at most once in 28 days, testing
  early access against a plain note;
- ``winback``: mid spend or more, lapsed; on ``inactive`` after the population's median recency,
  testing a 15 % discount against a plain note (with a lifetime-value model, only customers whose
  P(alive) times expected spend exceeds the discount's cost);
- ``reactivation``: low spend, lapsed; on ``inactive`` after the same median recency, at most
  once in 180 days, testing a 10 % discount;
- ``onboarding``: recent, short tenure (below the 33rd percentile); a weekly welcome for
  customers of at most 30 days, testing a 10 % welcome offer;
- ``cross_sell``: the other recent segments; a monthly suggestion, testing a 10 % discount;
- ``spotlight``: segments named by traits (no transaction features); a monthly message to the
  customers whose most distinctive column is on the segment's side of the median.

Every draft has an experiment: two variants and a holdout sized with the logic of ``campaign
experiment plan``: the smallest of 5 %, 10 %, …, 30 % at which the holdout and the control
variant reach the sample size needed to detect the draft's effect (half the baseline rate,
at least one point) over its baseline rate (the segment's chance of buying within 14 days
anyway, from each customer's purchase rate), or 10 % with the smallest detectable lift stated
when no share reaches it. Template stubs are written into the workspace's templates folder
(never over an existing file), so that the drafts pass ``campaign check`` as written.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from campaigns.config.schema import CampaignConfig, Config
from campaigns.errors import ConfigError, StoreError
from campaigns.experiments.power import detectable_effect, sample_size
from campaigns.planner import NOT_SEGMENTED

#: Holdout shares tried, smallest first.
HOLDOUT_SHARES = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
#: The share used (and its detectable lift stated) when none of them is enough.
FALLBACK_HOLDOUT = 0.1
#: Days after exposure a purchase counts as a conversion (the experiments' default).
WINDOW_DAYS = 14

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Draft:
    """One suggested campaign."""

    name: str
    segment_id: int
    segment: str
    play: str
    reasoning: str
    toml: str
    baseline_rate: float
    minimum_detectable_effect: float
    holdout: float
    #: Template file name to its stub text.
    templates: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Suggestions:
    """The drafts, the model they are for, and the template stubs written."""

    model_version: int
    at: datetime
    drafts: list[Draft]
    written: list[Path]

    @property
    def toml(self) -> str:
        """Every draft, one after another, ready to append to ``config.toml``."""
        return "\n".join(d.toml for d in self.drafts)


def suggest_campaigns(config: Config, at: datetime | None = None) -> Suggestions:
    """Drafts for the current model's segments, from the customers at ``at`` (default: when the
    model was fitted); writes the missing template stubs.

    :raises StoreError: when no model has been fitted yet
    """
    from campaigns.data import ensure_data
    from campaigns.personalization.clv.commands import with_lifetime_value
    from campaigns.segments import assign, latest_model, load_model, segment_features
    from store.engine import opened_store

    with opened_store(config.store.url, config.root) as engine:
        stored = latest_model(engine)
        if stored is None:
            raise StoreError(
                "no segmentation model in the store yet; run 'campaign segment fit' first"
            )
        model = load_model(stored, config.segmentation)
        when = at or stored.created_at
        shop, _ = ensure_data(engine, config, when)
        features = segment_features(shop, config.segmentation, when)
        ids = assign(model, features, config.segmentation)
        table = with_lifetime_value(engine, features, shop, when)
    table = table.assign(segment_id=ids)
    segmented = table[table["segment_id"] != NOT_SEGMENTED]
    channel = next(iter(config.channels))
    taken = set(config.campaigns)
    drafts = []
    for profile in model.profiles:
        members = segmented[segmented["segment_id"] == int(profile["segment_id"])]
        if members.empty:
            continue
        draft = _draft(profile, members, segmented, channel, taken)
        taken.add(draft.name)
        drafts.append(draft)
    written = _write_templates(config.path(config.templates), drafts)
    assert stored.version is not None
    return Suggestions(stored.version, when, drafts, written)


# --------------------------------------------------------------------------------- the plays


def _play(positions: dict[str, float]) -> str:
    if not {"monetary", "recency"} <= set(positions):
        return "spotlight"
    spend, recency = positions["monetary"], positions["recency"]
    recent = recency < 0.5
    if recent and spend >= 2 / 3:
        return "loyalty"
    if not recent:
        return "winback" if spend >= 1 / 3 else "reactivation"
    if positions.get("tenure", 0.5) < 1 / 3:
        return "onboarding"
    return "cross_sell"


def _draft(
    profile: dict[str, Any],
    members: pd.DataFrame,
    everyone: pd.DataFrame,
    channel: str,
    taken: set[str],
) -> Draft:
    segment_id = int(profile["segment_id"])
    segment = str(profile["name"])
    positions = dict(profile.get("positions") or {})
    play = _play(positions)
    name = f"{play.replace('_', '-')}-{segment_id}"
    while name in taken:
        name += "-suggested"
    baseline = _baseline(members)
    effect = max(0.01, round(baseline / 2, 3))
    holdout, sizing = _holdout(len(members), baseline, effect)
    slug = f"suggested_{play}_{segment_id}"
    median_recency = _median(everyone, "recency")
    lines: list[str] = []
    where: str | None = None
    target: str | None = None
    variants: dict[str, tuple[str, dict[str, int]]]
    clv = "p_alive" in members.columns and members["p_alive"].notna().any()
    size = f"{len(members):,} customers"
    spend_share = _share(members, everyone, "monetary")
    if play == "loyalty":
        trigger = '{ type = "schedule", cron = "0 9 * * MON", timezone = "UTC" }'
        caps = '[{ messages = 1, per = "28d" }]'
        where = "frequency >= 3"
        variants = {"control": (slug, {}), "early_access": (f"{slug}_early_access", {})}
        reason = (
            f'Segment {segment_id} "{segment}" ({size}{spend_share}) spends more than '
            f"{positions['monetary']:.0%} of customers and bought recently: thank its repeat "
            "buyers every four weeks and test whether early access keeps them buying more than "
            "a plain note."
        )
    elif play in ("winback", "reactivation"):
        days = _round_days(median_recency)
        trigger = f'{{ type = "inactive", days = {days} }}'
        caps = (
            '[{ messages = 1, per = "90d" }]'
            if play == "winback"
            else ('[{ messages = 1, per = "180d" }]')
        )
        discount = 15 if play == "winback" else 10
        where = "frequency >= 2" if play == "winback" else "frequency >= 1"
        variants = {"control": (slug, {}), "discount": (f"{slug}_discount", {"discount": discount})}
        typical = _median(members, "recency")
        if clv and play == "winback":
            cost = round(discount / 100 * _median(members, "expected_spend"), 2)
            target = f'{{ by = "p_alive", value = "expected_spend", cost = {cost} }}'
            extra = (
                f", and only where P(alive) times expected spend exceeds the discount's cost "
                f"({cost:,.2f})"
            )
        else:
            extra = ""
        level = "at least the median" if play == "winback" else "little"
        reason = (
            f'Segment {segment_id} "{segment}" ({size}{spend_share}) spends {level} but its '
            f"median customer last bought {typical:,.0f} days ago (all customers: "
            f"{median_recency:,.0f}): a {'winback' if play == 'winback' else 'low-cost reminder'}"
            f" when a customer passes {days} days without a purchase, testing {discount}% off "
            f"against a plain note{extra}."
        )
    elif play == "onboarding":
        trigger = '{ type = "schedule", cron = "0 10 * * WED", timezone = "UTC" }'
        caps = '[{ messages = 1, per = "365d" }]'
        where = "tenure <= 30"
        variants = {"control": (slug, {}), "welcome_offer": (f"{slug}_offer", {"discount": 10})}
        reason = (
            f'Segment {segment_id} "{segment}" ({size}{spend_share}) is recent and its median '
            f"customer is newer than {1 - positions.get('tenure', 0):.0%} of customers: welcome "
            "customers in their first 30 days once, testing a 10% offer on the second order "
            "against a plain welcome."
        )
    elif play == "cross_sell":
        trigger = '{ type = "schedule", cron = "0 10 * * THU", timezone = "UTC" }'
        caps = '[{ messages = 1, per = "28d" }]'
        where = "frequency >= 1"
        variants = {"control": (slug, {}), "discount": (f"{slug}_discount", {"discount": 10})}
        reason = (
            f'Segment {segment_id} "{segment}" ({size}{spend_share}) buys recently but its '
            f"median customer is outspent by {1 - positions['monetary']:.0%} of customers: a "
            "monthly suggestion of more to buy, testing 10% off against no offer."
        )
    else:
        column, value, high = _distinctive(positions, members, everyone)
        trigger = '{ type = "schedule", cron = "0 10 * * TUE", timezone = "UTC" }'
        caps = '[{ messages = 1, per = "28d" }]'
        if column is not None:
            where = f"{column} {'>=' if high else '<='} {value:g}"
        variants = {"control": (slug, {}), "offer": (f"{slug}_offer", {"discount": 10})}
        about = (
            f"{'more' if high else 'less'} {column} than most customers"
            if column is not None
            else "customers like no other segment"
        )
        reason = (
            f'Segment {segment_id} "{segment}" ({size}{spend_share}) holds {about}: a monthly '
            "message about what they buy most, testing a 10% offer against none."
        )
    lines.append(f"# {reason}")
    lines.append(f"# Holdout: {sizing}")
    lines.append(f"[campaigns.{name}]")
    lines.append(f'description = "Suggested {play.replace("_", " ")} for segment {segment_id}"')
    lines.append(f"segments = [{segment_id}]  # {segment}")
    lines.append(f"trigger = {trigger}")
    if where is not None:
        lines.append(f'where = "{where}"')
    lines.append(f'channel = "{channel}"')
    lines.append(f'template = "{slug}"')
    lines.append(f'subject = "{_subject(play)}"')
    lines.append(f"caps = {caps}")
    if target is not None:
        lines.append(f"target = {target}")
    lines.append("")
    lines.append(f"[campaigns.{name}.experiment]")
    lines.append(f"holdout = {holdout:g}")
    lines.append(f"baseline_rate = {baseline:g}")
    lines.append(f"minimum_detectable_effect = {effect:g}")
    for variant, (template, parameters) in variants.items():
        lines.append("")
        lines.append(f"[campaigns.{name}.experiment.variants.{variant}]")
        lines.append(f'template = "{template}"')
        if parameters:
            inner = ", ".join(f"{k} = {v}" for k, v in parameters.items())
            lines.append(f"parameters = {{ {inner} }}")
    toml = "\n".join(lines) + "\n"
    _validate(name, toml)
    stubs = {
        f"{template}.txt.j2": _stub(play, variant, parameters)
        for variant, (template, parameters) in variants.items()
    }
    return Draft(name, segment_id, segment, play, reason, toml, baseline, effect, holdout, stubs)


def _validate(name: str, toml: str) -> None:
    """A draft that the config schema would refuse is a bug here, not a user error."""
    try:
        CampaignConfig.model_validate(tomllib.loads(toml)["campaigns"][name])
    except (ValueError, tomllib.TOMLDecodeError) as exc:  # pragma: no cover - a bug guard
        raise ConfigError(f"suggested campaign {name} is not valid: {exc}") from None


def _baseline(members: pd.DataFrame) -> float:
    """The chance that a member buys within :data:`WINDOW_DAYS` anyway: from the lifetime-value
    model's expected purchases when there is one, else from each customer's purchases per day
    of tenure; between 0.5 % and 50 %."""
    if (
        "expected_purchases_90d" in members.columns
        and members["expected_purchases_90d"].notna().any()
    ):
        rate = members["expected_purchases_90d"].fillna(0).to_numpy(dtype=float) / 90
    else:
        tenure = members["tenure"].to_numpy(dtype=float)
        rate = members["frequency"].to_numpy(dtype=float) / np.maximum(tenure, 1.0)
    chance = float(np.mean(1 - np.exp(-WINDOW_DAYS * rate)))
    return round(min(max(chance, 0.005), 0.5), 3)


def _holdout(audience: int, baseline: float, effect: float) -> tuple[float, str]:
    """The holdout share and a sentence saying how it was sized."""
    for share in HOLDOUT_SHARES:
        held, control = share * audience, (1 - share) / 2 * audience
        needed = sample_size(baseline, effect, ratio=control / held)
        if needed.control is None or needed.variant is None:
            break
        if held >= needed.control and control >= needed.variant:
            return share, (
                f"{share:.0%} of {audience:,} customers ({math.floor(held):,}) against the "
                f"control's {math.floor(control):,} detects a lift of {_points(effect)} over a "
                f"{baseline:.1%} baseline (alpha 0.05, power 80%; campaign experiment plan)."
            )
    held = int(FALLBACK_HOLDOUT * audience)
    control = int((1 - FALLBACK_HOLDOUT) / 2 * audience)
    smallest = detectable_effect(baseline, held, control)
    detectable = (
        f"the smallest detectable lift is {smallest.effect * 100:.1f} points"
        if smallest.effect is not None
        else "no lift is detectable"
    )
    return FALLBACK_HOLDOUT, (
        f"{FALLBACK_HOLDOUT:.0%}: no share up to {HOLDOUT_SHARES[-1]:.0%} of {audience:,} "
        f"customers detects {_points(effect)} over a {baseline:.1%} baseline; with "
        f"{held:,} held out and {control:,} in control {detectable} (campaign experiment plan)."
    )


def _points(effect: float) -> str:
    points = round(effect * 100, 1)
    return f"{points:g} point" + ("" if points == 1 else "s")


def _median(frame: pd.DataFrame, column: str) -> float:
    if column not in frame.columns:
        return 0.0
    value = frame[column].median()
    return 0.0 if pd.isna(value) else float(value)


def _share(members: pd.DataFrame, everyone: pd.DataFrame, column: str) -> str:
    if column not in members.columns:
        return ""
    total = float(everyone[column].sum())
    return f", {float(members[column].sum()) / total:.0%} of revenue" if total > 0 else ""


def _round_days(days: float) -> int:
    return max(30, round(days / 10.0) * 10)


def _distinctive(
    positions: dict[str, float], members: pd.DataFrame, everyone: pd.DataFrame
) -> tuple[str | None, float, bool]:
    """The column whose median lies farthest from the middle, usable in a condition; its
    population median; whether the segment is on the high side."""
    usable = {
        c: p
        for c, p in positions.items()
        if _IDENTIFIER.match(c) and c in everyone.columns and abs(p - 0.5) > 0
    }
    if not usable:
        return None, 0.0, True
    column = max(sorted(usable), key=lambda c: abs(usable[c] - 0.5))
    return column, round(_median(everyone, column), 2), usable[column] > 0.5


def _subject(play: str) -> str:
    return {
        "loyalty": "Thank you, {{ customer.first_name | or_default('friend') }}",
        "winback": "We miss you, {{ customer.first_name | or_default('friend') }}",
        "reactivation": "It has been a while",
        "onboarding": "Welcome, {{ customer.first_name | or_default('friend') }}",
        "cross_sell": "Picked for you",
    }.get(play, "News for you")


_BODIES = {
    "loyalty": "Thank you for being one of our best customers.",
    "winback": "It has been {{ customer.recency | int }} days since your last order.",
    "reactivation": "It has been a while since your last order.",
    "onboarding": "Welcome, and thank you for your first order.",
    "cross_sell": "Here is something to go with your last order.",
    "spotlight": "We picked this month's news for you.",
}


def _stub(play: str, variant: str, parameters: dict[str, int]) -> str:
    """A template that renders for every customer; replace its text before sending."""
    offer = (
        "\nTake {{ variant.discount }}% off your next order.\n"
        if "discount" in parameters
        else "\nYou get early access to what is new this week.\n"
        if variant == "early_access"
        else ""
    )
    return (
        "{# A draft from campaign segment suggest: write the real message here. #}\n"
        "Hello {{ customer.first_name | or_default('there') }},\n\n"
        f"{_BODIES[play]}\n{offer}\n"
        "Unsubscribe: {{ unsubscribe_url }}\n"
    )


def _write_templates(folder: Path, drafts: list[Draft]) -> list[Path]:
    written = []
    for draft in drafts:
        for file_name, text in draft.templates.items():
            path = folder / file_name
            if path.exists():
                continue
            try:
                folder.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot write template stub {path}: {exc}") from None
            written.append(path)
    return written
