"""Which parts of a campaign move with the passing of time alone, with no new data.

The forecast's simulation (:mod:`campaigns.simulation`) plans everyone at every simulated run when
a condition or target reads the time; a run that finds nothing due (:mod:`campaigns.idle`) trusts
only campaigns whose audience moves with new data.
"""

from __future__ import annotations

from collections.abc import Iterator

from campaigns.conditions import Binary, Call, InList, IsNull, Literal, Name, Node, Unary
from campaigns.config.schema import CampaignConfig

#: Features that change only when transactions arrive: sums and counts over the history.
STEADY_FEATURES = frozenset({"frequency", "monetary"})


def nodes(node: Node) -> Iterator[Node]:
    """Every node of a parsed condition, the root first."""
    yield node
    children: tuple[Node, ...] = ()
    if isinstance(node, Binary):
        children = (node.left, node.right)
    elif isinstance(node, Unary | InList | IsNull):
        children = (node.operand,)
    elif isinstance(node, Call):
        children = node.args
    for child in children:
        yield from nodes(child)


def _read(campaign: CampaignConfig) -> tuple[set[str], bool]:
    """The columns a campaign's condition and target read, and whether it calls days_since."""
    names: set[str] = set()
    clock = False
    condition = campaign.condition()
    if condition is not None:
        for node in nodes(condition.tree):
            if isinstance(node, Name):
                names.add(node.name)
            elif isinstance(node, Call) and node.function == "days_since":
                clock = True
    target = campaign.target
    if target is not None:
        names.add(target.by)
        if isinstance(target.value, str):
            names.add(target.value)
    return names, clock


def reads_the_time(campaign: CampaignConfig) -> bool:
    """Whether the campaign's condition or target reads ``recency`` or calls ``days_since``:
    the columns a forecast moves with its simulated time."""
    names, clock = _read(campaign)
    return clock or "recency" in names


#: Comparisons whose answer, for ``recency`` against a number, changes only where ``recency``
#: crosses that number.
_COMPARISONS = frozenset({"<", "<=", ">", ">=", "==", "!="})


def recency_thresholds(campaign: CampaignConfig) -> tuple[float, ...] | None:
    """The numbers a campaign's condition compares ``recency`` with, when that is the only way
    it reads the time (``recency < 90 and recency >= 30``: (30.0, 90.0)); as recency grows with
    the clock, each customer's answer can change only where it crosses one of them. None when
    the time is read otherwise (``days_since``, ``recency`` in arithmetic or a call, a target);
    empty when it is not read at all."""
    names, clock = _read(campaign)
    if "recency" not in names:
        return () if not clock else None
    if clock or campaign.target is not None:
        return None
    condition = campaign.condition()
    assert condition is not None  # it read recency
    found: set[float] = set()
    compared: set[int] = set()  # ids of the Name nodes inside a comparison with a number
    for node in nodes(condition.tree):
        if not isinstance(node, Binary) or node.op not in _COMPARISONS:
            continue
        for one, other in ((node.left, node.right), (node.right, node.left)):
            if (
                isinstance(one, Name)
                and one.name == "recency"
                and isinstance(other, Literal)
                and isinstance(other.value, int | float)
                and not isinstance(other.value, bool)
            ):
                found.add(float(other.value))
                compared.add(id(one))
    every = [n for n in nodes(condition.tree) if isinstance(n, Name) and n.name == "recency"]
    if any(id(n) not in compared for n in every):
        return None
    return tuple(sorted(found))


def steady(campaign: CampaignConfig, traits: set[str]) -> bool:
    """Whether a campaign's audience, for a given trigger, moves only with new data: it takes every
    segment (segments are re-assigned from features that move with time), and its condition and
    target read only stored ``traits`` and :data:`STEADY_FEATURES` (not recency, tenure, model
    scores or lifetime values, which are computed at the run's time)."""
    if "*" not in campaign.segments:
        return False
    names, clock = _read(campaign)
    return not clock and names <= traits | STEADY_FEATURES
