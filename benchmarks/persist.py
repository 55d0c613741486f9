"""Checkpoints: when does persisting an intermediate help?

    python benchmarks/persist.py [--events 400000] [--fills 6]

On a dask.distributed LocalCluster (2 single-threaded workers), generated ttbar events in a
temporary folder; the intermediate is the analysis-level object selection (JEC re-applied and
JER-smeared jets, cleaned against selected leptons). Downstream: ``--fills`` histograms of it.
Three ways, each in a fresh cluster:

- ``separate``: each fill its own compute (as when iterating in a notebook): every compute
  reads the files and redoes the selection;
- ``checkpoint``: the selected jets marked with :func:`brewflow.checkpoints.checkpoint` inside
  ``persisting(client)`` (computed once, kept in worker memory), then the same separate fills
  reuse them;
- ``one graph``: all fills in one compute.

Then a whole analyze job (the demo analysis, every systematic of ttbar in one graph,
``brewflow.jobs.analyze.run``) on the same cluster with ``persist_checkpoints`` false and true: the
demo marks its selected jets (nominal and each object variation).

Prints and writes ``benchmarks/results-persist.md`` and ``.json``: wall time and the workers'
memory (sum of RSS after the computes).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import demo_config  # noqa: E402

FILLS = [  # (name, bins, start, stop, quantity of the selected jets)
    ("jet_pt", 50, 30, 530, lambda j, ak: j.pt),
    ("jet_eta", 50, -2.5, 2.5, lambda j, ak: j.eta),
    ("njets", 10, 0, 10, lambda j, ak: ak.num(j)),
    ("ht", 50, 0, 1000, lambda j, ak: ak.sum(j.pt, axis=1)),
    ("lead_pt", 50, 30, 530, lambda j, ak: ak.fill_none(ak.firsts(j.pt), 0)),
    ("btag", 50, 0, 1, lambda j, ak: j.btagDeepFlavB),
    ("jet_mass", 50, 0, 100, lambda j, ak: j.mass),
    ("jet_phi", 50, -3.2, 3.2, lambda j, ak: j.phi),
]


def _selected_jets(config: dict, files: list[str]):
    import dask_awkward as dak
    import numpy as np

    from brewflow.jobs.build import jet_corrector
    from brewflow.nanoevents.reader import lazy_events

    events = lazy_events(files, step_size=config["step_size"])
    events = jet_corrector(config, "ttbar").apply(events)
    mu = events.Muon
    muons = mu[mu.tightId & (mu.pt > 15) & (np.abs(mu.eta) < 2.4)]
    jets = events.Jet
    jets = jets[(jets.pt > 30) & (np.abs(jets.eta) < 2.4) & ((jets.jetId & 2) > 0)]
    pairs = dak.cartesian([jets, muons], nested=True)
    return jets[dak.all(pairs["0"].delta_r(pairs["1"]) > 0.4, axis=2)]


def _fills(jets, n: int) -> list:
    import dask_awkward as dak
    import hist.dask

    out = []
    for name, bins, lo, hi, quantity in FILLS[:n]:
        h = hist.dask.Hist.new.Reg(bins, lo, hi, name=name).Double()
        values = quantity(jets, dak)
        out.append(h.fill(dak.flatten(values) if values.ndim > 1 else values))
    return out


def _rss(client) -> float:
    import psutil

    return sum(client.run(lambda: psutil.Process().memory_info().rss).values()) / 2**20


@contextlib.contextmanager
def _cluster():
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                     dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):  # fmt: skip
        yield client


def measure(config: dict, files: list[str], way: str, n: int) -> dict:
    import dask
    from distributed import wait

    from brewflow.checkpoints import checkpoint, persisting

    with _cluster() as client:
        started = time.perf_counter()
        jets = _selected_jets(config, files)
        totals = []
        if way == "checkpoint":
            with persisting(client) as kept:
                jets = checkpoint(jets, "jets")
            wait(kept.futures)
        persisted = time.perf_counter() - started
        if way == "one graph":
            totals = [h.sum() for h in dask.compute(*_fills(jets, n))]
        else:
            for h in _fills(jets, n):
                (done,) = dask.compute(h)
                totals.append(done.sum())
        seconds = time.perf_counter() - started
        return {
            "way": way,
            "seconds": seconds,
            "persist_seconds": persisted if way == "checkpoint" else None,
            "rss_mib": _rss(client),
            "entries": [float(t) for t in totals],
        }


def measure_job(config: dict, files: list[dict], persist: bool) -> dict:
    from brewflow.config import systematics_for, validate
    from brewflow.jobs.analyze import run

    config = validate({**config, "persist_checkpoints": persist})
    systematics = systematics_for(config, "ttbar")
    with _cluster() as client:
        started = time.perf_counter()
        result = run(config, "ttbar", systematics, files, scheduler=client.scheduler.address,
                     progress_interval=None)  # fmt: skip
        seconds = time.perf_counter() - started
        totals = [float(h.sum(flow=True).value) for h in
                  (result.histograms[k] for k in sorted(config["histograms"]))]  # fmt: skip
        return {
            "way": f"analyze job, persist_checkpoints: {str(persist).lower()}",
            "seconds": seconds,
            "persist_seconds": None,
            "rss_mib": _rss(client),
            "entries": totals,
            "systematics": len(systematics),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--fills", type=int, default=6, choices=range(1, len(FILLS) + 1))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = demo_config(Path(tmp), args.events)
        files = config["datasets"]["ttbar"]["files"]
        rows = [measure(config, files, way, args.fills) for way in
                ("separate", "checkpoint", "one graph")]  # fmt: skip
        from brewflow.jobs.preprocess import preprocess

        inventory = preprocess(config, "ttbar")["files"]
        jobs = [measure_job(config, inventory, persist) for persist in (False, True)]
    assert all(r["entries"] == rows[0]["entries"] for r in rows), "the ways disagree"
    assert jobs[0]["entries"] == jobs[1]["entries"], "the jobs disagree"
    base = rows[0]["seconds"]
    lines = [
        "# Checkpoints: persist vs recompute",
        "",
        f"`python benchmarks/persist.py --events {args.events} --fills {args.fills}`: "
        f"{args.events} generated ttbar events, {args.fills} histograms of the selected, "
        "JEC/JER-corrected jets; LocalCluster of 2 single-threaded workers, each way in a "
        "fresh cluster; the three give identical histograms.",
        "",
        "| way | wall [s] | of which persist [s] | speed-up vs separate | workers' RSS [MiB] |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        p = f"{r['persist_seconds']:.1f}" if r["persist_seconds"] is not None else ""
        lines.append(f"| {r['way']} | {r['seconds']:.1f} | {p} | {base / r['seconds']:.2f}x | "
                     f"{r['rss_mib']:.0f} |")  # fmt: skip
    lines += [
        "",
        f"A whole analyze job (the demo analysis, all {jobs[0]['systematics']} systematics of "
        "ttbar in one graph, `brewflow.jobs.analyze.run` on the same kind of cluster): the demo "
        "marks its selected jets (nominal and each object variation) with "
        "`context.checkpoint`; identical histograms.",
        "",
        "| job | wall [s] | speed-up | workers' RSS [MiB] |",
        "|---|---:|---:|---:|",
    ]
    for r in jobs:
        speedup = jobs[0]["seconds"] / r["seconds"]
        lines.append(f"| {r['way']} | {r['seconds']:.1f} | {speedup:.2f}x | {r['rss_mib']:.0f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    (HERE / "results-persist.md").write_text(text)
    (HERE / "results-persist.json").write_text(json.dumps(rows + jobs, indent=1) + "\n")


if __name__ == "__main__":
    main()
