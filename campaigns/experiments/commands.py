"""Workspace-level entry points for the ``campaign`` commands: each opens the store, does one
thing and returns plain results."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from campaigns.config.schema import Config
from campaigns.experiments.analysis import ExperimentAnalysis
from campaigns.experiments.exposures import promote, promoted_variant
from campaigns.experiments.plan import ExperimentPlan, plan_experiment
from campaigns.experiments.report import build_report, find_spec
from campaigns.experiments.spec import HOLDOUT, UnknownExperiment, UnknownVariant, experiments_in
from campaigns.experiments.tracking import ImportResult, Kind, import_events
from store.engine import opened_store


def experiment_report(
    config: Config, experiment: str, control: str | None = None
) -> ExperimentAnalysis:
    """The report of ``experiment`` (configured, or imported with ``campaign track``)."""
    today = datetime.now(UTC).date()
    with opened_store(config.store.url, config.root) as engine:
        return build_report(engine, config, experiment, control, today)


def track(config: Config, kind: Kind, path: Path) -> ImportResult:
    """Import a file of clicks, conversions or exposures into the workspace's store."""
    with opened_store(config.store.url, config.root) as engine:
        return import_events(engine, path, kind)


def import_experiment(config: Config, experiment: str, path: Path) -> ImportResult:
    """Import the exposures of ``experiment`` (run elsewhere) from ``path``; with an
    ``[experiments.NAME]`` design, rows in arms it does not list are refused."""
    design = config.experiments.get(experiment)
    if experiment in experiments_in(config):
        raise UnknownExperiment(
            f"experiment {experiment!r} belongs to a campaign in the config; its exposures are "
            "recorded by 'campaign run', not imported"
        )
    arms = list(design.arms) if design is not None and design.arms is not None else None
    with opened_store(config.store.url, config.root) as engine:
        return import_events(engine, path, "exposures", experiment, arms)


def plan(
    config: Config,
    experiment: str,
    audience: int | None = None,
    baseline: float | None = None,
    effect: float | None = None,
) -> ExperimentPlan:
    """Sample sizes and detectable effects for ``experiment``."""
    with opened_store(config.store.url, config.root) as engine:
        spec = find_spec(engine, config, experiment)
    return plan_experiment(spec, audience, baseline, effect)


def promote_variant(
    config: Config, experiment: str, variant: str | None, at: datetime
) -> str | None:
    """Make ``variant`` the campaign's message from now on (None: undo); return the previous one.

    Only configured experiments can be promoted: they are the ones a campaign sends.
    """
    with opened_store(config.store.url, config.root) as engine:
        spec = find_spec(engine, config, experiment)
        if not spec.configured:
            raise UnknownVariant(
                f"experiment {experiment!r} was imported, not run by a campaign here; "
                "only a configured experiment can be promoted"
            )
        if variant is not None and (variant not in spec.variants or variant == HOLDOUT):
            known = ", ".join(repr(v) for v in spec.variants)
            raise UnknownVariant(
                f"experiment {experiment!r} has no variant {variant!r}; its variants: {known}"
            )
        previous = promoted_variant(engine, spec.name)
        promote(engine, spec.name, variant, at)
        return previous


def simulate(config: Config, experiment: str, seed: int = 0) -> int:
    """Demo shop only: let exposed customers respond by the known model (see :mod:`.simulate`)."""
    from campaigns.experiments.simulate import simulate_responses

    with opened_store(config.store.url, config.root) as engine:
        spec = find_spec(engine, config, experiment)
        return simulate_responses(engine, spec, seed)
