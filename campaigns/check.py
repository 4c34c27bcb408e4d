"""``campaign check``: the config is valid (loading proved it) and every template renders."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from jinja2 import TemplateSyntaxError, meta

from campaigns.compose import unsubscribe_url
from campaigns.config.schema import Config
from campaigns.errors import TemplateCheckError
from segmentation import RFM_COLUMNS
from store.engine import opened_store
from store.frames import CUSTOMER_COLUMNS
from store.shop import trait_columns
from templates import CONTEXT_NAMES, MessageTemplate, build_context, make_environment


@dataclass
class CheckReport:
    """What ``campaign check`` looked at; any problem is raised as an error instead."""

    campaigns: list[str] = field(default_factory=list)
    templates: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def sample_customer(trait_columns: list[str]) -> dict[str, Any]:
    """A customer with every column a template may read, for a trial render."""
    sample: dict[str, Any] = dict.fromkeys(CUSTOMER_COLUMNS, "sample")
    sample.update(customer_id="C0", email="sample@example.com", first_name="Sam")
    sample["signup_at"] = datetime(2025, 1, 1)
    sample.update(dict.fromkeys(RFM_COLUMNS, 1.0))
    sample.update(dict.fromkeys(trait_columns, 1))
    return sample


def check_workspace(config: Config) -> CheckReport:
    """Compile every campaign's template and subject, and render each against a sample customer.

    The sample has the traits of the customers in the store (none before the first load). A
    template that reads a variable or attribute the context lacks fails here, with template name
    and line, instead of at send time.
    """
    with opened_store(config.store.url, config.root) as engine:
        traits = trait_columns(engine)
    report = CheckReport()
    folder = config.path(config.templates)
    env = make_environment(folder)
    customer = sample_customer(traits)
    segment = {"id": 1, "name": "Sample segment", "profile": {}}
    for name, campaign in config.campaigns.items():
        report.campaigns.append(name)
        where = f"campaigns.{name}"
        try:
            template = MessageTemplate.load(env, campaign.template, campaign.subject)
            for part in ("txt", "html"):
                _check_names(env, f"{campaign.template}.{part}.j2", folder, required=part == "txt")
            template.render(
                build_context(
                    customer=customer,
                    segment=segment,
                    campaign={"name": name, "description": campaign.description},
                    now=datetime.now(UTC).replace(tzinfo=None),
                    unsubscribe_url=unsubscribe_url(
                        config.settings.unsubscribe_base_url, "C0", name
                    ),
                )
            )
        except TemplateCheckError as exc:
            raise TemplateCheckError(f"{where}.template: {exc}") from None
        report.templates.append(campaign.template)
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
