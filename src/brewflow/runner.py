"""Run the configured analysis on one dataset for one systematic: one lazy graph, one compute.

The dataset's files are opened lazily with ``uproot.dask`` (only the columns the analysis needs
are read), the analysis callable builds selections, variables and weights, and every histogram
and cutflow is filled with ``hist.dask``; all of them are computed together, so the data are
read once.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import dask
import dask_awkward as dak

from brewflow import histograms as H
from brewflow.analysis import AnalysisOutput, Context
from brewflow.config import ConfigError, process_of
from brewflow.corrections import load_all
from brewflow.nanoevents import eager_events, lazy_events
from brewflow.preprocess import InputError
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


def systematic_weight(config: Mapping, output: AnalysisOutput, systematic: str) -> Any:
    """The event weight for ``systematic`` (None for unweighted data)."""
    if not output.weights:
        if systematic != "nominal":
            raise ConfigError(f"systematic {systematic!r} needs event weights (MC)")
        return None
    if systematic == "nominal":
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


def build(config: Mapping, dataset: str, systematic: str, events: Any) -> dict[str, Any]:
    """Histograms (lazy or eager, like ``events``) of the analysis for one systematic."""
    spec = config["datasets"][dataset]
    analysis = load_analysis(config["analysis"]["callable"])
    context = Context(
        dataset,
        spec["is_data"],
        systematic,
        dict(config["analysis"]["options"]),
        load_all(config["corrections"]),
    )
    output = analysis(events, context)
    if not isinstance(output, AnalysisOutput):
        raise ConfigError(
            f"config key 'analysis.callable': {config['analysis']['callable']} returned "
            f"{type(output).__name__}; it must return brewflow.analysis.AnalysisOutput"
        )
    weight = systematic_weight(config, output, systematic)
    lazy = isinstance(events, dak.Array)
    regions = {name: region["cuts"] for name, region in config["regions"].items()}
    for name, cuts in regions.items():
        for cut in cuts:
            if cut not in output.selection:
                raise ConfigError(
                    f"config key 'regions.{name}.cuts': the analysis defines no cut {cut!r} "
                    f"(it has: {', '.join(output.selection.names)})"
                )
    masks = {region: output.selection.all(*cuts) for region, cuts in regions.items()}
    hists = H.book(config["histograms"], list(regions), [systematic], lazy=lazy)
    for name, h in hists.items():
        variable = config["histograms"][name]["variable"]
        if variable not in output.variables:
            raise ConfigError(
                f"config key 'histograms.{name}.variable': the analysis returns no variable "
                f"{variable!r} (it has: {', '.join(output.variables)})"
            )
        for region in h.axes["region"]:
            H.fill(
                h,
                region=region,
                systematic=systematic,
                values=output.variables[variable],
                mask=masks[region],
                weight=weight,
            )
    cutflow = H.book_cutflow(regions, [systematic], lazy=lazy)
    for region, cuts in regions.items():
        passed = output.selection.n_passed(*cuts)
        everything = passed >= 0
        for name, h in cutflow.items():
            H.fill(
                h,
                region=region,
                systematic=systematic,
                values=passed,
                mask=everything,
                weight=weight if name == H.CUTFLOW else None,
            )
    return {**hists, **cutflow}


def run(
    config: Mapping,
    dataset: str,
    systematic: str,
    files: Sequence[Mapping[str, Any]],
    *,
    scheduler: str | None = None,
    workers: int = 1,
    lazy: bool = True,
    progress: AbstractContextManager | None = None,
) -> Result:
    """Analyze ``files`` (preprocess records: path, tree, entries) of ``dataset``.

    Returns a :class:`Result` with every histogram and cutflow for ``systematic``. ``progress``
    (e.g. a dask ``ProgressBar``) is entered around the computation only.
    """
    if systematic not in systematics_for(config, dataset):
        raise ConfigError(
            f"systematic {systematic!r} does not apply to dataset {dataset!r} "
            f"(it has: {', '.join(systematics_for(config, dataset))})"
        )
    missing = [f["path"] for f in files if not Path(f["path"]).is_file()]
    if missing:
        raise InputError(
            f"dataset {dataset!r}: input file(s) missing since preprocessing: "
            f"{', '.join(missing)}; restore them or rerun the workflow to redo preprocessing"
        )
    step = config["step_size"]
    started = time.perf_counter()
    with_events = [f for f in files if f["entries"] > 0]
    if lazy and with_events:
        steps = {
            f["path"]: [(s, min(s + step, f["entries"])) for s in range(0, f["entries"], step)]
            for f in with_events
        }
        events = lazy_events({f["path"]: f["tree"] for f in with_events}, steps=steps)
        graph = build(config, dataset, systematic, events)
        (optimized,) = dask.optimize(graph)  # column projection: only needed branches are read
        log.info(
            "%s/%s: %d partitions, %d files",
            dataset,
            systematic,
            events.npartitions,
            len(with_events),
        )
        with progress or nullcontext():
            (computed,) = dask.compute(
                optimized,
                scheduler=scheduler or config["scheduler"],
                num_workers=workers,
                optimize_graph=False,
            )
    else:
        computed = None
        for f in with_events or files[:1]:
            part = build(config, dataset, systematic, eager_events(f["path"], tree=f["tree"]))
            computed = part if computed is None else {k: computed[k] + part[k] for k in part}
    meta = {
        "systematic": systematic,
        "events": int(sum(f["entries"] for f in files)),
        "sumw": sum(f.get("sumw") or 0.0 for f in files)
        if not config["datasets"][dataset]["is_data"]
        else None,
        "files": [f["path"] for f in files],
    }
    seconds = time.perf_counter() - started
    log.info("%s/%s: %d events in %.1f s", dataset, systematic, meta["events"], seconds)
    return Result(
        dataset=dataset,
        process=process_of(config, dataset),
        is_data=config["datasets"][dataset]["is_data"],
        histograms=computed,
        cutflows={name: list(region["cuts"]) for name, region in config["regions"].items()},
        meta=meta,
    )
