"""Wall time of the demo workflow from a clean folder, per rule and in total.

    python benchmarks/demo.py --events 40000 1000000 --cores 2

For each size, runs `snakemake --cores N` from clean on the demo config (with `generate.events`
set to that size) in a temporary directory; prints a table and writes benchmarks/results-demo.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from brewflow.pipeline import snakemake_command

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--events", type=int, nargs="+", default=[40000], help="MC events per dataset"
    )
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    rows = [_run(events, args.cores) for events in args.events]
    lines = [
        "# Demo workflow wall time",
        "",
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "",
        "| MC events per dataset | MC datasets | jobs | cores | wall time [s] |",
        "|---:|---:|---:|---:|---:|",
        *rows,
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    (ROOT / "benchmarks" / "results-demo.md").write_text(text)


def _run(events: int, cores: int) -> str:
    """One clean run of the demo workflow; returns its table row."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["generate"]["events"] = events
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "config.yaml").write_text(yaml.safe_dump(config))
        started = time.perf_counter()
        subprocess.run(
            snakemake_command(work, work / "config.yaml", cores, "--quiet"),
            check=True,
            env=env,
            capture_output=True,
        )
        wall = time.perf_counter() - started
        jobs = sum(1 for _ in (work / "logs").rglob("*.log"))
    mc = sum(1 for d in config["datasets"].values() if not d.get("is_data"))
    print(f"{events} MC events per dataset: {wall:.1f} s", flush=True)
    return f"| {events} | {mc} | {jobs} | {cores} | {wall:.1f} |"


if __name__ == "__main__":
    main()
