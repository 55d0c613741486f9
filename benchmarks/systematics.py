"""Systematics in one graph: wall time of nominal + N variations vs nominal alone, and graph
build time and size as variations grow.

    python benchmarks/systematics.py --events 400000 --threads 2

Generates demo ttbar events (with the demo correction payloads) in a temporary folder, then,
in this process and on the same files:

1. wall time of the nominal alone, of nominal + 20 variations in ONE graph (16 weight variations
   and 4 object variations: JES, JER), and of the same 21 as separate graphs (what one job per
   systematic costs in total, job start-up not included);
2. for 0, 10, 50 variations of weight type and of object (JES-like) type: time to build the
   graph and optimize it, and its layer count before/after optimization.

Prints tables and writes benchmarks/results-systematics.md.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import dask
import yaml

from brewflow import preprocess
from brewflow.config import validate
from brewflow.demo_payloads import write_demo_corrections
from brewflow.generate import generate_mc
from brewflow.inspect import graph_report
from brewflow.nanoevents import lazy_events
from brewflow.runner import build, run, systematics_for

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = [
    *("ps_isr", "ps_fsr", "pileup", "muon_id", "electron_id"),
    *("btag_hf", "btag_lf", "btag_cferr1"),
]
SHAPES = ["jes", "jer"]


def _config(work: Path, events: int) -> dict:
    config = copy.deepcopy(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()))
    payload = str(work / "demo.json.gz")
    for spec in [*config["corrections"].values(), config["jets"]]:
        spec["file"] = payload
    files = [str(work / f"ttbar_{i}.root") for i in range(4)]
    config["datasets"] = {"ttbar": {**config["datasets"]["ttbar"], "files": files}}
    del config["datasets"]["ttbar"]["generator"]
    config["systematics"] = {k: config["systematics"][k] for k in WEIGHTS + SHAPES}
    config["step_size"] = max(events // 8, 1)
    config.pop("generate")
    write_demo_corrections(payload)
    generate_mc("ttbar", files, events, seed=1)
    return validate(config)


def _with_variations(config: dict, kind: str, n: int) -> dict:
    """``config`` with ``n`` variations (n/2 systematics) of one kind: flat-scale weights or
    JES-like object variations (copies of the demo JES source under new names)."""
    out = copy.deepcopy(config)
    spec = {"type": "scale", "up": 1.01, "down": 0.99} if kind == "weight" else {"type": "jes"}
    out["systematics"] = {f"s{i}": dict(spec) for i in range(n // 2)}
    return validate(out)


def _timed(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400_000, help="ttbar events")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=3, help="median of this many runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        config = _config(work, args.events)
        files = preprocess.preprocess(config, "ttbar")["files"]
        variations = [s for s in _systematics(config) if s != "nominal"][:20]
        assert len(variations) == 20, variations

        def once(systematics):
            return lambda: run(config, "ttbar", systematics, files, workers=args.threads)

        once(["nominal"])()  # warm the file cache and imports
        nominal = _timed(once(["nominal"]), args.repeat)
        fused = _timed(once(["nominal", *variations]), args.repeat)
        separate = _timed(lambda: [once([s])() for s in ["nominal", *variations]], 1)
        builds = []
        for kind in ("weight", "object"):
            for n in (0, 10, 50):
                varied = _with_variations(config, kind, n)
                builds.append((kind, n, *_build(varied, files, args.repeat)))
    lines = [
        "# Systematics in one graph",
        "",
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {args.events} demo ttbar events in 4 files, "
        f"{args.threads} threads, median of {args.repeat}",
        "",
        "`python benchmarks/systematics.py "
        f"--events {args.events} --threads {args.threads} --repeat {args.repeat}`",
        "",
        "| case | wall time [s] | ratio to nominal |",
        "|---|---:|---:|",
        f"| nominal alone | {nominal:.2f} | 1.00 |",
        f"| nominal + 20 variations, one graph | {fused:.2f} | {fused / nominal:.2f} |",
        f"| nominal + 20 variations, 21 graphs | {separate:.2f} | {separate / nominal:.2f} |",
        "",
        "The 20 variations: 16 weight (ps_isr, ps_fsr, pileup, muon_id, electron_id, btag_hf, "
        "btag_lf, btag_cferr1) and 4 object variations (jes, jer: the analysis reruns on "
        "varied jets and MET).",
        "",
        "| variations | type | build + optimize [s] | layers before | layers after |",
        "|---:|---|---:|---:|---:|",
        *(f"| {n} | {kind} | {t:.2f} | {a} | {b} |" for kind, n, t, a, b in builds),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    (ROOT / "benchmarks" / "results-systematics.md").write_text(text)


def _systematics(config: dict) -> list[str]:
    return systematics_for(config, "ttbar")


def _build(config: dict, files: list, repeat: int) -> tuple[float, int, int]:
    """Median time to build and optimize the graph of all variations; layers before/after."""
    systematics = _systematics(config)
    paths = {f["path"]: f["tree"] for f in files}

    def make():
        events = lazy_events(paths, step_size=config["step_size"])
        graph = build(config, "ttbar", systematics, events)
        dask.optimize(graph)
        return graph

    seconds = _timed(make, repeat)
    report = graph_report(make())
    return seconds, report["layers_before"], report["layers_after"]


if __name__ == "__main__":
    main()
