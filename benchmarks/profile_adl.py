"""Where the time of ``brewflow adl`` goes, next to the read limit: the profile behind the ADL
targets of ``benchmarks/run.py`` (issue 30), in ms per million events.

    python benchmarks/profile_adl.py                      # nano_dy 400k (ZLIB), generated 1M
    python benchmarks/profile_adl.py --files a.root b.root --label mine

1. The whole process (fresh processes, median of ``--repeat``): ``brewflow adl`` (2 forked
   workers) by phase (start-up and imports, open, build, optimize, compute) next to the read
   limit (uproot opening the files and reading exactly the needed columns, 2 threads).
2. One core, the optimized graph's partitions one after the other, as a forked worker computes
   them (a fresh process): the parse of the needed branches, the reader's tasks (read and
   decompress), the other tasks (queries and fills, fused by dask-awkward) and dask's own
   overhead (the partitions' time outside every task).
3. One core, the eager events of each partition (columns read beforehand): each step of the
   queries (``brewflow.adl``'s helpers), best of 3; "fills and the rest" is the whole of
   ``adl.histograms`` less the steps.

Writes ``results-profile.{md,json}`` next to this script; about 3 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run  # noqa: E402  (benchmarks/run.py: measure, job, make_inputs)

WORKERS, STEP = 2, 100_000


def _job_profile(files: list[str]) -> dict:
    """Parts 2 and 3 in this (fresh) process."""
    import time

    import awkward as ak
    import dask.local
    import numpy as np
    from dask.callbacks import Callback
    from dask.optimization import cull

    from brewflow import adl
    from brewflow.forked import optimized
    from brewflow.nanoevents import trees
    from brewflow.nanoevents.reader import eager_events, lazy_events

    events = lazy_events({f: "Events" for f in files}, step_size=STEP)
    work = optimized(adl.histograms(events, partitioned=True))
    columns = sorted(adl.inspect(files)["columns"])
    started = time.perf_counter()
    for f in files:  # what the first task of each file would do: parse the needed branches
        trees.open_tree(f, "Events", branches=columns)
    graph: dict[str, float] = {"parse": time.perf_counter() - started, "read": 0.0, "rest": 0.0}
    begun: dict = {}

    def pre(key, dsk, state) -> None:
        begun[key] = time.perf_counter()

    def post(key, result, dsk, state, worker) -> None:
        name = key[0] if isinstance(key, tuple) else key
        part = "read" if str(name).startswith("from-nanoaod") else "rest"
        graph[part] += time.perf_counter() - begun[key]

    wall = 0.0
    for i in range(len(next(iter(work.keys.values())))):
        wanted = [[k[i] for k in work.keys.values()]]
        needed, _ = cull(work.graph, wanted[0])
        started = time.perf_counter()
        with Callback(pretask=pre, posttask=post):
            dask.local.get_sync(needed, wanted)
        wall += time.perf_counter() - started
    graph["dask"] = wall - graph["read"] - graph["rest"]

    steps = dict.fromkeys(
        ["MET, jets, muons: float64 records", "q1-q4: flatten, masks", "q5: muon pairs (vector)",
         "q6: best trijet (kinematics.best_combination)", "leptons: concatenate",
         "q7: jets near leptons (kinematics.near)", "q8: best Z pair, mT", "fills and the rest"],
        0.0,
    )  # fmt: skip
    for f in files:
        n = int(trees.open_tree(f, "Events").num_entries)
        for start in range(0, n, STEP):
            ev = eager_events(f, start=start, stop=min(start + STEP, n))
            adl.histograms(ev)  # reads the columns (kept by the events), warms up
            met = ak.values_astype(ev.MET.pt, np.float64)
            met_phi = ak.values_astype(ev.MET.phi, np.float64)
            jets, muons = adl._jets(ak, ev), adl._p4(ak, ev.Muon)
            leptons = adl._leptons(ak, ev, muons)
            timed = {
                "MET, jets, muons: float64 records": lambda ev=ev: (
                    ak.values_astype(ev.MET.pt, np.float64), adl._jets(ak, ev),
                    adl._p4(ak, ev.Muon)),
                "q1-q4: flatten, masks": lambda m=met, j=jets: adl._q1_to_q4(ak, m, j),
                "q5: muon pairs (vector)": lambda mu=muons, m=met: adl._q5(ak, mu, m),
                "q6: best trijet (kinematics.best_combination)": lambda j=jets: adl._q6(ak, j),
                "leptons: concatenate": lambda ev=ev, mu=muons: adl._leptons(ak, ev, mu),
                "q7: jets near leptons (kinematics.near)": lambda j=jets, le=leptons: adl._q7(
                    ak, j, le),
                "q8: best Z pair, mT": lambda le=leptons, m=met, p=met_phi: adl._q8(
                    ak, le, m, p),
                "all": lambda ev=ev: adl.histograms(ev),
            }  # fmt: skip
            best = {name: _best_of(3, step) for name, step in timed.items()}
            for name, seconds in best.items():
                if name != "all":
                    steps[name] += seconds
            steps["fills and the rest"] += best["all"] - sum(
                v for k, v in best.items() if k != "all"
            )
    return {"events": int(events.divisions[-1]), "graph": graph, "steps": steps}


def _best_of(n: int, function) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


run.JOBS["profile"] = _job_profile


def whole_process(files: list[str], work: Path, repeat: int) -> dict:
    """Part 1: brewflow adl's phases and the read limit, medians of fresh processes."""
    from brewflow.adl import inspect as inspect_adl

    columns = inspect_adl(files)["columns"]
    output = work / "adl.json"
    brewflow = [sys.executable, "-m", "brewflow", "adl", *files, "--output", str(output),
                "--workers", str(WORKERS), "--step-size", str(STEP)]  # fmt: skip
    read = run.job("read", files=files, workers=WORKERS, step_size=STEP, columns=columns)
    runs: dict[str, list[dict]] = {"brewflow": [], "read": []}
    run.measure(brewflow, output)  # a first sight of the files: their description cached
    for _ in range(repeat):
        runs["read"].append(run.measure(read))
        runs["brewflow"].append(run.measure(brewflow, output))
    phases = ("open", "build", "optimize", "compute")
    out = {}
    for name, measured in runs.items():
        r = {"wall": statistics.median(m["wall"] for m in measured)}
        r["after imports"] = statistics.median(m["seconds"] for m in measured)
        for p in phases if name == "brewflow" else ():
            r[p] = statistics.median(m[p] for m in measured)
        r["start-up and imports"] = r["wall"] - r["after imports"]
        out[name] = r
    return out


def report(rows: list[dict], command: str) -> str:
    lines = [
        "# Where `brewflow adl`'s time goes (ADL Q1-Q8)", "", f"`{command}`", "",
        "ms per million events; 2 cores; part 1 the whole process (2 forked workers, medians of "
        "fresh processes), parts 2 and 3 one core (per core: halve for 2 workers).", "",
    ]  # fmt: skip
    for r in rows:
        per = 1e9 / r["events"]  # s -> ms per 1M events
        b, read = r["whole"]["brewflow"], r["whole"]["read"]
        lines += [f"## {r['label']}: {r['events']} events", "",
                  "| phase (whole process) | brewflow adl | read limit |",
                  "|---|---:|---:|"]  # fmt: skip
        for phase in ("start-up and imports", "open", "build", "optimize", "compute",
                      "after imports", "wall"):  # fmt: skip
            other = f"{read[phase] * per:.0f}" if phase in read else ""
            lines.append(f"| {phase} | {b[phase] * per:.0f} | {other} |")
        ratio = b["wall"] / read["wall"]
        lines += ["", f"brewflow / read limit: {ratio:.2f}x whole process.", "",
                  "| one core, the graph's partitions in turn | ms / 1M events |",
                  "|---|---:|"]  # fmt: skip
        labels = {"parse": "parse of the needed branches",
                  "read": "reader tasks (read, decompress)",
                  "rest": "other tasks (queries, fills)", "dask": "dask's overhead"}  # fmt: skip
        lines += [f"| {labels[k]} | {v * per:.0f} |" for k, v in r["graph"].items()]
        lines += ["", "| one core, eager events: step of the queries | ms / 1M events |",
                  "|---|---:|"]  # fmt: skip
        lines += [f"| {k} | {v * per:.0f} |" for k, v in r["steps"].items()]
        lines += [f"| all queries and fills | {sum(r['steps'].values()) * per:.0f} |", ""]
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--job":
        print(json.dumps(run.JOBS[sys.argv[2]](**json.loads(sys.argv[3]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400_000, help="replicated nano_dy events")
    parser.add_argument("--generated", type=int, default=1_000_000, help="generated events")
    parser.add_argument("--files", nargs="+", help="profile these files instead")
    parser.add_argument("--label", default="files")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", type=Path, default=HERE / "results-profile.md")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="brewflow-profile-") as tmp:
        work = Path(tmp)
        os.environ["BREWFLOW_CACHE"] = str(work / "brewflow-cache")  # inherited by the CLI
        if args.files:
            inputs = {args.label: args.files}
        else:
            inputs = run.make_inputs(work, args.events, args.generated, "0")
            inputs = {k: v for k, v in inputs.items() if "LZ4" not in k}
        for label, files in inputs.items():
            whole = whole_process(files, work, args.repeat)
            inside = run.measure([sys.executable, __file__, "--job", "profile",
                                  json.dumps({"files": files})])  # fmt: skip
            rows.append({"label": label, "whole": whole, **inside})
            print(f"profiled {label}", flush=True)
    command = " ".join(["python benchmarks/profile_adl.py", *sys.argv[1:]])
    args.output.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")
    text = report(rows, command)
    print(text)
    args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
