"""Run the configured analysis on one dataset for one systematic: one lazy graph, one compute.

The dataset's files are opened lazily with ``uproot.dask`` (only the columns the analysis needs
are read), the analysis callable builds selections, variables and weights, and every histogram
and cutflow is filled with ``hist.dask``; all of them are computed together, so the data are
read once.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

import dask
import dask_awkward as dak
import numpy as np

from brewflow import execution
from brewflow import histograms as H
from brewflow._array import lib, stack
from brewflow.analysis import OBJECT_VARIATIONS, AnalysisOutput, Context, JESVariation, PerBlock
from brewflow.checkpoints import persisting
from brewflow.config import SHAPE_TYPES, ConfigError, process_of
from brewflow.corrections import load_all
from brewflow.inputs import (
    SKIP_HINT,
    InputError,
    MissingBranchError,
    is_missing_field,
    on_bad_file,
    open_checked,
)
from brewflow.jetmet import CorrectedEvents, JetCorrector
from brewflow.lumimask import LumiMask, LumiMaskError
from brewflow.nanoevents import ChunkReadError, eager_events, lazy_events
from brewflow.results import Result

__all__ = [
    "applicable_systematics",
    "build",
    "load_analysis",
    "run",
    "systematic_weight",
    "systematics_for",
]

log = logging.getLogger(__name__)


def load_analysis(spec: str) -> Callable[[Any, Context], AnalysisOutput]:
    """Import an analysis given as ``'package.module:function'``."""
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(
            f"config key 'analysis.callable': cannot import {module_name!r}: {err}"
        ) from err
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(
            f"config key 'analysis.callable': module {module_name!r} has no {attr!r}"
        ) from None


def applicable_systematics(config: Mapping, dataset: str) -> list[str]:
    """Names of the configured systematics that apply to ``dataset`` (none for data)."""
    if config["datasets"][dataset]["is_data"]:
        return []
    return [
        name
        for name, spec in config["systematics"].items()
        if dataset in spec.get("datasets", config["datasets"])
    ]


def systematics_for(config: Mapping, dataset: str) -> list[str]:
    """``nominal`` plus ``<name>Up``/``<name>Down`` for each systematic applying to the dataset."""
    names = applicable_systematics(config, dataset)
    return ["nominal", *(f"{name}{d}" for name in names for d in ("Up", "Down"))]


def shape_variation(config: Mapping, systematic: str) -> tuple[str, str, str] | None:
    """``(type, source, "Up"|"Down")`` when ``systematic`` varies objects, else None."""
    for direction in ("Up", "Down"):
        spec = config["systematics"].get(systematic.removesuffix(direction))
        if systematic.endswith(direction) and spec is not None and spec["type"] in SHAPE_TYPES:
            return spec["type"], spec.get("source", "Total"), direction
    return None


def jes_variation(config: Mapping, systematic: str) -> JESVariation | None:
    """The JES variation of an object variation (None for JER, unclustered, nominal)."""
    shape = shape_variation(config, systematic)
    if shape is None or shape[0] != "jes":
        return None
    return JESVariation(shape[2].lower(), shape[1])


def systematic_weight(config: Mapping, output: AnalysisOutput, systematic: str) -> Any:
    """The event weight for ``systematic`` (None for unweighted data).

    Object (shape) variations use the nominal weight of the analysis run on varied objects."""
    if not output.weights:
        if systematic != "nominal":
            raise ConfigError(f"systematic {systematic!r} needs event weights (MC)")
        return None
    if systematic == "nominal" or shape_variation(config, systematic):
        return output.weights.weight()
    for direction in ("Up", "Down"):
        name = systematic.removesuffix(direction)
        spec = config["systematics"].get(name)
        if systematic.endswith(direction) and spec is not None:
            if spec["type"] == "scale":
                return output.weights.weight() * spec[direction.lower()]
            if name + direction not in output.weights.variations:
                raise ConfigError(
                    f"config key 'systematics.{name}': the analysis defines no weight {name!r} "
                    f"with up/down variations (it has: {', '.join(output.weights.variations)})"
                )
            return output.weights.weight(name + direction)
    raise ConfigError(f"unknown systematic {systematic!r}; see config key 'systematics'")


def _check_output(config: Mapping, output: Any) -> None:
    spec = config["analysis"]["callable"]
    if not isinstance(output, AnalysisOutput):
        raise ConfigError(
            f"config key 'analysis.callable': {spec} returned {type(output).__name__}; "
            "it must return brewflow.analysis.AnalysisOutput"
        )
    for name, region in config["regions"].items():
        for cut in region["cuts"]:
            if cut not in output.selection:
                raise ConfigError(
                    f"config key 'regions.{name}.cuts': the analysis defines no cut {cut!r} "
                    f"(it has: {', '.join(output.selection.names)})"
                )
    for name, definition in config["histograms"].items():
        if definition["variable"] not in output.variables:
            raise ConfigError(
                f"config key 'histograms.{name}.variable': the analysis returns no variable "
                f"{definition['variable']!r} (it has: {', '.join(output.variables)})"
            )


def jet_corrector(config: Mapping, dataset: str) -> JetCorrector | None:
    """The dataset's jet/MET corrections from the ``jets`` block (None without one)."""
    if "jets" not in config:
        return None
    spec = config["datasets"][dataset]
    return JetCorrector.from_config(config["jets"], is_data=spec["is_data"], jec=spec.get("jec"))


def build(
    config: Mapping, dataset: str, systematics: str | Sequence[str], events: Any
) -> dict[str, Any]:
    """Histograms (lazy or eager, like ``events``) of the analysis for ``systematics``.

    The analysis runs once on the nominal objects (serving nominal, weight and scale
    variations) and once per object variation, or, for lazy events with at least
    ``stack_object_variations`` of them, once on all object variations stacked one after the
    other (each a block of partitions). Each variation is one fill of the shared histograms'
    ``systematic`` axis, so one compute reads the columns once for all of them.
    """
    systematics = [systematics] if isinstance(systematics, str) else list(systematics)
    spec = config["datasets"][dataset]
    analysis = load_analysis(config["analysis"]["callable"])
    context = Context(
        dataset,
        spec["is_data"],
        "nominal",
        dict(config["analysis"]["options"]),
        load_all(config["corrections"]),
        dict(config["models"]),
    )
    corrector = jet_corrector(config, dataset)
    groups: dict[str, list[str]] = {}
    for systematic in systematics:
        key = systematic if shape_variation(config, systematic) else "nominal"
        groups.setdefault(key, []).append(systematic)
    lazy = isinstance(events, dak.Array)
    regions = {name: region["cuts"] for name, region in config["regions"].items()}
    hists, cutflow = _book(config, systematics, lazy)

    def fill(output: AnalysisOutput, members: Sequence[Sequence[str]], part: Any = None) -> None:
        """Fill every histogram from ``output``: ``members[i]`` are the systematics of block
        ``i`` (``part(array, i)`` selects it; no ``part``: one block, the whole output)."""
        _check_output(config, output)
        filler = H.Filler({r: output.selection.all(*cuts) for r, cuts in regions.items()})
        passed = {r: output.selection.n_passed(*cuts) for r, cuts in regions.items()}
        for block, names in enumerate(members):
            select = None if part is None else functools.partial(part, block=block)
            for systematic in names:
                weight = systematic_weight(config, output, systematic)
                for name, h in hists.items():
                    variable = config["histograms"][name]["variable"]
                    for region in h.axes["region"]:
                        filler.fill(
                            h,
                            region=region,
                            systematic=systematic,
                            variable=variable,
                            values=output.variables[variable],
                            weight=weight,
                            select=select,
                        )
                for region in regions:
                    for name, h in cutflow.items():
                        args = {"passed": passed[region]}
                        if name == H.CUTFLOW and weight is not None:
                            args["weight"] = weight
                        if select is not None:
                            args = {k: select(v) for k, v in args.items()}
                        if "weight" in args and not lazy:  # lazily: masked with the
                            # same weight above, awkward refuses a length mismatch there
                            args["weight"] = H.checked_weight(
                                args["passed"], args["weight"], "cutflow", region
                            )
                        h.fill(region=region, systematic=systematic, **args)

    shapes = [key for key in groups if key != "nominal"]
    if "nominal" in groups:
        nominal = corrector.apply(events) if corrector else events
        fill(analysis(nominal, context), [groups["nominal"]])
    varied = {key: corrector.apply(events, shape_variation(config, key)) for key in shapes}
    stacked = None
    if lazy and len(shapes) >= config["stack_object_variations"]:
        stacked = CorrectedEvents.stack(list(varied.values()))
    if stacked is not None:  # one analysis run on all object variations, block by block
        n = events.npartitions
        part = lambda a, block: a.partitions[block * n : (block + 1) * n]  # noqa: E731
        codes = stack([dak.zeros_like(events.luminosityBlock, dtype=np.int64) + i
                       for i in range(len(shapes))])  # fmt: skip
        jes = PerBlock(codes, tuple(jes_variation(config, key) for key in shapes))
        output = analysis(stacked, replace(context, systematic=OBJECT_VARIATIONS, jes=jes))
        fill(output, [groups[key] for key in shapes], part)
    else:
        for key in shapes:
            varied_context = replace(context, systematic=key, jes=jes_variation(config, key))
            fill(analysis(varied[key], varied_context), [groups[key]])
    return {**hists, **cutflow}


def _book(config: Mapping, systematics: Sequence[str], lazy: bool) -> tuple[dict, dict]:
    """Empty histograms and cutflow histograms of the config, for ``systematics``."""
    regions = {name: region["cuts"] for name, region in config["regions"].items()}
    hists = H.book(config["histograms"], list(regions), systematics, lazy=lazy)
    return hists, H.book_cutflow(regions, systematics, lazy=lazy)


def _chunks(record: Mapping[str, Any], step: int) -> list[tuple[int, int]]:
    """A file's partitions: the cluster-aligned chunks preprocessing recorded, or even steps."""
    if record.get("chunk_size") == step and record.get("chunks") is not None:
        return [(a, b) for a, b in record["chunks"]]
    n = record["entries"]
    return [(a, min(a + step, n)) for a in range(0, n, step)]


def _covers(chunks: Sequence[tuple[int, int]], entries: int) -> bool:
    """Whether ``chunks`` are exactly ``[0, entries)`` cut in consecutive pieces."""
    edges = [0, *(b for _, b in chunks)]
    return [a for a, _ in chunks] == edges[:-1] and edges[-1] == entries


def _certified(config: Mapping, dataset: str, events: Any, layout: str) -> tuple[Any, Any]:
    """``(events, n_certified)``: data events in the dataset's golden JSON, or all of them.
    ``layout`` is the file whose branches define the events (named in errors)."""
    mask_file = config["datasets"][dataset].get("lumi_mask")
    if mask_file is None:
        return events, None
    try:
        lumi_mask = LumiMask(mask_file)
    except LumiMaskError as err:  # the golden JSON's problem, not a data file's
        raise ConfigError(f"config key 'datasets.{dataset}.lumi_mask': {err}") from None
    try:
        mask = lumi_mask.events(events)
    except KeyError as err:
        raise InputError(
            f"dataset {dataset!r}, file {layout!r}: config key 'lumi_mask': {err.args[0]}"
        ) from None
    return events[mask], lib(mask).sum(mask)


class ReadLedger:
    """What a job reads of its files: chunks, and chunks skipped (``on_bad_file: skip``) with
    the reason. Under ``fail``, :meth:`bad` re-raises instead."""

    def __init__(self, config: Mapping, dataset: str, files: Sequence[Mapping[str, Any]]):
        self.policy = on_bad_file(config, dataset)
        self.dataset = dataset
        self.steps = {f["path"]: _chunks(f, config["step_size"]) for f in files}
        self.skipped: list[dict[str, Any]] = []

    def bad(self, error: Exception, path: str, chunk: tuple[int, int] | None = None) -> None:
        """Skip ``chunk`` of ``path`` (all its chunks without one), or raise ``error``."""
        reason = str(error)
        if not reason.startswith("dataset "):
            reason = f"dataset {self.dataset!r}, {reason}"
        if self.policy == "fail":
            message = f"{reason}{SKIP_HINT}"
            if isinstance(error, ChunkReadError):
                raise ChunkReadError(message, error.path, error.start, error.stop) from None
            raise InputError(message) from None
        log.warning("skipping (on_bad_file: skip): %s", reason)
        gone = [c for c in self.steps[path] if chunk is None or c == chunk]
        self.steps[path] = [c for c in self.steps[path] if c not in gone]
        self.skipped += [{"path": path, "start": a, "stop": b, "reason": reason} for a, b in gone]

    def reading(self, files: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """The files with chunks left to read."""
        return [f for f in files if any(b > a for a, b in self.steps[f["path"]])]


def preflight(ledger: ReadLedger, files: Sequence[Mapping[str, Any]]) -> None:
    """Open every file before any event is read: missing, damaged or changed files fail the
    job with an :class:`InputError` naming them (or are skipped)."""
    where = f"dataset {ledger.dataset!r}"
    for f in files:
        try:
            ttree = open_checked(f["path"], f["tree"], where=where)
            if ttree.num_entries != f["entries"]:
                raise InputError(
                    f"{where}, file {f['path']!r}: {ttree.num_entries} entries, "
                    f"{f['entries']} when it was preprocessed: the file changed; rerun the "
                    "workflow (snakemake reruns preprocessing of changed files)"
                )
        except InputError as err:
            ledger.bad(err, f["path"])


def _lazy_graph(config, dataset, systematics, ledger, files) -> tuple[Any, list[Mapping]]:
    """The optimized graph ``(histograms, n_certified, sumw)`` over the files' chunks, and the
    files it reads. The first file defines the event layout: if it lacks a field the analysis
    uses, it is the bad file (a later file without a needed branch is found when read)."""
    while True:
        reading = ledger.reading(files)
        if not reading:
            return None, []
        events = lazy_events(
            {f["path"]: f["tree"] for f in reading},
            steps={f["path"]: ledger.steps[f["path"]] for f in reading},
            retries=(config["retries"]["read"], config["retries"]["backoff"]),
        )
        layout = reading[0]["path"]
        try:
            selected, certified = _certified(config, dataset, events, layout)
            graph = build(config, dataset, systematics, selected)
        except AttributeError as err:  # a field the analysis uses is not in the first file
            if not is_missing_field(err):
                raise
            ledger.bad(
                InputError(
                    f"dataset {dataset!r}, file {layout!r}: the analysis reads a branch this "
                    f"file does not have ({err}); is it the right kind of file?"
                ),
                layout,
            )
            continue
        except InputError as err:
            ledger.bad(err, layout)
            continue
        sumw = None
        if not config["datasets"][dataset]["is_data"]:
            sumw = dak.sum(dak.values_astype(events.genWeight, "float64"))
        (optimized,) = dask.optimize((graph, certified, sumw))  # reads only what is needed
        return optimized, reading


@contextlib.contextmanager
def _checkpoints(config: Mapping, scheduler: str, workers: int) -> Iterator[Any]:
    """For ``persist_checkpoints`` on a distributed scheduler: one client for the job, on
    which the intermediates the analysis marks are persisted; else None (no-op marks)."""
    if not config["persist_checkpoints"]:
        yield None
        return
    if scheduler in execution.LOCAL:
        log.info("persist_checkpoints needs a distributed scheduler (this job: %r); one "
                 "graph computes each intermediate once anyway", scheduler)  # fmt: skip
        yield None
        return
    with execution.connect(scheduler, workers) as client, persisting(client) as kept:
        yield client
        if kept.names:
            log.info("checkpoints persisted: %s", ", ".join(kept.names))


def _compute_lazy(
    config: Mapping,
    dataset: str,
    systematics: Sequence[str],
    files: Sequence[Mapping[str, Any]],
    ledger: ReadLedger,
    label: str,
    progress_interval: float | None,
    **where: Any,
) -> tuple[Any, Any, Any]:
    """``(histograms, n_certified, sumw)`` of the files' chunks in the ledger, computed on
    ``where`` (scheduler, workers, client); a bad chunk or file is skipped (``on_bad_file:
    skip``: the graph is built again without it) or raises. Nones if nothing is left."""
    while True:
        optimized, reading = _lazy_graph(config, dataset, systematics, ledger, files)
        if optimized is None:
            return None, None, None
        log.info("%s: %d chunks, %d files", label, sum(map(len, ledger.steps.values())),
                 len(reading))  # fmt: skip
        sizes = [b - a for f in reading for a, b in ledger.steps[f["path"]]]
        progress = (
            execution.Progress(label, sizes, progress_interval)
            if progress_interval is not None
            else None
        )
        try:
            return execution.compute(optimized, progress=progress, **where)
        except ChunkReadError as err:  # skip the chunk and compute again without it
            ledger.bad(err, err.path, (err.start, err.stop))
        except MissingBranchError as err:  # skip the file and compute again without it
            ledger.bad(err, err.path)


def run(
    config: Mapping,
    dataset: str,
    systematics: str | Sequence[str],
    files: Sequence[Mapping[str, Any]],
    *,
    scheduler: str | None = None,
    workers: int = 1,
    lazy: bool = True,
    progress_interval: float | None = 10.0,
) -> Result:
    """Analyze ``files`` (preprocess records: path, tree, entries, chunks) of ``dataset``.

    Returns a :class:`Result` with every histogram and cutflow for ``systematics`` (one name or
    several, filled in one graph). Only the records' ``chunks`` are read (a job of a chunk
    group, see :func:`brewflow.preprocess.groups`, gets records with some of a file's chunks);
    the result's ``meta["chunks"]`` says which, ``meta["skipped"]`` which chunks were not read
    and why (``on_bad_file: skip``; under ``fail`` a bad file or chunk raises an
    :class:`InputError` or :class:`ChunkReadError` naming it), and ``meta["sumw_read"]`` the
    sum of genWeight of the events read (MC). ``scheduler`` defaults to
    :func:`brewflow.execution.scheduler_name`; progress is logged every ``progress_interval``
    seconds (None: not at all).
    """
    systematics = [systematics] if isinstance(systematics, str) else list(systematics)
    known = systematics_for(config, dataset)
    for systematic in systematics:
        if systematic not in known:
            raise ConfigError(
                f"systematic {systematic!r} does not apply to dataset {dataset!r} "
                f"(it has: {', '.join(known)})"
            )
    is_data = config["datasets"][dataset]["is_data"]
    started = time.perf_counter()
    ledger = ReadLedger(config, dataset, files)
    preflight(ledger, files)
    label = f"{dataset}/{systematics[0] if len(systematics) == 1 else 'all systematics'}"
    scheduler = scheduler or execution.scheduler_name(config)
    computed = certified = sumw = None
    if lazy:
        with _checkpoints(config, scheduler, workers) as client:
            computed, certified, sumw = _compute_lazy(
                config, dataset, systematics, files, ledger, label, progress_interval,
                scheduler=scheduler, workers=workers, client=client,
            )  # fmt: skip
    bad = {s["path"] for s in ledger.skipped}
    if computed is None and all(f["path"] in bad for f in files):
        hists, cutflow = _book(config, systematics, lazy=False)  # every file skipped
        computed, certified = {**hists, **cutflow}, None
    if computed is None:  # eager (reference) path, or nothing left to read
        for f in ledger.reading(files) or [f for f in files if f["path"] not in bad][:1]:
            for a, b in ledger.steps[f["path"]] or [(0, 0)]:
                chunk = eager_events(f["path"], tree=f["tree"], start=a, stop=b)
                events, n = _certified(config, dataset, chunk, f["path"])
                part = build(config, dataset, systematics, events)
                computed = part if computed is None else {k: computed[k] + part[k] for k in part}
                certified = n if certified is None else certified + n
                if not is_data:
                    w = float(np.sum(np.asarray(chunk.genWeight, dtype=np.float64)))
                    sumw = w if sumw is None else sumw + w
    steps = ledger.steps
    complete = not ledger.skipped and all(_covers(steps[f["path"]], f["entries"]) for f in files)
    meta: dict[str, Any] = {
        "systematics": systematics,
        "events": int(sum(b - a for chunks in steps.values() for a, b in chunks)),
        "files": [f["path"] for f in files],
        "chunks": {path: [list(c) for c in chunks] for path, chunks in steps.items()},
        "skipped": ledger.skipped,
    }
    if not is_data:
        meta["sumw_read"] = float(sumw or 0.0)
        if not np.isfinite(meta["sumw_read"]):
            raise InputError(
                f"dataset {dataset!r}: the sum of genWeight of the events read is "
                f"{meta['sumw_read']}; a file changed since preprocessing? rerun preprocess"
            )
        if complete:
            meta["sumw"] = sum(f.get("sumw") or 0.0 for f in files)
    if certified is not None:
        meta["events_certified"] = int(certified)
        meta["lumi_mask"] = config["datasets"][dataset]["lumi_mask"]
    seconds = time.perf_counter() - started
    log.info(
        "%s: %d events in %.1f s%s",
        label,
        meta["events"],
        seconds,
        f"; {len(ledger.skipped)} chunk(s) skipped" if ledger.skipped else "",
    )
    return Result(
        dataset=dataset,
        process=process_of(config, dataset),
        is_data=is_data,
        histograms=computed,
        cutflows={name: list(region["cuts"]) for name, region in config["regions"].items()},
        meta=meta,
    )
