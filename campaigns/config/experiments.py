"""How an experiment is judged, and ``[experiments.NAME]``: the design of an experiment run
elsewhere whose exposures are imported (``campaign experiment import``).

:class:`DecisionConfig` holds the choices every experiment registers before it starts (how it is
decided, one- or two-sided, which multiplicity correction, guardrails, horizon); a campaign's
``[campaigns.NAME.experiment]`` has them too. An imported experiment's design has no defaults
for what only its owner knows (the arms' planned shares, the baseline rate, the effect worth
finding): what is not given is reported as not given, never invented.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_DURATION = re.compile(r"^\s*(\d+)\s*([dh])\s*$")

#: Guardrail metrics: the share of units that unsubscribed, or complained, after exposure.
GUARDRAILS = ("unsubscribe_rate", "complaint_rate")


def check_duration(value: str) -> str:
    """A positive number of days or hours such as ``"14d"`` or ``"48h"``."""
    found = _DURATION.match(value)
    if not found or int(found.group(1)) == 0:
        raise ValueError(
            f"must be a positive number of days or hours such as '14d' or '48h', got {value!r}"
        )
    return value


class DecisionConfig(BaseModel):
    """The registered decision rules of an experiment (see docs/experiments.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: "sequential": decide at any look from the always-valid statistics; "fixed": decide once,
    #: with the fixed-horizon test, when the horizon is reached.
    decision: Literal["sequential", "fixed"] = "sequential"
    #: "two-sided", or "greater": only an improvement is tested for (a worse arm is never
    #: stopped by the test; it ends inconclusive at the horizon).
    alternative: Literal["two-sided", "greater"] = "two-sided"
    #: Correction across variants: family-wise (Holm) or false discovery rate.
    multiplicity: Literal["holm", "benjamini-hochberg"] = "holm"
    #: Rates that must not get worse: a variant that harms one is never shipped.
    guardrails: list[Literal["unsubscribe_rate", "complaint_rate"]] = Field(
        default=["unsubscribe_rate", "complaint_rate"]
    )
    #: The planned duration from the first exposure ("28d"); by default the horizon is the
    #: planned sample size (from baseline, effect, alpha and power).
    horizon: str | None = None

    @field_validator("horizon")
    @classmethod
    def _horizon(cls, value: str | None) -> str | None:
        return None if value is None else check_duration(value)


class ImportedExperimentConfig(DecisionConfig):
    """``[experiments.NAME]``: the design of an experiment whose exposures were imported."""

    #: Each arm's planned share of units (normalised), for the sample-ratio check.
    arms: dict[str, float] | None = None
    control: str = "control"
    primary_metric: Literal["conversion", "ctr"] = "conversion"
    #: A conversion counts when it happens this long after exposure ("14d", "48h").
    attribution_window: str = "14d"
    #: Control's expected rate, for the planned sample size.
    baseline_rate: float | None = Field(default=None, gt=0, lt=1)
    #: The smallest absolute change in the primary rate worth detecting.
    minimum_detectable_effect: float | None = Field(default=None, gt=0, lt=1)
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    power: float = Field(default=0.8, gt=0.5, lt=1)

    @field_validator("attribution_window")
    @classmethod
    def _window(cls, value: str) -> str:
        return check_duration(value)

    @field_validator("arms")
    @classmethod
    def _shares(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is None:
            return None
        if len(value) < 2:
            raise ValueError("needs at least two arms, such as { control = 0.5, b = 0.5 }")
        bad = [name for name, share in value.items() if not share > 0]
        if bad:
            raise ValueError(f"the share of arm {bad[0]!r} must be positive, got {value[bad[0]]}")
        return value

    @model_validator(mode="after")
    def _control_is_an_arm(self) -> ImportedExperimentConfig:
        if self.arms is not None and self.control not in self.arms:
            names = ", ".join(repr(a) for a in self.arms)
            raise ValueError(
                f"control {self.control!r} is not one of the arms ({names}); set control = 'NAME'"
            )
        return self
