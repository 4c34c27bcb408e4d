"""CPU time of ``campaign --help`` and ``campaign status``, against a bare Python start.

    python -m benchmarks.startup            # 7 runs of each; the median is reported
    python -m benchmarks.startup --runs 15

Each command runs in a fresh process; its CPU time (user + system) comes from the kernel's
accounting of finished children (``RUSAGE_CHILDREN``), so a busy machine's waiting is not
counted, only the work. ``status`` reads a demo store of 2,000 customers after one run. The
target is 0.3 s of CPU for each; the ratio is to ``python -c pass`` measured in the same process.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

TARGET_SECONDS = 0.3


def cpu_seconds(command: list[str], cwd: Path) -> float:
    """User plus system CPU time of one run of ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def median_cpu(command: list[str], cwd: Path, runs: int) -> float:
    return statistics.median(cpu_seconds(command, cwd) for _ in range(runs))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    campaign = shutil.which("campaign") or sys.exit("the campaign command is not installed")
    with tempfile.TemporaryDirectory() as folder:
        workspace = Path(folder) / "ws"
        subprocess.run([campaign, "init", str(workspace)], check=True, stdout=subprocess.DEVNULL)
        config = workspace / "config.toml"
        config.write_text(config.read_text().replace("customers = 5000", "customers = 2000"))
        subprocess.run(
            [campaign, "run", "--at", "2026-11-23T12:00"],
            cwd=workspace,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        baseline = median_cpu([sys.executable, "-c", "pass"], workspace, args.runs)
        rows = [
            ("python -c pass", baseline),
            ("campaign --help", median_cpu([campaign, "--help"], workspace, args.runs)),
            ("campaign status", median_cpu([campaign, "status"], workspace, args.runs)),
            (
                "campaign status --format json",
                median_cpu([campaign, "status", "--format", "json"], workspace, args.runs),
            ),
        ]
    print(f"| command | CPU seconds (median of {args.runs}) | x bare Python | target |")
    print("|---|---:|---:|---:|")
    for name, seconds in rows:
        target = "" if name.startswith("python") else f"< {TARGET_SECONDS} s"
        print(f"| `{name}` | {seconds:.3f} | {seconds / baseline:.1f} | {target} |")


if __name__ == "__main__":
    main()
