"""Planning a big analysis: `snakemake -n` time and memory for 1k, 10k and 30k jobs.

    python benchmarks/planning.py [--eras 4] [--per-era 10 100 300] [--work DIR]

A generated analysis of the demo's shape (its analysis, regions, histograms, systematics, plots,
tables, fit) over ``--eras`` eras with ``--per-era`` datasets each (one data set, the rest MC of
four generators), every dataset one small generated file of ``--events`` events. The largest
size is generated and preprocessed once for real (``snakemake`` on the ``generate`` and
``preprocess`` targets); each size then plans the whole workflow with ``snakemake -n`` (a fresh
process: Python start, Snakefile, DAG of the analyze, merge, scale, stack, table and plot jobs)
in two modes: one job per dataset x systematic (``fuse_systematics: false``) and one fused job
per dataset x chunk group (``events_per_job``, chunks of ``--step`` events). Reports wall time
and peak RSS (``/usr/bin/time``), the jobs planned, the growth exponent between sizes
(time ~ jobs^k), and the incremental cases: preprocessing a dataset of ``--files`` files once,
again (every record cached), and after adding one file. Writes
``benchmarks/results-planning.{md,json}``.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from brewflow.pipeline import snakemake_command

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import replace_section

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "benchmarks"
GENERATORS = [  # (generator, process, cross section in pb), cycled over an era's MC datasets
    ("dy_m50to100", "dy", 3852.2),
    ("ttbar", "top", 88.29),
    ("ww", "diboson", 12.18),
    ("dy_m100to200", "dy", 199.18),
]
FIRST_ERA = 2015
SECTION = "## Planning a big analysis"


def analysis_config(eras: int, per_era: int, events: int, step: int) -> dict:
    """The demo config over ``eras`` x ``per_era`` generated datasets (one file each)."""
    demo = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config = copy.deepcopy(demo)
    template = demo["eras"]["2018"]
    names = [str(FIRST_ERA + i) for i in range(eras)]
    config["eras"] = {
        era: {
            **template,
            "label": era,
            "luminosity": 0.02,
            "lumi_mask": f"results/generated/golden_{era}.json",
            "corrections": {
                "pileup": {
                    "file": f"results/generated/corrections/demo_{era}.json.gz",
                    "name": "demo_pileup",
                }
            },
        }
        for era in names
    }
    generate = config["generate"]
    generate.update(events=events, corrections={e: config["eras"][e]["corrections"]["pileup"]
                    ["file"] for e in names}, pileup=dict.fromkeys(names, 4.2))  # fmt: skip
    for key in ("bdt",):
        generate.pop(key, None)
    for key in ("models", "searches", "hepdata", "skims"):
        config.pop(key, None)
    config["histograms"].pop("bdt", None)
    config["histograms"].pop("mll_search", None)
    styles = {d.get("process"): d for d in demo["datasets"].values() if "label" in d}
    datasets: dict[str, dict] = {}
    for era in names:
        datasets[f"data_{era}"] = {"files": [f"results/generated/data_{era}/data_{era}_0.root"],
                                   "is_data": True, "era": era, "process": "data",
                                   "label": "Data", "generator": "data"}  # fmt: skip
        for i in range(per_era - 1):
            generator, process, xsec = GENERATORS[i % len(GENERATORS)]
            name = f"{process}_{era}_{i:03d}"
            datasets[name] = {"files": [f"results/generated/{name}/{name}_0.root"],
                              "era": era, "xsec": xsec, "process": process,
                              "generator": generator}  # fmt: skip
    for process in {d["process"] for d in datasets.values()} - {"data"}:
        first = next(d for d in datasets.values() if d["process"] == process)
        style = styles.get(process, {})
        first.update({k: style[k] for k in ("label", "color") if k in style})
    config["datasets"] = datasets
    config["step_size"] = step
    # the top-level payloads (b-tag, jets, ...) are the demo's 2018 file: the first era's here
    text = json.dumps(config).replace("demo_2018.json.gz", f"demo_{names[0]}.json.gz")
    return json.loads(text)


def subset(config: dict, per_era: int, *, fused: bool, events_per_job: int | None) -> dict:
    """``config`` with the first ``per_era`` datasets of each era, planned unfused or fused."""
    out = copy.deepcopy(config)
    kept: dict[str, dict] = {}
    for era in out["eras"]:
        names = [n for n, d in out["datasets"].items() if d["era"] == era][:per_era]
        kept.update({n: out["datasets"][n] for n in names})
    out["datasets"] = kept
    out["fuse_systematics"] = fused
    out["events_per_job"] = events_per_job
    return out


def _run(command: list[str], cwd: Path) -> tuple[float, int, str]:
    """``(wall seconds, peak RSS in MB, output)`` of a fresh process (GNU time)."""
    report = cwd / "time.txt"
    timed = ["/usr/bin/time", "-f", "%e %M", "-o", str(report), *command]
    done = subprocess.run(timed, cwd=cwd, capture_output=True, text=True, env=_env())
    if done.returncode:
        tail = done.stdout[-3000:] + done.stderr[-3000:]
        raise RuntimeError(f"{' '.join(command)} failed:\n{tail}")
    wall, rss = report.read_text().split()[-2:]
    return float(wall), int(rss) // 1024, done.stdout + done.stderr


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def _jobs(output: str) -> dict[str, int]:
    """Jobs per rule from the job stats table of ``snakemake -n``."""
    table = output[output.rfind("Job stats:") :]
    rows = re.findall(r"^(\S+)\s+(\d+)\s*$", table, flags=re.M)
    return {rule: int(count) for rule, count in rows}


def prepare(work: Path, config: dict, cores: int) -> tuple[dict, dict]:
    """Generate the files of ``config`` in ``work``, then preprocess every dataset (for real)
    with the analysis config (``config`` without its ``generate`` block: plain files, as a
    user's); returns it and what it took."""
    started = time.perf_counter()
    path = work / "generate.yaml"
    path.write_text(yaml.safe_dump(config))
    _run(snakemake_command(work, path, cores, "generate", "--quiet", "rules"), work)
    analysis = copy.deepcopy(config)
    analysis.pop("generate")
    for dataset in analysis["datasets"].values():
        dataset.pop("generator")
    path = work / "full.yaml"
    path.write_text(yaml.safe_dump(analysis))
    targets = [f"results/preprocess/{d}.json" for d in config["datasets"]]
    _run(snakemake_command(work, path, cores, *targets, "--quiet", "rules"), work)
    seconds = time.perf_counter() - started
    print(f"generated and preprocessed {len(targets)} datasets: {seconds:.0f} s", flush=True)
    return analysis, {"datasets": len(targets), "seconds": round(seconds, 1)}


def plan(work: Path, config: dict, label: str) -> dict:
    """One ``snakemake -n`` of ``config`` in ``work``: time, peak RSS, jobs per rule."""
    path = work / f"{label}.yaml"
    path.write_text(yaml.safe_dump(config))
    wall, rss, out = _run(snakemake_command(work, path, 1, "-n"), work)
    jobs = _jobs(out)
    if jobs.get("preprocess") or jobs.get("generate"):
        raise RuntimeError(f"{label}: the dry run plans preprocessing again: {jobs}")
    total = jobs.pop("total", sum(jobs.values()))
    analyze = sum(n for rule, n in jobs.items() if rule.startswith("analyze"))
    return {"label": label, "datasets": len(config["datasets"]), "jobs": total,
            "analyze_jobs": analyze, "seconds": wall, "rss_mb": rss}  # fmt: skip


def incremental(work: Path, files: int, events: int) -> dict:
    """Preprocessing a dataset of ``files`` files: from scratch, again (records cached), and
    after one file more (each a fresh ``brewflow preprocess`` process)."""
    from brewflow.demo.generate import generate_mc

    folder = work / "incremental"
    folder.mkdir(exist_ok=True)
    paths = [str(folder / f"f{i:04d}.root") for i in range(files + 1)]
    for i, path in enumerate(paths):  # one file at a time: each its own events and UUID
        generate_mc("ttbar", [path], events, seed=1000 + i)
    config = analysis_config(1, 2, events, events)
    for key in ("shapes", "fit", "generate"):  # one MC process
        config.pop(key)
    config["datasets"] = {"big": {"files": paths[:files], "xsec": 1.0, "process": "top",
                                  "era": str(FIRST_ERA)}}  # fmt: skip
    out = {}
    for label, used in (("from scratch", files), ("again", files), ("one file added", files + 1)):
        config["datasets"]["big"]["files"] = paths[:used]
        path = folder / "config.json"
        path.write_text(json.dumps(config))
        command = [sys.executable, "-m", "brewflow", "preprocess", "--config", str(path),
                   "--dataset", "big", "--output", str(folder / "big.json")]  # fmt: skip
        wall, rss, _ = _run(command, work)
        out[label] = {"files": used, "seconds": wall, "rss_mb": rss}
        print(f"preprocess {label}: {used} files, {wall:.1f} s", flush=True)
    return out


def exponent(rows: list[dict]) -> float | None:
    """``k`` of time ~ jobs^k between the smallest and the largest size."""
    if len(rows) < 2 or rows[0]["jobs"] == rows[-1]["jobs"]:
        return None
    return math.log(rows[-1]["seconds"] / rows[0]["seconds"]) / math.log(
        rows[-1]["jobs"] / rows[0]["jobs"]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eras", type=int, default=4)
    parser.add_argument("--per-era", type=int, nargs="+", default=[10, 100, 300])
    parser.add_argument("--events", type=int, default=460, help="MC events per dataset")
    parser.add_argument("--step", type=int, default=20, help="events per chunk")
    parser.add_argument("--files", type=int, default=1000, help="files of the incremental case")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--work", type=Path, help="keep the generated analysis here (reused)")
    parser.add_argument("--output", type=Path, default=HERE / "results-planning.md")
    args = parser.parse_args()
    sizes = sorted(args.per_era)
    work = args.work or Path(tempfile.mkdtemp(prefix="brewflow-planning-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        config = analysis_config(args.eras, sizes[-1], args.events, args.step)
        config, prepared = prepare(work, config, args.cores)
        rows: dict[str, list[dict]] = {"unfused": [], "fused": []}
        for per_era in sizes:
            for mode, fused, per_job in (("unfused", False, None), ("fused", True, args.step)):
                row = plan(work, subset(config, per_era, fused=fused, events_per_job=per_job),
                           f"{mode}-{per_era}")  # fmt: skip
                rows[mode].append(row)
                print(json.dumps(row), flush=True)
        added = incremental(work, args.files, 200) if args.files else {}
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    results = {"machine": _machine(), "command": " ".join(sys.argv[1:]), "prepared": prepared,
               "plans": rows, "incremental": added,
               "exponent": {m: exponent(r) for m, r in rows.items()}}  # fmt: skip
    args.output.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    text = render(results, args)
    args.output.write_text(text)
    replace_section(HERE / "results.md", SECTION, text.replace("# Planning", "## Planning", 1))
    print(text)


def _machine() -> str:
    return (f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"snakemake {_version('snakemake')}")  # fmt: skip


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def render(results: dict, args: argparse.Namespace) -> str:
    lines = [
        "# Planning a big analysis",
        "",
        f"`python benchmarks/planning.py {results['command']}`".replace(" `", "`"),
        f"machine: {results['machine']}",
        "",
        f"The demo analysis over {args.eras} eras, every dataset one generated file of "
        f"{args.events} events (chunks of {args.step}); generated and preprocessed once for real "
        f"({results['prepared']['datasets']} datasets, {results['prepared']['seconds']:.0f} s). "
        "Each row: one `snakemake -n` of the whole workflow in a fresh process (wall time and "
        "peak RSS by `/usr/bin/time`).",
        "",
        "| mode | datasets | jobs | of which analyze | `snakemake -n` [s] | peak RSS [MB] |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for mode, rows in results["plans"].items():
        for r in rows:
            lines.append(f"| {mode} | {r['datasets']:,} | {r['jobs']:,} | {r['analyze_jobs']:,} "
                         f"| {r['seconds']:.1f} | {r['rss_mb']:,} |")  # fmt: skip
    lines += ["", "Growth (time ~ jobs^k, smallest to largest size): " + ", ".join(
        f"{m}: k = {k:.2f}" for m, k in results["exponent"].items() if k is not None)]  # fmt: skip
    if results["incremental"]:
        lines += [
            "",
            "Preprocessing one dataset (`brewflow preprocess`, a fresh process):",
            "",
            "| case | files | wall [s] | peak RSS [MB] |",
            "|---|---:|---:|---:|",
        ]
        for label, r in results["incremental"].items():
            lines.append(f"| {label} | {r['files']:,} | {r['seconds']:.1f} | {r['rss_mb']:,} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
