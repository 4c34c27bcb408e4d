"""Time what tracking costs: rendering with tracked links against the same rendering without,
and (``--load``) the endpoint's redirects per second.

    python -m benchmarks.engagement --render 20000
    python -m benchmarks.engagement --load --requests 20000 --store postgresql+psycopg://...

Rendering: ``compose`` of the winback campaign (subject, text part, HTML part extending a layout)
for ``--render`` synthetic customers, with ``track_links`` (every link becomes a signed tracked
link, an open pixel and List-Unsubscribe headers are added) and without, in the same process;
CPU time, best of ``--rounds`` (5) rounds that interleave the three. The target: at most 15% more.

Load: ``campaign listen`` in its own process (uvicorn, one worker) on a store holding one sent
message; ``--clients`` threads in ``--processes`` client processes request its tracked link over
keep-alive connections. Prints redirects per second, p50 and p99 latency, and the events lost
(requests answered 302 whose click is not in the store).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET = 1.15


def render(count: int, rounds: int = 5) -> list[tuple[str, str, str]]:
    from benchmarks.rules import AT, NAMES, config, customers
    from campaigns.compose import compose
    from campaigns.config.schema import TrackingConfig
    from campaigns.engagement.links import Tracker
    from campaigns.engagement.tokens import Signer
    from campaigns.planner import CampaignPlan
    from templates import make_environment

    rows: list[tuple[str, str, str]] = []
    table = customers(count).set_index("customer_id", drop=False).rename_axis(None)
    with tempfile.TemporaryDirectory() as folder:
        cfg = config(1, Path(folder))
    chosen = table[["customer_id", "segment_id"]].assign(window="w")
    segments = {i: {"id": i, "name": n, "profile": {}} for i, n in NAMES.items()}
    env = make_environment(REPO / "templates")
    tracker = Tracker(
        TrackingConfig(base_url="https://t.example.com", utm=True),
        Signer([b"benchmark-signing-key-0123456789"]),
    )
    plain = cfg.campaigns["c00"].model_copy(
        update={"template": "winback", "subject": "We miss you, {{ customer.first_name }}"}
    )
    tracked = plain.model_copy(update={"track_links": True})
    runs = (
        ("without tracking", plain, None),
        ("signed unsubscribe and headers only", plain, tracker),
        ("with tracked links, pixel, signed unsubscribe", tracked, tracker),
    )
    timings = {label: float("inf") for label, _, _ in runs}
    sent = 0
    # Rounds interleave the three, so that load from other processes on a shared machine
    # falls on all of them alike; each keeps its best round.
    for _ in range(rounds):
        for label, campaign, with_tracker in runs:
            job = CampaignPlan("c00", campaign, "due", "w", chosen, chosen)
            start = time.process_time()
            out = compose(
                job, table, segments, env, AT, 1, "https://x.example/u", set(), tracker=with_tracker
            )
            timings[label] = min(timings[label], time.process_time() - start)
            sent = len(out)
    for label, best in timings.items():
        rows.append((f"render winback: {label}", f"{best:.2f} s", f"{sent / best:,.0f}/s"))
    full = timings["with tracked links, pixel, signed unsubscribe"]
    ratio = full / timings["without tracking"]
    verdict = "within" if ratio <= TARGET else "OVER"
    rows.append(("ratio (tracked / untracked)", f"{ratio:.3f}", f"{verdict} the {TARGET} target"))
    links_only = full / timings["signed unsubscribe and headers only"]
    rows.append(
        ("ratio (tracked / signed unsubscribe only)", f"{links_only:.3f}", "the link rewriting")
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--render", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5, help="rendering rounds (best kept)")
    parser.add_argument("--load", action="store_true", help="also time the endpoint under load")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--store", default=None, help="store URL (default: SQLite, temporary)")
    args = parser.parse_args(argv)
    rows = render(args.render, args.rounds)
    if args.load:
        from benchmarks.engagement_load import load

        rows += load(args.requests, args.clients, args.processes, args.store)
    width = max(len(r[0]) for r in rows)
    print(f"{'what':<{width}}  {'time':>9}  result")
    print("-" * (width + 40))
    for what, seconds_text, result in rows:
        print(f"{what:<{width}}  {seconds_text:>9}  {result}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
