"""Before a run touches the store: every template a due campaign may use exists, compiles, uses
only the names templates are given, and reads only customer columns the workspace declares.

A mistake is reported with the config line of the campaign's template key and the template's
own line, before any data is loaded, any model fitted or any run recorded.
"""

from __future__ import annotations

from collections.abc import Iterator

from jinja2 import TemplateSyntaxError, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from campaigns.config.loader import where_in_config
from campaigns.config.schema import CampaignConfig, Config, DemoSource, FilesSource
from campaigns.errors import TemplateCheckError
from segmentation.features import RFM_COLUMNS
from store.frames import CUSTOMER_COLUMNS
from store.sources.demo import DEMO_TRAITS
from templates import CONTEXT_NAMES, MessageTemplate, make_environment
from templates.names import attribute_reads, did_you_mean

#: Columns every run's customer table has besides traits and features.
#: Columns every run may add: the segment's name, model scores, and the lifetime-value model's
#: columns (``campaigns.personalization.clv.model.COLUMNS``; a test holds them equal).
_ALWAYS = (
    "segment",
    "propensity",
    "uplift",
    "p_alive",
    "expected_purchases_90d",
    "expected_spend",
    "clv_12m",
)


def declared_columns(config: Config) -> set[str] | None:
    """The customer columns templates may read, as the config declares them; None when the
    source keeps every column of a file (``traits = ["*"]``), which only the data can tell."""
    columns = {*CUSTOMER_COLUMNS, *RFM_COLUMNS, *_ALWAYS}
    segmentation = config.segmentation
    columns.update(segmentation.traits)
    columns.update(segmentation.derived_names)
    columns.update(segmentation.categorical)
    if "category_shares" in segmentation.features:
        return None  # share_<category> for categories only the data names
    source = config.source
    if isinstance(source, DemoSource):
        columns.update(DEMO_TRAITS)
    elif isinstance(source, FilesSource) and source.customers is not None:
        if "*" in source.customers.traits:
            return None
        columns.update(source.customers.traits)
        columns.update(source.customers.columns)
    return columns


def validate_templates(
    config: Config, only: str | None = None, include_disabled: bool = False
) -> None:
    """Check the templates of every enabled campaign (or only ``only``; disabled ones too with
    ``include_disabled``); raise :class:`TemplateCheckError` naming the config line, the
    campaign and the template line."""
    env = make_environment(config.path(config.templates), config.settings.limits.render_limits())
    columns = declared_columns(config)
    for name, campaign in config.campaigns.items():
        if (not campaign.enabled and not include_disabled) or (only is not None and name != only):
            continue
        for loc, template in _templates(name, campaign):
            try:
                MessageTemplate.load(env, template, campaign.subject, campaign.headers)
                _check_names(env, template, columns)
            except TemplateCheckError as exc:
                raise TemplateCheckError(f"{where_in_config(config, *loc)}: {exc}") from None
    if only is not None:
        return
    for name, journey in config.journeys.items():
        if not journey.enabled and not include_disabled:
            continue
        for index, step in enumerate(journey.steps):
            if step.send is None:
                continue
            try:
                MessageTemplate.load(env, step.send, step.subject)
                _check_names(env, step.send, columns)
            except TemplateCheckError as exc:
                where = where_in_config(config, "journeys", name, "steps", index, "send")
                raise TemplateCheckError(f"{where}: {exc}") from None


def _templates(name: str, campaign: CampaignConfig) -> Iterator[tuple[tuple[str, ...], str]]:
    """Each template a campaign may render, with the key path that names it."""
    yield ("campaigns", name, "template"), campaign.template
    if campaign.experiment is not None:
        for variant, spec in campaign.experiment.variants.items():
            if spec.template != campaign.template:
                loc = ("campaigns", name, "experiment", "variants", variant, "template")
                yield loc, spec.template


def _check_names(
    env: ImmutableSandboxedEnvironment, template: str, columns: set[str] | None
) -> None:
    assert env.loader is not None
    for part in ("txt", "html"):
        filename = f"{template}.{part}.j2"
        try:
            source, _path, _ = env.loader.get_source(env, filename)
        except Exception:  # the optional HTML part; a missing text part failed to load already
            continue
        try:
            tree = env.parse(source)
        except TemplateSyntaxError as exc:  # pragma: no cover - MessageTemplate.load reports it
            raise TemplateCheckError(f"{filename}:{exc.lineno}: {exc.message}") from None
        unknown = sorted(meta.find_undeclared_variables(tree) - CONTEXT_NAMES)
        if unknown:
            raise TemplateCheckError(
                f"{filename}: unknown name {unknown[0]!r}"
                f"{did_you_mean(unknown[0], CONTEXT_NAMES)}; templates can use: "
                + ", ".join(sorted(CONTEXT_NAMES))
            )
        if columns is None:
            continue
        for read in attribute_reads(tree, "customer"):
            if read.attribute not in columns:
                raise TemplateCheckError(
                    f"{filename}:{read.line}: customer has no attribute {read.attribute!r}"
                    f"{did_you_mean(read.attribute, columns)}"
                )
