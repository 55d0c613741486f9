"""The workflow's analyze jobs: events/s and peak RSS, next to the `brewflow adl` engine.

    python benchmarks/analyze.py [--events 100000] [--copies 10] [--repeat 3]

The demo analysis on real NanoAOD with every systematic of `config/examples/cms_nanoaod.yaml`
(weights: pileup, muon and electron ID, b-tag shape, parton shower; object variations: JES
Total and FlavorQCD, JER, unclustered MET), 2018 UL payloads from ../shared, in one graph
(`fuse_systematics`). Input: `nano_dy.root` replicated to ``--events`` x ``--copies`` events in
one file (clusters of 10,000 events, chunks of 10,000: 100 chunks); the small job is the same
file's first ``--events`` (10 chunks: the workflow's first chunk group with `events_per_job`),
so both jobs open the same file (its metadata, ~1500 branches x 100 baskets, is the same) and
differ only in the chunks they compute. Each measurement a fresh process, as the workflow's
rule runs it (`brewflow analyze` with the workflow's resolved config and its cache of pieces,
emptied before each run):

- *processes*: the default, chunks computed whole in forked worker processes;
- *threads*: dask's threads (`scheduler: threads`, the default before issue 30);
- *adl engine*: the same graph (the job's piece per chunk) computed as `brewflow adl` computes,
  `brewflow.forked.compute_partitions`, in one process without the job around it (no
  preflight, cache, data gate, ledger or result file): the cost of the events alone.

Peak RSS: the job's process and its children (forked workers share the parent's pages until
they write: counted once per process, an upper bound). Writes `benchmarks/results-analyze.md`
and `.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(HERE))

from run import measure  # noqa: E402

DATASET = "DYJetsToLL_M50"
WAYS = ["processes (default)", "threads", "adl engine"]
CLUSTER = 10_000


def _config(work: Path, files: list[str]) -> dict:
    """cms_nanoaod.yaml with absolute payload paths and the Drell-Yan files ``files``."""
    config = yaml.safe_load((ROOT / "config" / "examples" / "cms_nanoaod.yaml").read_text())

    def absolute(path: str) -> str:
        return str((ROOT / path).resolve()) if path.startswith("../") else path

    for spec in [*config["corrections"].values(), config["jets"]]:
        spec["file"] = absolute(spec["file"])
    for name, dataset in config["datasets"].items():
        dataset["files"] = files if name == DATASET else [absolute(f) for f in dataset["files"]]
    config.update(step_size=CLUSTER, fuse_systematics=True, threads=2)
    return config


def _workflow(work: Path, config: dict) -> list[str]:
    """Run the workflow up to the Drell-Yan analyze job once (resolved config, inventory);
    returns the rule's command (its first chunk group's with ``events_per_job``)."""
    from brewflow.pipeline import RESOLVED, snakemake_command

    (work / "config.yaml").write_text(yaml.safe_dump(config))
    grouped = config.get("events_per_job") is not None
    target = f"results/analyze/{DATASET}/{'part0/' if grouped else ''}all.json"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        [*snakemake_command(work, work / "config.yaml", 2), target],
        cwd=work, env=env, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode:
        sys.exit(f"the workflow failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    command = [
        str(Path(sys.executable).parent / "brewflow"), "analyze", "--config", RESOLVED,
        "--dataset", DATASET, "--all-systematics",
        "--preprocess", f"results/preprocess/{DATASET}.json",
        "--output", "bench.json", "--threads", "2", "--progress-interval", "1000",
        *(["--group", "0"] if grouped else []),
    ]  # fmt: skip
    return command


def _engine(config: dict, inventory: str) -> dict:
    """In a fresh process: the job's graph computed as `brewflow adl` computes it (the first
    chunk group's chunks with ``events_per_job``)."""
    from brewflow.config import systematics_for, validate

    started = time.perf_counter()
    from brewflow.forked import Partitioned, compute_partitions
    from brewflow.jobs.lazy import _Job, _lazy_graph
    from brewflow.jobs.pieces import add, piece_graph
    from brewflow.jobs.reading import ReadPlan
    from brewflow.results.inventory import group_chunks, read_inventory

    imported = time.perf_counter()
    config = validate(config)
    files = read_inventory(inventory)["files"]
    if config["events_per_job"] is not None:
        files = group_chunks(files, config["events_per_job"])[0]
    plan = ReadPlan(config, DATASET, files)
    job = _Job(config, DATASET, systematics_for(config, DATASET), files, plan, "", None, {})
    steps = {f["path"]: plan.steps[f["path"]] for f in files}
    graph = _lazy_graph(job, files, steps)
    assert graph is not None
    chunks = sum(map(len, steps.values()))
    full, keys = piece_graph(graph, chunks, [[c] for c in range(chunks)])
    work = Partitioned(dict(full.cull(set(keys))), {"piece": keys})
    built = time.perf_counter()
    (total,) = compute_partitions(work, 2, combine=add).values()
    done = time.perf_counter()
    return {"seconds": done - imported, "imports": imported - started,
            "build": built - imported, "compute": done - built,
            "events": sum(f["entries"] for f in files), "sums": len(total)}  # fmt: skip


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--engine":
        print(json.dumps(_engine(json.loads(Path(sys.argv[2]).read_text()), sys.argv[3])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ways", nargs="+", choices=WAYS, default=WAYS,
                        help="what to measure (default: all)")  # fmt: skip
    args = parser.parse_args()
    from inputs import replicate

    if not (SHARED / "nanoaod" / "nano_dy.root").is_file():
        sys.exit(f"{SHARED} not found: this benchmark reads the real NanoAOD and payloads")
    rows = []
    with tempfile.TemporaryDirectory(prefix="brewflow-analyze-") as tmp:
        work = Path(tmp)
        large = args.events * args.copies
        path = work / f"dy_{large}.root"
        replicate(SHARED / "nanoaod" / "nano_dy.root", path, large, cluster=CLUSTER)
        for events in (args.events, large):
            folder = work / f"run{events}"
            folder.mkdir()
            config = _config(folder, [str(path)])
            if events < large:  # the first chunk group of the same file
                config["events_per_job"] = events
            command = _workflow(folder, config)
            (folder / "engine.json").write_text(json.dumps(config))
            engine = [sys.executable, str(Path(__file__)), "--engine", str(folder / "engine.json"),
                      str(folder / f"results/preprocess/{DATASET}.json")]  # fmt: skip
            ways = {
                "processes (default)": (command, {}),
                "threads": (command, {"BREWFLOW_SCHEDULER": "threads"}),
                "adl engine": (engine, {}),
            }
            ways = {w: how for w, how in ways.items() if w in args.ways}
            runs: dict[str, list[dict]] = {w: [] for w in ways}
            for _ in range(args.repeat):
                for way, (cmd, env) in ways.items():
                    shutil.rmtree(folder / ".brewflow" / "cache" / "analyze", ignore_errors=True)
                    r = _measure(cmd, folder, env)
                    runs[way].append(r)
                    print(f"  {events // CLUSTER} chunks, {way}: {r['wall']:.2f} s, "
                          f"{r['peak_mb']:.0f} MB RSS, {r['pss_mb']:.0f} MB PSS",
                          flush=True)  # fmt: skip
            for way, measured in runs.items():
                wall = statistics.median(r["wall"] for r in measured)
                rows.append({
                    "chunks": events // CLUSTER, "events": events, "way": way, "wall": wall,
                    "peak_mb": statistics.median(r["peak_mb"] for r in measured),
                    "pss_mb": statistics.median(r["pss_mb"] for r in measured),
                })  # fmt: skip
    text = _report(rows, args)
    print(text)
    (HERE / "results-analyze.md").write_text(text)
    (HERE / "results-analyze.json").write_text(json.dumps(rows, indent=1) + "\n")


def _measure(command: list[str], folder: Path, env: dict) -> dict:
    """One fresh process of ``command`` in ``folder`` with ``env`` added: wall, peak RSS."""
    cwd, saved = Path.cwd(), dict(os.environ)
    os.chdir(folder)
    os.environ.update(env)
    try:  # (the job prints nothing: a JSON line after it for measure)
        r = measure(["sh", "-c", f"{shlex.join(command)} && echo '{{}}'"], pss=True)
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(saved)
    return {"wall": r["wall"], "peak_mb": r["rss"], "pss_mb": r["pss"]}


def _report(rows: list[dict], args: argparse.Namespace) -> str:
    lines = [
        "# The workflow's analyze jobs",
        "",
        f"`python benchmarks/analyze.py --events {args.events} --copies {args.copies} "
        f"--repeat {args.repeat}`: the demo analysis with every systematic of "
        "`config/examples/cms_nanoaod.yaml` (weights and object variations, 2018 UL payloads) "
        "on `nano_dy.root` replicated, chunks of 10,000 events, one fused job on 2 cores; "
        f"median of {args.repeat} fresh processes (start-up included), the cache of pieces "
        "emptied before each. Peak RSS: the process and its forked workers (shared pages "
        "counted per process: an upper bound); peak PSS: the same processes with each shared "
        "page counted once, in shares (what the machine gives the job).",
        "",
        "| chunks | events | how | job wall [s] | events/s | events/s/core | vs adl engine "
        "| peak RSS [MB] | peak PSS [MB] |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        engine = next((x for x in rows if x["chunks"] == r["chunks"]
                       and x["way"] == "adl engine"), None)  # fmt: skip
        rate = r["events"] / r["wall"]
        ratio = f"{r['wall'] / engine['wall']:.2f}x" if engine else "-"
        lines.append(
            f"| {r['chunks']} | {r['events']:,} | {r['way']} | {r['wall']:.2f} | {rate:,.0f} "
            f"| {rate / 2:,.0f} | {ratio} | {r['peak_mb']:.0f} | {r['pss_mb']:.0f} |"
        )
    small = {r["way"]: r for r in rows if r["chunks"] == min(x["chunks"] for x in rows)}
    large = {r["way"]: r for r in rows if r["chunks"] == max(x["chunks"] for x in rows)}
    for way in (w for w in WAYS if w in small and w != "adl engine"):
        lines += [
            "",
            f"{way}: peak memory at {large[way]['chunks']} chunks vs {small[way]['chunks']}: "
            f"PSS {large[way]['pss_mb'] / small[way]['pss_mb']:.2f}x, RSS "
            f"{large[way]['peak_mb'] / small[way]['peak_mb']:.2f}x (target: within 1.10x).",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
