"""Scaling: events/s of one analyze job with 1 and 2 workers, and of 2 chunk-group jobs.

    python benchmarks/scaling.py [--events 800000] [--repeat 3]

The demo analysis (all 21 variations of ttbar in one graph: weights, JES/JER object
variations) on generated ttbar events made in a temporary folder. Each measurement is a fresh
process (interpreter start and imports included, as for a batch job). Ways to use 2 cores:
dask threads, forked worker processes (the default since issue 30; dask's own processes scheduler
before it), a dask.distributed LocalCluster of 2 single-threaded workers,
and two concurrent analyze processes each reading one chunk group (``events_per_job``: how
Snakemake fans out to a batch system). Writes ``benchmarks/results-scaling.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from brewflow.results.inventory import group_chunks

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import demo_config, measure  # noqa: E402

WAYS = [  # (label, scheduler, workers, jobs)
    ("1 thread", "threads", 1, 1),
    ("2 threads", "threads", 2, 1),
    ("2 forked workers (processes, the default)", "processes", 2, 1),
    ("LocalCluster, 1 worker", "distributed", 1, 1),
    ("LocalCluster, 2 workers", "distributed", 2, 1),
    ("2 chunk-group jobs x 1 thread", "threads", 1, 2),
]


def _job(config: dict, files: list, scheduler: str, workers: int) -> dict:
    """One analyze job (run in a fresh interpreter)."""
    from brewflow.config import systematics_for
    from brewflow.jobs.analyze import run

    started = time.perf_counter()
    result = run(config, "ttbar", systematics_for(config, "ttbar"), files,
                 scheduler=scheduler, workers=workers, progress_interval=None)  # fmt: skip
    return {"seconds": time.perf_counter() - started, "events": result.meta["events"]}


def _command(config: dict, files: list, scheduler: str, workers: int) -> list[str]:
    options = {"config": config, "files": files, "scheduler": scheduler, "workers": workers}
    return [sys.executable, str(Path(__file__)), "--job", json.dumps(options)]


def _concurrent(commands: list[list[str]]) -> dict:
    """Run jobs at once (like two batch jobs); wall time until the last one ends."""
    started = time.perf_counter()
    processes = [subprocess.Popen(c, stdout=subprocess.PIPE, text=True) for c in commands]
    outs = [p.communicate()[0] for p in processes]
    wall = time.perf_counter() - started
    if any(p.returncode for p in processes):
        raise RuntimeError("a chunk-group job failed")
    results = [json.loads(o.strip().splitlines()[-1]) for o in outs]
    return {"wall": wall, "events": sum(r["events"] for r in results),
            "seconds": max(r["seconds"] for r in results)}  # fmt: skip


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--job":
        print(json.dumps(_job(**json.loads(sys.argv[2]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=800_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", type=Path, default=HERE / "results-scaling.md")
    args = parser.parse_args()
    from brewflow.config import validate
    from brewflow.jobs import preprocess

    rows = []
    with tempfile.TemporaryDirectory(prefix="brewflow-scaling-") as tmp:
        config = demo_config(Path(tmp), args.events)
        config = validate({**config, "step_size": 50_000})
        files = preprocess.preprocess(config, "ttbar")["files"]
        halves = group_chunks(files, args.events // 2)
        assert len(halves) == 2
        runs: dict[str, list[dict]] = {label: [] for label, *_ in WAYS}
        for _ in range(args.repeat):
            for label, scheduler, workers, jobs in WAYS:
                if jobs == 1:
                    r = measure(_command(config, files, scheduler, workers))
                else:
                    r = _concurrent([_command(config, h, scheduler, workers) for h in halves])
                runs[label].append(r)
                print(f"  {label}: {r['wall']:.2f} s ({r['seconds']:.2f} s computing)",
                      flush=True)  # fmt: skip
        for label, *_ in WAYS:
            wall = statistics.median(r["wall"] for r in runs[label])
            seconds = statistics.median(r["seconds"] for r in runs[label])
            rows.append({"way": label, "wall": wall, "seconds": seconds,
                         "events": runs[label][0]["events"]})  # fmt: skip
    base = rows[0]["events"] / rows[0]["wall"]
    lines = [
        "# Scaling: one analyze job on 1 and 2 cores",
        "",
        f"`python benchmarks/scaling.py --events {args.events} --repeat {args.repeat}`: the demo "
        f"analysis, all 21 variations of ttbar in one graph, {args.events} generated events in "
        "4 files, partitions of 50000 events; median of "
        f"{args.repeat} rounds, each job a fresh process (start-up and imports included).",
        "",
        "| how | job wall time | events/s (wall) | speed-up | of which computing |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        rate = r["events"] / r["wall"]
        lines.append(f"| {r['way']} | {r['wall']:.2f} s | {rate:,.0f} | {rate / base:.2f}x | "
                     f"{r['seconds']:.2f} s |")  # fmt: skip
    text = "\n".join(lines) + "\n"
    print(text)
    args.output.write_text(text)
    args.output.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
