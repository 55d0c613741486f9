"""Start-up budget: how long a user waits for brewflow's small commands and Snakemake's planning.

Every figure is a fresh process (median of ``--repeat``), run by the Python of ``--python``
(default: this one), on a finished demo run in ``--workdir``:

- ``brewflow --version`` and ``brewflow --help``;
- ``snakemake -n`` with nothing to do (the DAG build: the Snakefile and what it imports);
- the small jobs of the workflow (merge, scale, stack, cutflow, summary) as the rules run them,
  writing to a temporary folder, so the run stays up to date;
- with ``--quickstart``: the README's quick start (``snakemake --cores 2`` in a fresh clone of
  ``--repo``, after the install), once.

Usage (a quick-start environment: ``pip install -e .``, no cluster plugins)::

    python benchmarks/startup.py --workdir /path/to/finished/demo/run [--quickstart]

``--pythonpath SRC`` measures another checkout's package with the same environment (e.g. the
code before a change: ``git worktree add /tmp/before <rev>`` and ``--pythonpath
/tmp/before/src --workdir /tmp/before``). Writes ``benchmarks/results-startup.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SECTION = "# brewflow start-up"
BUDGET = {
    "brewflow --version": 0.3,
    "brewflow --help": 0.3,
    "snakemake -n (nothing to do)": 2.0,
    "merge": 0.8,
    "scale": 0.8,
    "stack": 0.8,
    "cutflow": 0.8,
    "summary": 0.8,
    "quick start (snakemake --cores 2)": 180.0,
}


def _timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed


def _median(command: list[str], cwd: Path, env: dict[str, str], repeat: int) -> float:
    _timed(command, cwd, env)  # warm the file cache and the bytecode
    return statistics.median(_timed(command, cwd, env) for _ in range(repeat))


def _small_jobs(workdir: Path, out: Path, brewflow: list[str]) -> dict[str, list[str]]:
    """The small jobs' commands for the first dataset, process and region of the run."""
    resolved = json.loads((workdir / ".brewflow" / "config.json").read_text())
    config = resolved.get("config", resolved)  # the workflow's resolved config
    dataset = next(d for d, s in config["datasets"].items() if not s["is_data"])
    process = config["datasets"][dataset].get("process", dataset)
    region = next(iter(config["regions"]))
    processes = sorted(str(p) for p in (workdir / "results" / "stack").glob("*.json"))
    datasets = sorted(str(p) for p in (workdir / "results" / "scale").glob("*.json"))
    members = [
        f"results/scale/{d}.json"
        for d, s in config["datasets"].items()
        if s.get("process", d) == process
    ]
    parts = sorted(str(p) for p in (workdir / "results" / "analyze" / dataset).rglob("*.json"))
    return {
        "merge": [*brewflow, "merge", "--inputs", *parts, "--preprocess",
                  f"results/preprocess/{dataset}.json", "--output", str(out / "merge.json")],
        "scale": [*brewflow, "scale", "--config", ".brewflow/config.json", "--dataset", dataset,
                  "--input",
                  f"results/merge/{dataset}.json", "--preprocess",
                  f"results/preprocess/{dataset}.json", "--output", str(out / "scale.json")],
        "stack": [*brewflow, "stack", "--process", process, "--inputs", *members,
                  "--output", str(out / "stack.json")],
        "cutflow": [*brewflow, "cutflow", "--region", region, "--processes", *processes,
                    "--datasets", *datasets, "--output-stem", str(out / region)],
        "summary": [*brewflow, "summary", "--config", ".brewflow/config.json", "--inputs",
                    *processes, "--results", "results", "--output-dir", str(out / "summary")],
    }  # fmt: skip


def _quickstart(repo: Path, env: dict[str, str], snakemake: str) -> float:
    with tempfile.TemporaryDirectory(prefix="brewflow-quickstart-") as tmp:
        clone = Path(tmp) / "brewflow"
        subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
        return _timed([snakemake, "--cores", "2"], clone, env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, required=True, help="a finished demo run")
    parser.add_argument("--python", default=sys.executable, help="the environment to measure")
    parser.add_argument("--pythonpath", help="measure this checkout's src/ instead")
    parser.add_argument("--repo", type=Path, default=HERE.parent, help="clone for --quickstart")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quickstart", action="store_true", help="also time the quick start")
    parser.add_argument("--label", default="", help="a name for this measurement (e.g. before)")
    parser.add_argument("--output", type=Path, default=HERE / "results-startup.json")
    args = parser.parse_args(argv)

    bindir = Path(args.python).parent
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    if args.pythonpath:
        env["PYTHONPATH"] = str(Path(args.pythonpath).resolve())
    brewflow = [str(bindir / "brewflow")]
    snakemake = str(bindir / "snakemake")
    workdir = args.workdir.resolve()
    figures: dict[str, float] = {}
    figures["brewflow --version"] = _median([*brewflow, "--version"], workdir, env, args.repeat)
    figures["brewflow --help"] = _median([*brewflow, "--help"], workdir, env, args.repeat)
    figures["snakemake -n (nothing to do)"] = _median(
        [snakemake, "-n"], workdir, env, max(3, args.repeat // 2)
    )
    with tempfile.TemporaryDirectory(prefix="brewflow-startup-") as tmp:
        for name, command in _small_jobs(workdir, Path(tmp), brewflow).items():
            figures[name] = _median(command, workdir, env, args.repeat)
            print(f"{name:32s} {figures[name]:7.2f} s", flush=True)
    if args.quickstart:
        figures["quick start (snakemake --cores 2)"] = _quickstart(args.repo, env, snakemake)

    previous = json.loads(args.output.read_text()) if args.output.is_file() else {}
    label = args.label or "now"
    previous[label] = {
        "figures": figures,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "cluster plugins installed": subprocess.run(
            [args.python, "-c", "import snakemake_executor_plugin_slurm"], capture_output=True
        ).returncode
        == 0,
    }
    args.output.write_text(json.dumps(previous, indent=1) + "\n")
    _table(previous, args.output.with_suffix(".md"))
    for name, value in figures.items():
        print(f"{name:32s} {value:7.2f} s   (budget {BUDGET[name]:g} s)")
    return 0


def _table(measurements: dict, path: Path) -> None:
    labels = list(measurements)
    lines = [
        SECTION,
        "",
        "`python benchmarks/startup.py --workdir <finished demo run> [--quickstart]`: fresh "
        "processes, median of `--repeat` runs (5 before, 7 after; snakemake -n: half as many), the "
        "quick-start environment "
        "(`pip install -e .`).",
        "",
        "| | " + " | ".join(labels) + " | budget |",
        "|---|" + "---:|" * (len(labels) + 1),
    ]
    for name, budget in BUDGET.items():
        row = [measurements[lab]["figures"].get(name) for lab in labels]
        cells = [f"{v:.2f} s" if v is not None else "" for v in row]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {budget:g} s |")
    path.write_text("\n".join(lines) + "\n")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from report import replace_section

    replace_section(path.with_name("results.md"), "#" + SECTION,  # the benchmarks' report
                    "\n".join(["#" + lines[0], *lines[1:]]))  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
