"""Experiments: deterministic assignment, exposures, tracking, attribution and statistics.

The run calls :func:`assign_variants`, :func:`template_for` and :func:`record_exposures`; the CLI
calls :func:`build_report`, :func:`import_events` and :func:`promote`. The statistics modules
(:mod:`.stats`, :mod:`.power`, :mod:`.sequential`, :mod:`.bayes`, :mod:`.cuped`) are pure
functions of sufficient statistics.
"""

from campaigns.experiments.analysis import ExperimentAnalysis, analyse
from campaigns.experiments.assignment import assign_variants, unit_points
from campaigns.experiments.attribution import ExperimentData, aggregate
from campaigns.experiments.exposures import (
    decisions,
    promote,
    promoted_variant,
    record_exposures,
    stored_experiments,
)
from campaigns.experiments.plan import ExperimentPlan, plan_experiment
from campaigns.experiments.report import build_report, find_spec, to_json
from campaigns.experiments.sending import (
    CampaignArms,
    campaign_arms,
    exposures_frame,
    record_campaign_exposures,
    variant_context,
)
from campaigns.experiments.spec import (
    HOLDOUT,
    ExperimentSpec,
    UnknownExperiment,
    UnknownVariant,
    experiment_spec,
    experiment_warnings,
    experiments_in,
    template_for,
)
from campaigns.experiments.tracking import BadRow, ImportResult, import_events

__all__ = [
    "HOLDOUT",
    "BadRow",
    "CampaignArms",
    "ExperimentAnalysis",
    "ExperimentData",
    "ExperimentPlan",
    "ExperimentSpec",
    "ImportResult",
    "UnknownExperiment",
    "UnknownVariant",
    "aggregate",
    "analyse",
    "assign_variants",
    "build_report",
    "campaign_arms",
    "decisions",
    "experiment_spec",
    "experiment_warnings",
    "experiments_in",
    "exposures_frame",
    "find_spec",
    "import_events",
    "plan_experiment",
    "promote",
    "promoted_variant",
    "record_campaign_exposures",
    "record_exposures",
    "stored_experiments",
    "template_for",
    "to_json",
    "unit_points",
    "variant_context",
]
