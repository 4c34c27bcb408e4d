"""``campaign check``: the config is valid (loading proved it) and every template renders."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from jinja2 import TemplateSyntaxError, meta

from campaigns.compose import unsubscribe_url
from campaigns.conditions import Condition, ConditionError
from campaigns.config.journeys import EXIT, EXIT_KEYWORDS, JourneyConfig
from campaigns.config.schema import Config, DemoSource
from campaigns.engagement.tokens import load_keys, webhook_secret
from campaigns.errors import ConfigError, TemplateCheckError
from campaigns.experiments.sending import trial_renders
from campaigns.experiments.spec import experiment_warnings
from campaigns.forecast import planned_ahead, simulate
from campaigns.inputs import gather_inputs
from campaigns.journeys.edits import journey_edits, refuse_stranding
from campaigns.personalization.scoring import rejected_model_warnings
from campaigns.planner import plan_campaigns
from campaigns.rendering import customer_records
from campaigns.run import prepare
from campaigns.validate import declared_columns, validate_templates
from segmentation import RFM_COLUMNS
from store.engine import opened_store
from store.frames import CUSTOMER_COLUMNS
from store.shop import count_customers, trait_columns
from templates import CONTEXT_NAMES, MessageTemplate, build_context, make_environment
from templates.context import plain


@dataclass
class CheckReport:
    """What ``campaign check`` looked at; any problem is raised as an error instead."""

    campaigns: list[str] = field(default_factory=list)
    templates: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def sample_customer(columns: pd.DataFrame | list[str]) -> dict[str, Any]:
    """A customer with every column a template may read, for a trial render.

    Given the run's customer table, the sample has exactly its columns (traits, features,
    segment) with a typical value per type; given names only, those plus the standard ones.
    """
    sample: dict[str, Any] = dict.fromkeys(CUSTOMER_COLUMNS, "sample")
    sample.update(dict.fromkeys(RFM_COLUMNS, 1.0))
    if isinstance(columns, pd.DataFrame):
        for name in columns.columns:
            dtype = columns[name].dtype
            if pd.api.types.is_datetime64_any_dtype(dtype):
                sample[str(name)] = datetime(2025, 1, 1)
            elif pd.api.types.is_numeric_dtype(dtype):
                sample[str(name)] = 1.0
            else:
                sample[str(name)] = "sample"
    else:
        sample.update(dict.fromkeys(columns, 1))
    sample.update(customer_id="C0", email="sample@example.com", first_name="Sam")
    sample["signup_at"] = datetime(2025, 1, 1)
    sample.pop("segment_id", None)
    return sample


class _AnyTrait(dict[str, Any]):
    """A sample customer for a source that keeps every column of its file (``traits = ["*"]``):
    any trait a template reads is there, as text."""

    def __missing__(self, key: str) -> Any:
        return "sample"


def column_types(columns: pd.DataFrame | Mapping[str, Any]) -> dict[str, str]:
    """Each column's type as :meth:`Condition.check_types` takes it: from a customer table's
    dtypes (and values, for object columns), or from a sample customer's values."""
    if isinstance(columns, pd.DataFrame):
        found: dict[str, str] = {}
        for name in columns.columns:
            column = columns[name]
            dtype = column.dtype
            if pd.api.types.is_bool_dtype(dtype):
                found[str(name)] = "bool"
            elif pd.api.types.is_datetime64_any_dtype(dtype):
                found[str(name)] = "date"
            elif pd.api.types.is_numeric_dtype(dtype):
                found[str(name)] = "number"
            else:
                kinds = {_value_type(v) for v in column.dropna().head(1000)}
                found[str(name)] = kinds.pop() if len(kinds) == 1 else "any"
        return found
    return {str(k): _value_type(v) for k, v in columns.items()}


def _value_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, datetime):
        return "date"
    return "text" if isinstance(value, str) else "any"


#: Customers of the store each campaign's templates are trial-rendered with.
SAMPLE_CUSTOMERS = 20


def check_workspace(config: Config, forecast_days: int = 14) -> CheckReport:
    """Check every campaign: its condition names real columns and uses each by its type, its
    template and subject compile and render against a sample customer, and (with data in the
    store) render for a sample of real customers of its audience, and a forecast of the next
    ``forecast_days`` days finds no overlapping campaigns or campaigns that never send.

    A template that reads a variable or attribute the context lacks fails here, with template
    name and line, instead of at send time; so does a template over its budget
    (``[settings.limits]``). A template that fails for some of the real sample customers (their
    data, not the template) is a warning naming the campaign, the customer and the error.
    """
    # Names, syntax and customer attributes first, with the config line (as a run checks them).
    validate_templates(config, include_disabled=True)
    # With [tracking], every message carries signed URLs: no run can go without the secret
    # (made here on first use when the config says create_secret).
    if config.tracking is not None:
        load_keys(config.tracking, config.root)
        webhook_secret(config.tracking, config.root)
    now = datetime.now(UTC).replace(tzinfo=None)
    warnings: list[str] = []
    ready = None
    samples: dict[str, list[str]] = {}
    with opened_store(config.store.url, config.root) as engine:
        # An edit of a live journey must not strand anyone (as campaign run refuses it).
        refuse_stranding(journey_edits(engine, config, now))
        if count_customers(engine) and forecast_days:
            ready = prepare(engine, config, now, persist=False)
            customer = sample_customer(ready.customers)
            columns = list(ready.customers.columns)
            types = column_types(ready.customers)
            inputs = gather_inputs(engine, config, ready.customers, ready.shop, now)
            warnings = simulate(
                config, ready, inputs, now, forecast_days, planned_ahead(engine)
            ).warnings()
            plans = plan_campaigns(config, inputs, ready.model.names)
            audiences = {plan.name: len(plan.audience) for plan in plans}
            samples = {plan.name: _sample_ids(plan.audience, ready.customers) for plan in plans}
            warnings += experiment_warnings(config, audiences)
        else:
            # A fresh workspace: the traits the config declares (and any the store has).
            declared = declared_columns(config)
            customer = sample_customer([*trait_columns(engine), *(declared or ())])
            if declared is None:
                customer = _AnyTrait(customer)
            # Types we know before any data: our own columns, the demo's traits; traits only
            # the data will type (a file's columns) are not checked yet.
            types = {
                **_COLUMN_TYPES,
                **(_DEMO_TRAIT_TYPES if isinstance(config.source, DemoSource) else {}),
                **dict.fromkeys((*RFM_COLUMNS, *_NUMBER_COLUMNS), "number"),
            }
            for trait, kind in types.items():
                if kind == "text" and isinstance(customer.get(trait), int):
                    customer[trait] = "sample"
            columns = [*customer, "segment", "segment_id"]
        warnings += rejected_model_warnings(engine, config)
    report = CheckReport(warnings=warnings)
    folder = config.path(config.templates)
    env = make_environment(folder, config.settings.limits.render_limits())
    segment = {"id": 1, "name": "Sample segment", "profile": {}}
    for name, campaign in config.campaigns.items():
        report.campaigns.append(name)
        where = f"campaigns.{name}"
        condition = campaign.condition()
        if condition is not None:
            try:
                if not isinstance(customer, _AnyTrait):
                    condition.check_names(columns)
                condition.check_types(types)
            except ConditionError as exc:
                raise ConfigError(f"{where}.where: {exc}") from None

        # The campaign's template, and in an experiment each variant's, with its parameters.
        for template_name, variant in trial_renders(campaign):
            try:
                template = MessageTemplate.load(
                    env, template_name, campaign.subject, campaign.headers
                )
                for part in ("txt", "html"):
                    _check_names(env, f"{template_name}.{part}.j2", folder, required=part == "txt")
                record = {k: plain(v) for k, v in customer.items()}
                template.render(
                    build_context(
                        customer=_AnyTrait(record) if isinstance(customer, _AnyTrait) else record,
                        segment=segment,
                        campaign={
                            "name": name,
                            "description": campaign.description,
                            "purpose": campaign.recommendations.purpose
                            if campaign.recommendations is not None
                            else None,
                        },
                        now=now,
                        unsubscribe_url=unsubscribe_url(
                            config.settings.unsubscribe_base_url, "C0", name
                        ),
                        variant=variant,
                    )
                )
            except TemplateCheckError as exc:
                raise TemplateCheckError(f"{where}.template: {exc}") from None
            report.templates.append(template_name)
            if ready is not None and samples.get(name):
                report.warnings += _trial_real_customers(
                    config, name, template, variant, ready, samples[name], now
                )
        if not campaign.enabled:
            report.warnings.append(f"{where}: disabled")
    for name, journey in config.journeys.items():
        report.warnings += _check_journey(
            config, name, journey, env, folder, customer, columns, types, now
        )
        report.templates += [s.send for s in journey.steps if s.send is not None]
    return report


def _check_journey(
    config: Config,
    name: str,
    journey: JourneyConfig,
    env: Any,
    folder: Any,
    customer: dict[str, Any],
    columns: list[str],
    types: dict[str, str],
    now: datetime,
) -> list[str]:
    """A journey's conditions name real columns, its templates render, and warnings: steps no
    path reaches, waits for a click or open that cannot be tracked, a send right after a send."""
    where = f"journeys.{name}"
    conditions = [("where", journey.where)] + [
        (f"steps.{s.name}.split", s.split) for s in journey.steps
    ]
    conditions += [("exit_when", c) for c in journey.exit_when if c not in EXIT_KEYWORDS]
    for key, text in conditions:
        if text is None:
            continue
        try:
            condition = Condition.parse(text)
            if not isinstance(customer, _AnyTrait):
                condition.check_names(columns)
            condition.check_types(types)
        except ConditionError as exc:
            raise ConfigError(f"{where}.{key}: {exc}") from None
    warnings = []
    for step in journey.steps:
        if step.send is None:
            continue
        try:
            template = MessageTemplate.load(env, step.send, step.subject)
            for part in ("txt", "html"):
                _check_names(env, f"{step.send}.{part}.j2", folder, required=part == "txt")
            record = {k: plain(v) for k, v in customer.items()}
            template.render(
                build_context(
                    customer=_AnyTrait(record) if isinstance(customer, _AnyTrait) else record,
                    segment={"id": 1, "name": "Sample segment", "profile": {}},
                    campaign={"name": name, "description": journey.description, "purpose": None},
                    now=now,
                    unsubscribe_url=unsubscribe_url(
                        config.settings.unsubscribe_base_url, "C0", name
                    ),
                    variant=None,
                )
            )
        except TemplateCheckError as exc:
            raise TemplateCheckError(f"{where}.steps.{step.name}.send: {exc}") from None
    warnings += [
        f"{where}.steps.{s}: unreachable (no branch leads to it)" for s in journey.unreachable()
    ]
    for step in journey.steps:
        if step.wait_for in ("click", "open") and not journey.track_links:
            warnings.append(
                f"{where}.steps.{step.name}: waits for a {step.wait_for} that cannot be seen "
                f"(track_links is off), so everyone takes its else branch after {step.timeout}"
            )
        if step.send is not None:
            for _, target in journey.branches(step):
                if target != EXIT and journey.step(target).send is not None:
                    warnings.append(
                        f"{where}.steps.{step.name}: goes straight on to send step {target!r}; "
                        "with max_messages_per_customer_per_run or a frequency cap it waits "
                        "for a later run (put a wait between them)"
                    )
    if not journey.enabled:
        warnings.append(f"{where}: disabled")
    return warnings


#: Types of the columns every workspace has, for type checks before the store has data.
_COLUMN_TYPES = {
    "customer_id": "text",
    "email": "text",
    "first_name": "text",
    "last_name": "text",
    "country": "text",
    "timezone": "text",
    "signup_at": "date",
    "segment": "text",
}
#: The demo shop's traits (``store.sources.demo.DEMO_TRAITS``).
_DEMO_TRAIT_TYPES = {
    "age": "number",
    "gender": "text",
    "income": "number",
    "children": "number",
    "latent_group": "text",
}
_NUMBER_COLUMNS = (
    "segment_id",
    "propensity",
    "uplift",
    "p_alive",
    "expected_purchases_90d",
    "expected_spend",
    "clv_12m",
    "total_spend",
)


def _sample_ids(audience: pd.DataFrame, customers: pd.DataFrame) -> list[str]:
    """Up to :data:`SAMPLE_CUSTOMERS` customers to trial-render a campaign with, from its
    audience now (any customers when nobody is in it): those with the most missing values
    first, as they are the likeliest to break a template, then a random few."""
    ids = audience["customer_id"] if len(audience) else customers["customer_id"]
    chosen = ids.drop_duplicates().sample(frac=1.0, random_state=0)
    gaps = customers.loc[chosen.to_numpy()].isna().sum(axis=1).to_numpy()
    order = sorted(range(len(chosen)), key=lambda i: -gaps[i])[:SAMPLE_CUSTOMERS]
    return [str(chosen.iloc[i]) for i in order]


def _trial_real_customers(
    config: Config,
    name: str,
    template: MessageTemplate,
    variant: dict[str, Any] | None,
    ready: Any,
    ids: list[str],
    now: datetime,
) -> list[str]:
    """Render ``template`` for real customers; a warning per campaign for those it fails for."""
    campaign = config.campaigns[name]
    segments = ready.model.for_templates()
    records = customer_records(ready.customers, pd.Series(ids, dtype=object))
    failures: list[str] = []
    for record in records:
        segment_id = int(ready.customers.loc[record["customer_id"], "segment_id"])
        context = build_context(
            customer=record,
            segment=segments[segment_id],
            campaign={"name": name, "description": campaign.description},
            now=now,
            unsubscribe_url=unsubscribe_url(
                config.settings.unsubscribe_base_url, str(record["customer_id"]), name
            ),
            variant=variant,
        )
        try:
            template.render(context)
        except TemplateCheckError as exc:
            failures.append(f"customer {record['customer_id']}: {exc}")
    if not failures:
        return []
    return [
        f"campaigns.{name}.template: {template.name} fails for {len(failures)} of {len(records)} "
        f"sample customers (their messages would be render_failed); first, {failures[0]}"
    ]


def _check_names(env: Any, filename: str, folder: Any, required: bool) -> None:
    path = folder / filename
    if not path.exists():
        return
    source = path.read_text(encoding="utf-8")
    try:
        names = meta.find_undeclared_variables(env.parse(source))
    except TemplateSyntaxError as exc:  # pragma: no cover - MessageTemplate.load reports it first
        raise TemplateCheckError(f"{path}:{exc.lineno}: {exc.message}") from None
    unknown = sorted(set(names) - CONTEXT_NAMES)
    if unknown:
        allowed = ", ".join(sorted(CONTEXT_NAMES))
        raise TemplateCheckError(
            f"{path}: unknown variable {unknown[0]!r}; templates can use: {allowed}"
        )
