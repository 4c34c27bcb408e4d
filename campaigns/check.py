"""``campaign check``: the config is valid (loading proved it) and every template renders."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from jinja2 import TemplateSyntaxError, meta

from campaigns.compose import unsubscribe_url
from campaigns.conditions import ConditionError
from campaigns.config.schema import Config
from campaigns.errors import ConfigError, TemplateCheckError
from campaigns.experiments.sending import trial_renders
from campaigns.experiments.spec import experiment_warnings
from campaigns.forecast import planned_ahead, simulate
from campaigns.inputs import gather_inputs
from campaigns.personalization.scoring import rejected_model_warnings
from campaigns.planner import plan_campaigns
from campaigns.run import prepare
from campaigns.validate import validate_templates
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


def check_workspace(config: Config, forecast_days: int = 14) -> CheckReport:
    """Check every campaign: its condition names real columns, its template and subject compile
    and render against a sample customer, and (with data in the store) a forecast of the next
    ``forecast_days`` days finds no overlapping campaigns or campaigns that never send.

    A template that reads a variable or attribute the context lacks fails here, with template
    name and line, instead of at send time.
    """
    # Names, syntax and customer attributes first, with the config line (as a run checks them).
    validate_templates(config, include_disabled=True)
    now = datetime.now(UTC).replace(tzinfo=None)
    warnings: list[str] = []
    with opened_store(config.store.url, config.root) as engine:
        if count_customers(engine) and forecast_days:
            ready = prepare(engine, config, now, persist=False)
            customer = sample_customer(ready.customers)
            columns = list(ready.customers.columns)
            inputs = gather_inputs(engine, config, ready.customers, ready.shop, now)
            warnings = simulate(
                config, ready, inputs, now, forecast_days, planned_ahead(engine)
            ).warnings()
            audiences = {
                plan.name: len(plan.audience)
                for plan in plan_campaigns(config, inputs, ready.model.names)
            }
            warnings += experiment_warnings(config, audiences)
        else:
            traits = trait_columns(engine)
            customer = sample_customer(traits)
            columns = [*customer, "segment", "segment_id"]
        warnings += rejected_model_warnings(engine, config)
    report = CheckReport(warnings=warnings)
    folder = config.path(config.templates)
    env = make_environment(folder)
    segment = {"id": 1, "name": "Sample segment", "profile": {}}
    for name, campaign in config.campaigns.items():
        report.campaigns.append(name)
        where = f"campaigns.{name}"
        condition = campaign.condition()
        if condition is not None:
            try:
                condition.check_names(columns)
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
                template.render(
                    build_context(
                        customer={k: plain(v) for k, v in customer.items()},
                        segment=segment,
                        campaign={"name": name, "description": campaign.description},
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
        if not campaign.enabled:
            report.warnings.append(f"{where}: disabled")
    return report


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
