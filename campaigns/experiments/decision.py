"""The decision procedure: one rule per experiment, every arm judged, and the verdict in words.

=============  ===========================  ====================================================
registered     when an arm is decided       decision
=============  ===========================  ====================================================
sequential     at any look                  the always-valid p (adjusted across variants) is
(default)                                   below alpha: ``ship`` if the always-valid interval
                                            is above 0, ``stop`` if below
               horizon reached, undecided   ``inconclusive``: no change the test can find
               before the horizon           ``continue``
fixed          before the horizon           ``continue`` (no decision, however significant)
               once, at the horizon         the fixed-horizon p (adjusted) below alpha and its
                                            interval clear of 0: ``ship`` / ``stop``; else
                                            ``inconclusive``
any            sample ratio mismatch        ``inconclusive`` for every arm: the split is broken
any            guardrail harmed             never ``ship``: a winner that harms one is ``stop``
=============  ===========================  ====================================================

A decision never mixes the two tests: the sequential rule never looks at the fixed-horizon p and
the fixed rule never at the always-valid one, so the false-decision rate stays at alpha however
often the report is read (measured by :mod:`.operating`). Pure functions; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from campaigns.experiments.stats import Interval

SHIP = "ship"
STOP = "stop"
CONTINUE = "continue"
INCONCLUSIVE = "inconclusive"
ACTIONS = (SHIP, STOP, CONTINUE, INCONCLUSIVE)

SEQUENTIAL = "sequential"
FIXED = "fixed"

#: The names of the tests behind a decision, as the report and its JSON give them.
ALWAYS_VALID = "always-valid p (mixture SPRT)"
FIXED_HORIZON = "fixed-horizon p"


@dataclass(frozen=True)
class ArmDecision:
    """What to do with one arm, and why.

    ``basis`` names the test that decided (None when nothing did); ``p_value`` is that test's
    multiplicity-adjusted p and ``ci`` its interval at the matching level, for the lift in
    absolute points (as a fraction).
    """

    action: str
    reason: str
    basis: str | None = None
    p_value: float | None = None
    ci: Interval | None = None
    lift: float | None = None


def significant(p_value: float | None, ci: Interval | None, alpha: float) -> int:
    """+1 when the test finds the arm better, -1 worse, 0 neither.

    Both the p-value and its interval must agree (they do for tests whose interval inverts the
    test; for Fisher's exact test beside a score interval they may not, and then nothing is
    decided).
    """
    if p_value is None or ci is None or not p_value < alpha:
        return 0
    if ci.low > 0:
        return 1
    if ci.high < 0:
        return -1
    return 0


def decide_arm(
    *,
    mode: str,
    alpha: float,
    horizon_reached: bool,
    srm_mismatch: bool,
    design_missing: bool,
    sequential_p: float | None,
    sequential_ci: Interval | None,
    fixed_p: float | None,
    fixed_ci: Interval | None,
    lift: float | None,
    harmed_guardrails: tuple[str, ...] = (),
) -> ArmDecision:
    """The decision for one variant against control (see the table in the module docstring)."""
    if srm_mismatch:
        return ArmDecision(INCONCLUSIVE, "sample ratio mismatch: the split is broken")
    if design_missing:
        return ArmDecision(INCONCLUSIVE, "no design registered: nothing to decide against")
    if mode == FIXED:
        if not horizon_reached:
            return ArmDecision(CONTINUE, "the fixed-horizon test decides only at the horizon")
        basis, p, ci = FIXED_HORIZON, fixed_p, fixed_ci
    else:
        basis, p, ci = ALWAYS_VALID, sequential_p, sequential_ci
    direction = significant(p, ci, alpha)
    if direction == 0:
        if mode == FIXED or horizon_reached:
            return ArmDecision(
                INCONCLUSIVE, "no detectable change by the horizon", basis, p, ci, lift
            )
        return ArmDecision(CONTINUE, "not yet significant", basis, p, ci, lift)
    if direction < 0:
        return ArmDecision(STOP, "significantly worse than control", basis, p, ci, lift)
    if harmed_guardrails:
        names = " and ".join(harmed_guardrails)
        return ArmDecision(STOP, f"better, but it harms the {names}", basis, p, ci, lift)
    return ArmDecision(SHIP, "significantly better than control", basis, p, ci, lift)
