"""The ADL benchmark queries Q1-Q8 on NanoAOD, all in one lazy graph (one pass over the data).

Definitions (IRIS-HEP ADL benchmarks, NanoAOD flavour; unweighted counts, GeV):

- ``q1``: MET pt of all events.
- ``q2``: pt of all jets.  ``q3``: pt of jets with |eta| < 1.
- ``q4``: MET pt of events with at least two jets with pt > 40.
- ``q5``: MET pt of events with an opposite-charge muon pair of mass in (60, 120).
- ``q6_pt``, ``q6_btag``: in events with >= 3 jets, the trijet with mass closest to 172.5: its pt
  and the largest ``btagDeepFlavB`` of its jets.
- ``q7``: per event, scalar sum of the pt of jets with pt > 30 not within Delta R < 0.4 of any
  light lepton with pt > 10 (0 when none).
- ``q8``: in events with >= 3 light leptons and a same-flavour opposite-charge pair: the pair with
  mass closest to 91.2, then the transverse mass of MET and the highest-pt other lepton,
  ``sqrt(2 pt MET (1 - cos dphi))``.

Kinematics are promoted to float64 before combining, so results do not depend on float32
rounding.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from brewflow.arrays import is_lazy, lib, local_scheduler
from brewflow.kinematics import best_combination, near

if TYPE_CHECKING:
    import hist

log = logging.getLogger(__name__)

__all__ = ["BINNING", "compute", "histograms", "inspect", "queries", "run", "run_files", "to_json"]

BINNING: dict[str, tuple[int, float, float]] = {
    "q1": (100, 0.0, 200.0),
    "q2": (100, 15.0, 60.0),
    "q3": (100, 15.0, 60.0),
    "q4": (100, 0.0, 200.0),
    "q5": (100, 0.0, 200.0),
    "q6_pt": (100, 0.0, 300.0),
    "q6_btag": (100, 0.0, 1.0),
    "q7": (100, 0.0, 500.0),
    "q8": (100, 0.0, 200.0),
}
Z_MASS, TOP_MASS = 91.2, 172.5


def _p4(ak: Any, collection: Any, **extra: Any) -> Any:
    """A float64 Momentum4D copy of ``collection`` with ``charge`` and any extra fields."""
    fields = {f: ak.values_astype(collection[f], np.float64) for f in ("pt", "eta", "phi", "mass")}
    return ak.zip({**fields, "charge": collection.charge, **extra}, with_name="Momentum4D")


def queries(events: Any) -> dict[str, Any]:
    """The value arrays of every query (flat per-entry arrays; jagged ones are flattened)."""
    ak = lib(events.MET.pt)
    met = ak.values_astype(events.MET.pt, np.float64)
    met_phi = ak.values_astype(events.MET.phi, np.float64)
    jets = _jets(ak, events)
    out = _q1_to_q4(ak, met, jets)
    muons = _p4(ak, events.Muon)
    out["q5"] = _q5(ak, muons, met)
    out["q6_pt"], out["q6_btag"] = _q6(ak, jets)
    leptons = _leptons(ak, events, muons)
    out["q7"] = _q7(ak, jets, leptons)
    out["q8"] = _q8(ak, leptons, met, met_phi)
    return out


def _jets(ak: Any, events: Any) -> Any:
    """Float64 Momentum4D jets with their b-tag score."""
    fields = {f: ak.values_astype(events.Jet[f], np.float64) for f in ("pt", "eta", "phi", "mass")}
    return ak.zip({**fields, "btag": events.Jet.btagDeepFlavB}, with_name="Momentum4D")


def _q1_to_q4(ak: Any, met: Any, jets: Any) -> dict[str, Any]:
    """MET; jet pt, all and central; MET of events with two jets above 40."""
    return {
        "q1": met,
        "q2": ak.flatten(jets.pt),
        "q3": ak.flatten(jets.pt[np.abs(jets.eta) < 1]),
        "q4": met[ak.sum(jets.pt > 40, axis=1) >= 2],
    }


def _q5(ak: Any, muons: Any, met: Any) -> Any:
    """MET of events with an opposite-charge muon pair of mass in (60, 120)."""
    pairs = ak.combinations(muons, 2, fields=["a", "b"])
    mass = (pairs.a + pairs.b).mass
    good = (pairs.a.charge != pairs.b.charge) & (mass > 60) & (mass < 120)
    return met[ak.any(good, axis=1)]


def _q6(ak: Any, jets: Any) -> tuple[Any, Any]:
    """The pt of the trijet of mass closest to the top's, and its largest b-tag score."""
    trijet = jets[best_combination(jets, 3, TOP_MASS)]
    px, py = trijet.pt * np.cos(trijet.phi), trijet.pt * np.sin(trijet.phi)
    has = ak.num(trijet) == 3
    return np.hypot(ak.sum(px, axis=1), ak.sum(py, axis=1))[has], ak.max(trijet.btag, axis=1)[has]


def _leptons(ak: Any, events: Any, muons: Any) -> Any:
    """Electrons then muons, with a ``flavour`` (11, 13)."""
    electrons = _p4(ak, events.Electron, flavour=events.Electron.charge * 0 + 11)
    return ak.concatenate(
        [electrons, ak.with_field(muons, muons.charge * 0 + 13, "flavour")], axis=1
    )


def _q7(ak: Any, jets: Any, leptons: Any) -> Any:
    """Scalar sum of the pt of jets above 30 away from every light lepton above 10."""
    light = leptons[leptons.pt > 10]
    hard = jets[jets.pt > 30]
    return ak.sum(hard.pt[~near(hard, light, 0.4)], axis=1)


def _q8(ak: Any, leptons: Any, met: Any, met_phi: Any) -> Any:
    """Transverse mass of MET and the leading lepton outside the best Z candidate."""
    three = ak.num(leptons) >= 3
    leptons, met, met_phi = leptons[three], met[three], met_phi[three]
    pair = best_combination(leptons, 2, Z_MASS, equal=["flavour"], unequal=["charge"])
    selected = ak.num(pair) == 2
    index = ak.local_index(leptons, axis=1)
    others = leptons[(index != ak.firsts(pair)) & (index != ak.firsts(pair[:, 1:]))][selected]
    lead = ak.firsts(others[ak.argmax(others.pt, axis=1, keepdims=True)])
    dphi = lead.phi - met_phi[selected]
    return np.sqrt(2 * lead.pt * met[selected] * (1 - np.cos(dphi)))


def histograms(
    events: Any, names: Sequence[str] | None = None, *, partitioned: bool = False
) -> dict[str, Any]:
    """The query histograms, all filled from one graph: ``hist.Hist`` for eager events; for
    lazy ones dask-histogram's collections (``dask_histogram.factory``, which computes to
    ``boost_histogram.Histogram``: :func:`compute` returns ``hist.Hist``), the engine of
    ``hist.dask`` without its import of ``dask.array`` (and scipy), a third of a second.
    ``partitioned``: one histogram per partition (``partitioned_factory``), not summed."""
    import hist  # here, not at import: `import brewflow.adl` stays light (CLI start-up)

    values = queries(events)
    out = {}
    for name in names or BINNING:
        if name not in BINNING:
            raise KeyError(f"unknown ADL query {name!r}; known: {', '.join(BINNING)}")
        bins, lo, hi = BINNING[name]
        h = hist.Hist(hist.axis.Regular(bins, lo, hi, name=name), storage=hist.storage.Double())
        if is_lazy(values[name]):
            import dask_histogram

            make = dask_histogram.partitioned_factory if partitioned else dask_histogram.factory
            out[name] = make(values[name], histref=h)
        else:
            out[name] = h.fill(values[name])
    return out


def run(
    files: Sequence[str],
    *,
    tree: str = "Events",
    step_size: int = 100_000,
    scheduler: str | None = None,
    workers: int | None = None,
    timings: dict[str, float] | None = None,
    progress: bool = False,
) -> dict:
    """``brewflow adl``: all queries on ``files`` in one lazy pass; the ADL JSON document.

    ``timings``, when given, receives the seconds spent opening the files (tree metadata) and
    the phases of :func:`compute`; ``progress``: as :func:`compute`."""
    from brewflow.locations import is_url
    from brewflow.nanoevents.inputs import InputError, is_missing_field
    from brewflow.nanoevents.reader import lazy_events

    if scheduler == "processes" and any(is_url(f) for f in files):
        scheduler = "threads"  # never fork a live XRootD/HTTP client: remote files use threads
    started = time.perf_counter()
    # entries and form from the tree cache (a file seen before is not parsed); a missing,
    # damaged or non-NanoAOD file raises a clear InputError here
    events = lazy_events({f: tree for f in files}, step_size=step_size)
    if timings is not None:
        timings["open"] = time.perf_counter() - started
    try:
        return compute(
            events, scheduler=scheduler, workers=workers, timings=timings, progress=progress
        )
    except AttributeError as err:  # the first file, whose branches define the events
        if not is_missing_field(err):
            raise
        raise InputError(
            f"file {files[0]!r}: lacks a branch the ADL queries read ({err}); is it NanoAOD?"
        ) from None


def compute(
    events: Any,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    timings: dict[str, float] | None = None,
    progress: bool = False,
) -> dict:
    """Fill every query histogram (one graph, one pass) and return the ADL JSON document.

    For lazy events, ``timings`` (when given) receives the seconds spent building the graph,
    optimizing it (column projection) and computing it. ``progress``: a progress bar for a
    computation longer than :data:`PROGRESS_AFTER` seconds (dask's, around dask's threads;
    for forked workers, drawn here from their reports)."""
    clock = _Clock(timings)
    lazy = is_lazy(events.MET.pt)
    if lazy and scheduler == "processes":
        return _compute_forked(events, workers or os.cpu_count() or 1, clock, progress)
    hists = histograms(events)
    n_events = lib(events.MET.pt).num(events.MET.pt, axis=0)
    if lazy:
        import dask
        import hist

        clock("build")
        hists, n_events = dask.optimize(hists, n_events)
        clock("optimize")
        with _progress_bar(progress):  # around the computation alone: a bar's end waits out
            hists, n_events = dask.compute(  # its refresh period (0.25 s), at every compute
                hists,
                n_events,
                scheduler=local_scheduler(scheduler),
                num_workers=workers,
                optimize_graph=False,
            )
        hists = {name: hist.Hist(h) for name, h in hists.items()}
        clock("compute")
    return to_json(hists, int(n_events))


def _compute_forked(events: Any, workers: int, clock: _Clock, progress: bool) -> dict:
    """:func:`compute` with whole partitions in ``workers`` forked processes
    (:mod:`brewflow.forked`): one histogram per partition, summed. The events counted are
    the partitions' lengths (every partition is read whole, or the run fails). ``progress``:
    a bar drawn here from the workers' reports (:class:`_Bar`)."""
    import hist

    from brewflow.forked import compute_partitions, optimized
    from brewflow.nanoevents.reader import partition_sources

    if events.divisions[-1] is None:
        raise ValueError("the processes scheduler needs partitions of known length")
    hists = histograms(events, partitioned=True)
    clock("build")
    work = optimized(hists)
    clock("optimize")
    bar = _Bar() if progress else None
    try:
        out = compute_partitions(work, workers, progress=bar, keep_memory=True,
                                 sources=partition_sources(events))  # fmt: skip
    finally:
        if bar is not None:
            bar.close()
    clock("compute")
    return to_json({name: hist.Hist(h) for name, h in out.items()}, int(events.divisions[-1]))


PROGRESS_AFTER = 5.0
"""Seconds a computation runs before its progress bar is shown (dask's ``minimum``)."""


def _progress_bar(shown: bool) -> contextlib.AbstractContextManager:
    if not shown:
        return contextlib.nullcontext()
    from dask.diagnostics import ProgressBar

    return ProgressBar(minimum=PROGRESS_AFTER, dt=0.25)


class _Bar:
    """dask's progress bar for forked workers, drawn by this process from their reports
    (``forked.compute_partitions``' ``progress``): on stdout, once the computation has run
    :data:`PROGRESS_AFTER` seconds."""

    WIDTH = 40
    EVERY = 0.25
    """Seconds between draws (workers report every task: a log file would get thousands)."""

    def __init__(self) -> None:
        self.started, self.drawn, self.last = time.perf_counter(), False, (0, 1)
        self.shown = -self.EVERY  # when it was last drawn (s after started)

    def __call__(self, done: int, total: int) -> None:
        self.last = (done, total)
        elapsed = time.perf_counter() - self.started
        if elapsed < PROGRESS_AFTER or elapsed - self.shown < self.EVERY:
            return
        self._draw(done, total, elapsed)

    def _draw(self, done: int, total: int, elapsed: float) -> None:
        self.drawn, self.shown = True, elapsed
        fraction = done / total if total else 1.0
        bar = "#" * int(self.WIDTH * fraction)
        print(f"\r[{bar:<{self.WIDTH}}] | {fraction:4.0%} Completed | {elapsed:.1f}s",
              end="", flush=True)  # fmt: skip

    def close(self) -> None:
        """The bar's last state and a new line, where it was shown."""
        if self.drawn:
            self._draw(*self.last, time.perf_counter() - self.started)
            print(flush=True)


class _Clock:
    """Records the seconds since the previous call under each name (no-op without a dict)."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings, self.last = timings, time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        if self.timings is not None:
            self.timings[name] = now - self.last
        self.last = now


def to_json(hists: Mapping[str, hist.Hist], events: int) -> dict:
    """``{"events": N, "<query>": {"edges": [...], "values": [...]}}``, values with flow bins."""
    doc: dict[str, Any] = {"events": events}
    for name, h in hists.items():
        doc[name] = {
            "edges": [float(e) for e in h.axes[0].edges],
            "values": [int(v) for v in h.values(flow=True)],
        }
    return doc


def run_files(
    patterns: Sequence[str], output: str | Path, *, progress: bool = True, **options: Any
) -> dict:
    """``brewflow adl``: the files the ``patterns`` name (globs expanded), every query in one
    pass (``options`` go to :func:`run`), the JSON document written to ``output``."""
    from brewflow.errors import InputError
    from brewflow.files import atomic_write, expand_glob
    from brewflow.kinematics import CombinatoricsError
    from brewflow.locations import RemoteSettings, is_glob, is_url
    from brewflow.nanoevents import remote
    from brewflow.nanoevents.filelists import distinct_files

    files = []
    for pattern in patterns:
        if not is_url(pattern):
            matches = expand_glob(pattern)
        elif is_glob(pattern):
            matches = remote.expand_glob(pattern, RemoteSettings())
        else:
            matches = [pattern]
        if not matches:
            raise InputError(f"no file matches {pattern!r}")
        files += matches
    missing = [f for f in files if not is_url(f) and not Path(f).is_file()]
    if missing:
        raise InputError(f"input file(s) not found: {', '.join(map(repr, missing))}")
    distinct_files(files)
    try:
        timings: dict[str, float] = {}
        document = run(files, timings=timings, progress=progress, **options)
    except CombinatoricsError as err:  # raised in a task: the chunk's file is not known there
        where = f"file {files[0]!r}" if len(files) == 1 else f"one of {len(files)} files"
        raise CombinatoricsError(f"{where}: {err}") from None
    atomic_write(output, json.dumps(document) + "\n")
    log.info(
        "ADL Q1-Q8 on %d events of %d file(s) in %.2f s (%s) -> %s", document["events"],
        len(files), sum(timings.values()), ", ".join(f"{k} {v:.2f} s" for k, v in timings.items()),
        output,
    )  # fmt: skip
    return document


def inspect(files: list[str], tree: str = "Events", queries: list[str] | None = None) -> dict:
    """The graph report of the ADL queries (all, or the named ones) on ``files``."""
    from brewflow.jobs.inspection import graph_report
    from brewflow.nanoevents.reader import lazy_events

    events = lazy_events({f: tree for f in files}, open_files=False)
    name = "ADL " + ",".join(queries or ["q1-q8"])
    return {
        "dataset": name,
        "tree": tree,
        "files": len(files),
        **graph_report(histograms(events, queries)),
    }
