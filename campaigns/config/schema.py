"""The shape of ``config.toml``: frozen pydantic models, validated once when the file is loaded.

Past :func:`campaigns.config.load_config` the rest of the library receives these typed, immutable
values and never re-checks them.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from campaigns.conditions import Condition, ConditionError
from campaigns.config.experiments import DecisionConfig, ImportedExperimentConfig
from campaigns.config.journeys import JourneyConfig
from campaigns.config.rules import Cap, QuietHours, Trigger, parse_duration
from campaigns.errors import ConfigError

# The source models live with the sources (``store`` needs nothing from ``campaigns``).
from store.sources.spec import DemoSource as DemoSource
from store.sources.spec import FilesSource as FilesSource
from store.sources.spec import Source
from store.sources.spec import TableFile as TableFile

if TYPE_CHECKING:
    from templates.limits import RenderLimits


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


# ---------------------------------------------------------------------------------------- store


class StoreConfig(_Model):
    """Where the store lives. A relative SQLite path is taken from the config file's folder.

    ``config.toml`` lives in git, so the URL must not hold a password: PostgreSQL reads it from
    ``PGPASSWORD`` or ``~/.pgpass``, or the whole URL comes from the environment variable that
    ``url_env`` names.
    """

    #: An environment variable holding the whole URL (then ``url`` is not written).
    url_env: str | None = None
    url: str = "sqlite:///.campaign/campaign.db"

    @model_validator(mode="before")
    @classmethod
    def _from_environment(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("url_env"), str) and "url" not in data:
            value = os.environ.get(data["url_env"])
            if value:
                data = {**data, "url": value}
        return data

    @field_validator("url_env")
    @classmethod
    def _variable_set(cls, value: str | None) -> str | None:
        if value is not None and not os.environ.get(value):
            raise ValueError(f"names the environment variable {value}, which is not set")
        return value

    @field_validator("url")
    @classmethod
    def _known_dialect(cls, value: str, info: ValidationInfo) -> str:
        variable = info.data.get("url_env")
        from_environment = variable is not None and os.environ.get(variable) == value
        if variable is not None and not from_environment:
            raise ValueError("give either url or url_env, not both")
        if not from_environment and urlsplit(value).password is not None:
            raise ValueError(
                "must not hold a password (config.toml lives in git); give the password in "
                "PGPASSWORD or ~/.pgpass, or put the whole URL in an environment variable and "
                'name it with url_env = "VARIABLE"'
            )
        if not value.startswith(("sqlite://", "postgresql://", "postgresql+psycopg://")):
            raise ValueError(
                "must start with 'sqlite:///' or 'postgresql+psycopg://', "
                f"got {value.split(':', 1)[0]!r}"
            )
        return value


# --------------------------------------------------------------------------------------- source


# --------------------------------------------------------------------------------- segmentation

Feature = Literal[
    "recency", "frequency", "monetary", "tenure", "average_order_value", "category_shares"
]


class Preprocessing(_Model):
    """How features are prepared before clustering (see the README, "Segmentation")."""

    missing: Literal["median", "mean", "drop"] = "median"
    outliers: Literal["none", "clip", "flag", "drop"] = "none"
    outlier_rule: Literal["iqr", "zscore"] = "iqr"
    #: Columns to log1p (those not clustered are ignored), or "auto" for skewed ones.
    log: list[str] | Literal["auto"] = Field(
        default=["frequency", "monetary", "average_order_value", "total_spend"]
    )
    scaling: Literal["standard", "minmax", "robust"] = "standard"


class DerivedTraits(_Model):
    """Traits computed from customer columns; list them in ``traits`` to cluster on them."""

    #: Year-of-birth column: age = the year of the run's time minus it.
    age: str | None = None
    #: Columns summed into ``children``.
    children: list[str] = Field(default_factory=list)
    #: Columns summed into ``total_spend``.
    total_spend: list[str] = Field(default_factory=list)


class SegmentationConfig(_Model):
    """How customers are grouped into segments."""

    model: Literal["kmeans", "ward", "gmm", "rfm"] = "kmeans"
    #: Number of segments, or "auto" to choose it in ``k_range``.
    k: int | Literal["auto"] = 4
    k_range: tuple[int, int] = (2, 8)
    features: list[Feature] = Field(default=["recency", "frequency", "monetary"])
    #: Numeric customer columns (traits, or derived traits by name) to cluster on.
    traits: list[str] = Field(default_factory=list)
    derived: DerivedTraits = DerivedTraits()
    #: Categorical customer columns: "onehot", or the categories in order (ordinal).
    categorical: dict[str, Literal["onehot"] | list[str]] = Field(default_factory=dict)
    preprocessing: Preprocessing = Preprocessing()
    #: Bootstrap refits per k for the stability score (0 to skip).
    stability_refits: int = Field(default=5, ge=0, le=50)
    seed: int = 0
    #: Business names by segment id, replacing the automatic descriptive names.
    names: dict[int, str] = Field(default_factory=dict)

    @field_validator("k", mode="before")
    @classmethod
    def _k_range(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 2:
                raise ValueError(f"must be greater than or equal to 2, got {value}")
            if value > 30:
                raise ValueError(f"must be less than or equal to 30, got {value}")
            return value
        if value != "auto":
            raise ValueError(f"must be a whole number from 2 to 30 or 'auto', got {value!r}")
        return value

    @field_validator("k_range")
    @classmethod
    def _ordered(cls, value: tuple[int, int]) -> tuple[int, int]:
        low, high = value
        if not 2 <= low <= high <= 30:
            raise ValueError(f"must be [low, high] with 2 <= low <= high <= 30, got {list(value)}")
        return value

    @model_validator(mode="after")
    def _something_to_cluster(self) -> SegmentationConfig:
        if self.model == "rfm":
            if self.k == "auto":
                raise ValueError(
                    "k = 'auto' does not apply to model 'rfm', whose named segments are fixed"
                )
            return self
        if not self.clustered:
            raise ValueError("nothing to cluster: list features, traits or categorical columns")
        return self

    @property
    def derived_names(self) -> list[str]:
        """The derived traits that are configured, in a fixed order."""
        return [
            name
            for name, value in (
                ("age", self.derived.age),
                ("children", self.derived.children),
                ("total_spend", self.derived.total_spend),
            )
            if value
        ]

    @property
    def clustered(self) -> list[str]:
        """Every column clustered, before ``category_shares`` is expanded."""
        return [*self.features, *self.traits, *self.categorical]


# ------------------------------------------------------------------------------------- channels


class _ChannelBase(_Model):
    """Delivery settings every channel shares: retries, backoff and the claim lease."""

    #: Attempts before a transiently failing message may be marked failed (1 = never retry).
    max_attempts: int = Field(default=5, ge=1, le=100)
    #: Wait before the first retry; each further retry waits twice as long (capped at an hour).
    backoff_seconds: float = Field(default=60.0, ge=0)
    #: ...and retries go on at least this long after the first failure (an outage shorter than
    #: this loses nothing, whatever ``backoff_seconds`` and however long a drain runs).
    retry_for: str = "1d"
    #: How long a claimed batch belongs to its worker; a killed worker's batch is reclaimed after.
    lease_seconds: float = Field(default=300.0, gt=0)

    @field_validator("retry_for")
    @classmethod
    def _retry_duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def retry_period(self) -> timedelta:
        return parse_duration(self.retry_for)


class FileChannel(_ChannelBase):
    """Write messages to files (one per channel and run), ready for an ESP or CRM upload."""

    type: Literal["file"]
    format: Literal["csv", "jsonl", "parquet"] = "csv"
    directory: Path = Path("out")
    #: Allow a ``directory`` outside the workspace (the config file's folder).
    allow_outside: bool = False
    #: Messages per claim; a delivery writes one file per campaign and claim.
    batch_size: int = Field(default=100_000, ge=1)


def _no_plain_secret(data: object, keys: tuple[str, ...]) -> object:
    if isinstance(data, dict):
        for key in keys:
            if key in data:
                raise ValueError(
                    f"{key!r} must not be written in config.toml; name an environment variable "
                    f"that holds it with {key}_env"
                )
    return data


class SmtpChannel(_ChannelBase):
    """Send email through an SMTP server (smtplib), credentials from environment variables."""

    type: Literal["smtp"]
    host: str
    port: int = Field(default=587, gt=0, lt=65536)
    #: "starttls" upgrades a plain connection, "tls" connects with TLS (port 465), "none" is plain.
    security: Literal["starttls", "tls", "none"] = "starttls"
    #: Names of the environment variables holding the login; no login when unset.
    username_env: str | None = None
    password_env: str | None = None
    #: A CA bundle to verify the server with, instead of the system's (a private relay).
    ca_file: Path | None = None
    from_address: str = Field(alias="from")
    reply_to: str | None = None
    #: Parallel connections, each reused for many messages.
    connections: int = Field(default=1, ge=1, le=32)
    #: Messages per second across this process's connections; none means as fast as possible.
    rate_limit: float | None = Field(default=None, gt=0)
    timeout: float = Field(default=30.0, gt=0)
    batch_size: int = Field(default=200, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _secrets(cls, data: object) -> object:
        return _no_plain_secret(data, ("password", "username"))


class WebhookChannel(_ChannelBase):
    """POST each message (or each batch) as JSON to a URL, signed with HMAC-SHA256."""

    type: Literal["webhook"]
    url: str
    #: "message": one POST per message; "batch": one POST with a list of messages.
    mode: Literal["message", "batch"] = "message"
    #: Environment variable holding the signing secret; no signature header when unset.
    secret_env: str | None = None
    timeout: float = Field(default=10.0, gt=0)
    rate_limit: float | None = Field(default=None, gt=0)
    batch_size: int = Field(default=100, ge=1)
    #: Further request headers (not secrets: those come from the environment).
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must start with 'http://' or 'https://', got {value!r}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _secrets(cls, data: object) -> object:
        return _no_plain_secret(data, ("secret",))


Channel = Annotated[FileChannel | SmtpChannel | WebhookChannel, Field(discriminator="type")]


# ------------------------------------------------------------------------------------ campaigns


#: What a campaign name may look like (it appears in idempotency keys and file names).
CAMPAIGN_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


_DURATION = re.compile(r"^\s*(\d+)\s*([dh])\s*$")


class VariantConfig(_Model):
    """One arm of an experiment: a template, optional parameters (``variant.NAME`` in templates)."""

    template: str
    #: Share of the non-held-out audience, relative to the other variants' weights.
    weight: float = Field(default=1.0, gt=0)
    #: Values templates see as ``variant.<name>``, such as a discount percentage.
    parameters: dict[str, str | int | float | bool] = Field(default_factory=dict)


class ExperimentConfig(DecisionConfig):
    """An A/B (or A/B/n) test of a campaign's message, registered before it starts (with the
    decision rules of :class:`~campaigns.config.experiments.DecisionConfig`)."""

    #: The experiment's name in the store and in reports; by default the campaign's name.
    name: str | None = None
    #: Mixed into the assignment hash; change it only to re-randomise (a new experiment).
    salt: str | None = None
    variants: dict[str, VariantConfig] = Field(min_length=2)
    #: The variant the others are compared with.
    control: str = "control"
    #: Share of the audience that receives nothing (measured as the "holdout" arm).
    holdout: float = Field(default=0.0, ge=0, lt=1)
    primary_metric: Literal["conversion", "ctr"] = "conversion"
    secondary_metrics: list[Literal["revenue_per_exposure", "ctr", "conversion"]] = Field(
        default=["revenue_per_exposure"]
    )
    #: Where conversions come from: purchases in the transaction log, or tracked events.
    conversions: Literal["transactions", "tracked"] = "transactions"
    #: A conversion counts when it happens this long after exposure ("14d", "48h").
    attribution_window: str = "14d"
    #: The smallest absolute change in the primary rate worth detecting (0.01 = 1 point).
    minimum_detectable_effect: float = Field(default=0.01, gt=0, lt=1)
    #: Two-sided significance level.
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    power: float = Field(default=0.8, gt=0.5, lt=1)
    #: The control arm's expected primary rate, for power and sample sizes before data exists.
    baseline_rate: float = Field(default=0.05, gt=0, lt=1)
    #: Days of spend before exposure used as the CUPED covariate (0 turns CUPED off).
    covariate_days: int = Field(default=90, ge=0)

    @field_validator("attribution_window")
    @classmethod
    def _duration(cls, value: str) -> str:
        found = _DURATION.match(value)
        if not found or int(found.group(1)) == 0:
            raise ValueError(
                f"must be a positive number of days or hours such as '14d' or '48h', got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _control_is_a_variant(self) -> ExperimentConfig:
        if self.control not in self.variants:
            names = ", ".join(repr(v) for v in self.variants)
            raise ValueError(
                f"control {self.control!r} is not one of the variants ({names}); "
                "name a variant 'control' or set control = 'NAME'"
            )
        if "holdout" in self.variants:
            raise ValueError("'holdout' is reserved for the held-out arm; rename that variant")
        return self


class TargetConfig(_Model):
    """Send only to the customers worth it, best first by expected value ``by * value``.

    ``by`` is a score column (``propensity`` or ``uplift`` from a trained model, or any numeric
    trait); ``value`` a column (such as ``average_order_value``) or one number. At most ``top``
    customers, or ``share`` of the audience, or ``budget / cost`` messages; with a ``cost``, only
    customers whose expected value exceeds it.
    """

    by: str
    value: str | float = 1.0
    top: int | None = Field(default=None, ge=1)
    share: float | None = Field(default=None, gt=0, le=1)
    budget: float | None = Field(default=None, gt=0)
    cost: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _budget_has_cost(self) -> TargetConfig:
        if self.budget is not None and self.cost == 0:
            raise ValueError("budget needs cost, the price of one message")
        return self


class RecommendationsConfig(_Model):
    """Product recommendations shown to a campaign's templates as ``recommendations``."""

    #: "discover": only products new to the customer (a cross-sell, a newsletter);
    #: "replenish": what they will buy next, past purchases included (a reminder to reorder).
    purpose: Literal["discover", "replenish"] = "discover"
    #: Products per message.
    count: int = Field(default=3, ge=1, le=50)
    #: "auto": chosen by a time split of the history (discover: CF or EASE; replenish: repeat).
    #: Discover: "cf" (bought together), "ease", "content" (similar names and categories),
    #: "blend" or "popular"; replenish: "repeat", "rebuy" or "popular".
    method: Literal["auto", "cf", "ease", "content", "blend", "popular", "repeat", "rebuy"] = "auto"
    #: Discover: products bought this many days before the run are not recommended again
    #: (none: nothing the customer ever bought is).
    exclude_days: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _method_fits_purpose(self) -> RecommendationsConfig:
        allowed = {
            "discover": ("auto", "cf", "ease", "content", "blend", "popular"),
            "replenish": ("auto", "repeat", "rebuy", "popular"),
        }[self.purpose]
        if self.method not in allowed:
            raise ValueError(
                f"method {self.method!r} is not one for purpose {self.purpose!r}; expected one of "
                + ", ".join(repr(m) for m in allowed)
            )
        if self.purpose == "replenish" and self.exclude_days is not None:
            raise ValueError(
                "exclude_days applies to purpose 'discover'; 'replenish' recommends past "
                "purchases by design"
            )
        return self


#: The topic of campaigns that are part of a service (receipts, password resets): a marketing
#: unsubscribe, even from every topic, never stops them.
TRANSACTIONAL = "transactional"

#: What a subscription topic name may look like (it appears in URLs and the preference page).
TOPIC_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class CampaignConfig(_Model):
    """One campaign: who (segments), when (trigger), how (channel, template) and how important."""

    description: str = ""
    enabled: bool = True
    #: Segment names or ids; "*" selects every segment.
    segments: list[str | int] = Field(min_length=1)
    trigger: Trigger
    channel: str
    #: Template base name in the templates folder: NAME.txt.j2 (required) and NAME.html.j2.
    template: str
    #: The subject line, itself a template over the same context.
    subject: str = ""
    #: Higher wins when several campaigns want the same customer in one run.
    priority: int = 0
    #: Only customers for whom this condition holds (see campaigns/conditions.py).
    where: str | None = None
    #: Extra message headers, each a template over the same context.
    headers: dict[str, str] = Field(default_factory=dict)
    #: Frequency caps counting this campaign's own messages.
    caps: list[Cap] = Field(default_factory=list)
    #: Product recommendations for the templates (none: ``recommendations`` is empty).
    recommendations: RecommendationsConfig | None = None
    #: Target only the best customers of the audience by a model's score (see TargetConfig).
    target: TargetConfig | None = None
    #: The subscription topic (``newsletter``, ``offers``): an unsubscribe from a message of this
    #: campaign stops this topic; ``transactional`` campaigns are never stopped by one.
    topic: str = "marketing"
    #: Rewrite the links of each message to signed tracked links, and add an open pixel (needs
    #: ``[tracking]``; a link with ``data-no-track`` or the ``notrack`` filter is left alone).
    track_links: bool = False

    @field_validator("topic")
    @classmethod
    def _topic_name(cls, value: str) -> str:
        if not TOPIC_NAME.match(value):
            raise ValueError(
                "must be lowercase letters, digits, '-' or '_' (at most 64), "
                f"such as 'newsletter', got {value!r}"
            )
        return value

    @field_validator("where")
    @classmethod
    def _parses(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                Condition.parse(value)
            except ConditionError as exc:
                raise ValueError(str(exc)) from None
        return value

    def condition(self) -> Condition | None:
        """The parsed ``where`` condition."""
        return Condition.parse(self.where) if self.where is not None else None

    #: An optional A/B test of this campaign's message (variants replace ``template``).
    experiment: ExperimentConfig | None = None


class Limits(_Model):
    """``[settings.limits]``: the budgets rendering runs under (see docs/configuration.md).

    The defaults are far above what a real template needs; they exist so that one template
    mistake (a loop inside a loop, a recursive macro) fails its messages instead of hanging the
    run.
    """

    #: Time to render one message (all its parts), in seconds.
    render_seconds: float = Field(default=2.0, gt=0)
    #: Characters of one rendered part (subject, text, HTML) and of any string built on the way.
    max_message_chars: int = Field(default=1_000_000, gt=0)
    #: Items one ``range()`` in a template may produce.
    max_range: int = Field(default=100_000, gt=0)
    #: Time to render all the messages of one run, in seconds.
    run_render_seconds: float = Field(default=3600.0, gt=0)
    #: A run fails as a whole (nothing of it is queued) when more than this share of one
    #: campaign's messages fail to render; below it, each failure is stored as render_failed.
    max_render_failure_share: float = Field(default=0.05, ge=0, le=1)

    def render_limits(self) -> RenderLimits:
        """The per-message budget for :func:`templates.make_environment`."""
        # Imported here: loading a config must not import the templates package (pandas).
        from templates.limits import RenderLimits

        return RenderLimits(self.render_seconds, self.max_message_chars, self.max_range)


class Settings(_Model):
    """Rules that apply across campaigns."""

    #: At most this many messages per customer from one run (highest priority first).
    max_messages_per_customer_per_run: int = Field(default=1, ge=1)
    #: Base of the unsubscribe link shown to templates as ``unsubscribe_url``.
    unsubscribe_base_url: str = "https://example.com/unsubscribe"
    #: Frequency caps over all campaigns, such as [{messages = 2, per = "7d"}].
    caps: list[Cap] = Field(default_factory=list)
    #: No delivery in these hours of the customer's own timezone (deferred, not dropped).
    quiet_hours: QuietHours | None = None
    #: A file of customer ids (one per line, or a CSV with a customer_id column) never to contact.
    do_not_contact: Path | None = None
    #: Budgets of time and size for rendering ([settings.limits]).
    limits: Limits = Limits()
    #: Processes that render a campaign of 5,000 messages or more; unset: one per core.
    render_processes: int | None = Field(default=None, ge=1)
    #: Customers per rendering chunk (a worker renders a chunk, the run gathers them in order).
    render_chunk_size: int = Field(default=20_000, ge=1)


class TrackingConfig(_Model):
    """Tracked links, opens, unsubscribes and provider events (``campaign listen``).

    Secrets never live in this file: ``secret_env`` names an environment variable, or
    ``secret_file`` a file, holding the signing keys, one per line or separated by spaces; the
    first signs, every one verifies (rotation: put the new key first and keep the old ones).
    """

    #: Where ``campaign listen`` is reachable from the outside, such as "https://t.example.com".
    base_url: str
    secret_env: str | None = "CAMPAIGN_TRACKING_SECRET"
    #: A file with the signing keys (relative to this file's folder); read before secret_env.
    secret_file: Path | None = None
    #: Make ``secret_file`` (and ``webhook_secret_file``) with a random key on first use when
    #: missing, readable by its owner only (0600): for a demo or one machine. Without it, a
    #: missing file is an error, as a production deployment wants.
    create_secret: bool = False
    #: Add utm_source, utm_medium, utm_campaign (the campaign) and utm_content (the variant) to
    #: tracked links that do not already have them.
    utm: bool = False
    utm_source: str = "campaign"
    utm_medium: str = "email"
    #: A click this soon after the message was sent is counted as a machine (a link scanner).
    machine_click_seconds: float = Field(default=10.0, ge=0)
    #: Store clicks in batches every this many milliseconds instead of one transaction per
    #: click (0: one per click). Faster on PostgreSQL; a click answered within that window is
    #: lost if the process is killed with SIGKILL (a graceful stop stores it).
    write_behind_ms: float = Field(default=0.0, ge=0, le=1000)
    #: Environment variable with the secret that signs the generic event webhook; unset: the
    #: generic webhook is refused.
    webhook_secret_env: str | None = "CAMPAIGN_WEBHOOK_SECRET"
    #: A file with that secret instead (read before webhook_secret_env; see create_secret).
    webhook_secret_file: Path | None = None
    #: Environment variable with the Mailgun webhook signing key; unset: Mailgun is refused.
    mailgun_signing_key_env: str | None = None
    #: Webhook signatures older than this are refused (a replay).
    webhook_tolerance_seconds: float = Field(default=300.0, gt=0)
    #: Environment variable with the API key for ``POST /events`` (the shop's own events).
    events_api_key_env: str | None = None

    @field_validator("base_url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must start with 'http://' or 'https://', got {value!r}")
        return value.rstrip("/")

    @model_validator(mode="before")
    @classmethod
    def _secrets(cls, data: object) -> object:
        return _no_plain_secret(data, ("secret", "webhook_secret"))

    @model_validator(mode="after")
    def _creatable(self) -> TrackingConfig:
        if self.create_secret and self.secret_file is None:
            raise ValueError(
                "create_secret = true needs secret_file (the file to make the signing key in)"
            )
        return self


class Config(_Model):
    """The whole of ``config.toml``."""

    store: StoreConfig = StoreConfig()
    source: Source
    segmentation: SegmentationConfig = SegmentationConfig()
    settings: Settings = Settings()
    templates: Path = Path("templates")
    channels: dict[str, Channel] = Field(min_length=1)
    campaigns: dict[str, CampaignConfig] = Field(default_factory=dict)
    #: Multi-step flows (``[journeys.NAME]``, see docs/journeys.md).
    journeys: dict[str, JourneyConfig] = Field(default_factory=dict)
    #: Designs of experiments run elsewhere and imported (``campaign experiment import``).
    experiments: dict[str, ImportedExperimentConfig] = Field(default_factory=dict)
    #: Tracked links, opens, one-click unsubscribe and provider events (``campaign listen``).
    tracking: TrackingConfig | None = None
    #: The folder of the config file: relative paths are resolved against it (set by the loader).
    root: Path = Path()
    #: The config file itself (set by the loader), so later checks can name its lines.
    file: Path | None = None

    @model_validator(mode="after")
    def _tracking_configured(self) -> Config:
        if self.tracking is None:
            for name, campaign in self.campaigns.items():
                if campaign.track_links:
                    raise ValueError(
                        f"campaigns.{name}.track_links is true but there is no [tracking] "
                        "section; add one with base_url (where `campaign listen` is reachable)"
                    )
            for name, journey in self.journeys.items():
                if journey.track_links:
                    raise ValueError(
                        f"journeys.{name}.track_links is true but there is no [tracking] "
                        "section; add one with base_url (where `campaign listen` is reachable)"
                    )
        return self

    def require_journey(self, name: str) -> JourneyConfig:
        """The journey called ``name``, or a :class:`ConfigError` listing the journeys."""
        if name not in self.journeys:
            known = ", ".join(sorted(self.journeys)) or "none"
            raise ConfigError(f"no journey called {name!r}; journeys in the config: {known}")
        return self.journeys[name]

    def require_campaign(self, name: str) -> CampaignConfig:
        """The campaign called ``name``, or a :class:`ConfigError` listing the campaigns."""
        if name not in self.campaigns:
            known = ", ".join(sorted(self.campaigns)) or "none"
            raise ConfigError(f"no campaign called {name!r}; campaigns in the config: {known}")
        return self.campaigns[name]

    def path(self, value: Path) -> Path:
        """Resolve a path from the config against the config file's folder."""
        return value if value.is_absolute() else self.root / value
