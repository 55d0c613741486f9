"""Run the configured analysis on one dataset for one systematic: one lazy graph, one compute.

The dataset's files are opened lazily with ``uproot.dask`` (only the columns the analysis needs
are read), the analysis callable builds selections, variables and weights, and every histogram
and cutflow is filled with ``hist.dask``; all of them are computed together, so the data are
read once.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import dask
import numpy as np

from brewflow.checkpoints import persisting
from brewflow.config import (
    ConfigError,
    dataset_spec,
    golden_json,
    payload_files,
    systematics_for,
)
from brewflow.jobs import execution
from brewflow.jobs.build import analysis_code, book_histograms, build, merge_stacked
from brewflow.jobs.gate import DataGate
from brewflow.jobs.reading import ReadPlan, covers, preflight
from brewflow.nanoevents.inputs import (
    InputError,
    MissingBranchError,
    is_missing_field,
)
from brewflow.nanoevents.reader import ChunkReadError, eager_events, lazy_events
from brewflow.results import provenance
from brewflow.results.inventory import group_chunks, read_inventory
from brewflow.results.model import Result
from brewflow.weights import weight_sums

__all__ = ["analyze_job", "run"]

log = logging.getLogger(__name__)


def _lazy_graph(config, dataset, systematics, plan, files) -> tuple[Any, list[Mapping]]:
    """The optimized graph ``(histograms, n_certified, sumw, reads, exposures)`` over the
    files' chunks
    (``reads``: per chunk, the replica it was read from), and the files it reads. The first
    file defines the event layout: if it lacks a field the analysis uses, it is the bad file (a
    later file without a needed branch is found when read)."""
    while True:
        reading = plan.reading(files)
        if not reading:
            return None, []
        events, reads = lazy_events(
            {f["path"]: f["tree"] for f in reading},
            steps={f["path"]: plan.steps[f["path"]] for f in reading},
            entries={f["path"]: f["entries"] for f in reading},
            retries=(config["retries"]["read"], config["retries"]["backoff"]),
            locations=plan.locations(reading),
            report=True,
        )
        layout = reading[0]["path"]
        try:
            graph = build(config, dataset, systematics, events, layout)
        except AttributeError as err:  # a field the analysis uses is not in the first file
            if not is_missing_field(err):
                raise
            plan.bad(
                InputError(
                    f"dataset {dataset!r}, file {layout!r}: the analysis reads a branch this "
                    f"file does not have ({err}); is it the right kind of file?"
                ),
                layout,
            )
            continue
        except InputError as err:
            plan.bad(err, layout)
            continue
        sumw = None
        if not config["datasets"][dataset]["is_data"]:
            sumw = weight_sums(events.genWeight)[0]
        (optimized,) = dask.optimize(  # reads only what is needed
            (graph.histograms, graph.certified, sumw, reads, graph.exposures)
        )
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
    plan: ReadPlan,
    label: str,
    progress_interval: float | None,
    **where: Any,
) -> tuple[Any, Any, Any, Any, Any]:
    """``(histograms, n_certified, sumw, reads, exposures)`` of the files' chunks in the plan,
    computed on
    ``where`` (scheduler, workers, client); a bad chunk or file is skipped (``on_bad_file:
    skip``: the graph is built again without it) or raises. Nones if nothing is left."""
    while True:
        optimized, reading = _lazy_graph(config, dataset, systematics, plan, files)
        if optimized is None:
            return None, None, None, None, None
        log.info("%s: %d chunks, %d files", label, sum(map(len, plan.steps.values())),
                 len(reading))  # fmt: skip
        sizes = [b - a for f in reading for a, b in plan.steps[f["path"]]]
        progress = (
            execution.Progress(label, sizes, progress_interval)
            if progress_interval is not None
            else None
        )
        try:
            return execution.compute(optimized, progress=progress, **where)
        except ChunkReadError as err:  # skip the chunk and compute again without it
            plan.bad(err, err.path, (err.start, err.stop))
        except MissingBranchError as err:  # skip the file and compute again without it
            plan.bad(err, err.path)


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
    group, see :func:`brewflow.results.inventory.group_chunks`, gets records with some of a
    file's chunks);
    the result's ``meta["chunks"]`` says which, ``meta["skipped"]`` which chunks were not read
    and why (``on_bad_file: skip``; under ``fail`` a bad file or chunk raises an
    :class:`InputError` or :class:`ChunkReadError` naming it), and ``meta["sumw_read"]`` the
    sum of genWeight of the events read (MC). ``scheduler`` defaults to
    :func:`brewflow.jobs.execution.scheduler_name`; progress is logged every ``progress_interval``
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
    plan = ReadPlan(config, dataset, files)
    preflight(plan, files)
    label = f"{dataset}/{systematics[0] if len(systematics) == 1 else 'all systematics'}"
    scheduler = scheduler or execution.scheduler_name(config)
    computed = certified = sumw = reads = None
    exposures: dict[str, Any] = {}
    if lazy:
        with _checkpoints(config, scheduler, workers) as client:
            computed, certified, sumw, reads, exposures = _compute_lazy(
                config, dataset, systematics, files, plan, label, progress_interval,
                scheduler=scheduler, workers=workers, client=client,
            )  # fmt: skip
        if computed is not None:
            computed = merge_stacked(computed)
    bad = {s["path"] for s in plan.skipped}
    if computed is None and all(f["path"] in bad for f in files):
        hists, cutflow = book_histograms(config, systematics, lazy=False)  # every file skipped
        computed, certified = {**hists, **cutflow}, None
    if computed is None:  # eager (reference) path, or nothing left to read
        for f in plan.reading(files) or [f for f in files if f["path"] not in bad][:1]:
            for a, b in plan.steps[f["path"]] or [(0, 0)]:
                chunk = eager_events(f["path"], tree=f["tree"], start=a, stop=b,
                                     locations=plan.locations([f]))  # fmt: skip
                graph = build(config, dataset, systematics, chunk, f["path"])
                part, n = graph.histograms, graph.certified
                computed = part if computed is None else {k: computed[k] + part[k] for k in part}
                certified = n if certified is None else certified + n
                exposures = {k: exposures.get(k, 0) + v for k, v in graph.exposures.items()}
                if not is_data:
                    w = weight_sums(chunk.genWeight)[0]
                    sumw = w if sumw is None else sumw + w
    DataGate.of(config, dataset).check(exposures or {})  # no output shows a window's events
    steps = plan.steps
    complete = not plan.skipped and all(covers(steps[f["path"]], f["entries"]) for f in files)
    meta: dict[str, Any] = {
        "systematics": systematics,
        "events": int(sum(b - a for chunks in steps.values() for a, b in chunks)),
        "files": [f["path"] for f in files],
        "chunks": {path: [list(c) for c in chunks] for path, chunks in steps.items()},
        "skipped": plan.skipped,
    }
    if plan.replicas:  # remote files: which replica served each chunk
        meta["replicas"] = _replicas_read(reads, plan)
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
        meta["lumi_mask"] = golden_json(config, dataset)
    seconds = time.perf_counter() - started
    log.info(
        "%s: %d events in %.1f s%s",
        label,
        meta["events"],
        seconds,
        f"; {len(plan.skipped)} chunk(s) skipped" if plan.skipped else "",
    )
    return Result(
        dataset=dataset,
        process=dataset,  # grouped into its process by normalisation (a regrouping reruns
        # only scale and what follows)
        is_data=is_data,
        histograms=dict(computed or {}),
        cutflows={name: list(region["cuts"]) for name, region in config["regions"].items()},
        meta=meta,
    )


def _replicas_read(reads: Any, plan: ReadPlan) -> list[dict[str, Any]]:
    """Per chunk of a remote file: the replica it was read from and the replicas that failed
    before (from the lazy read's report; the eager path reads from the preflight's choice)."""
    if reads is None:
        return [{"path": path, "start": a, "stop": b, "replica": urls[0], "failed": []}
                for path, urls in plan.replicas.items() for a, b in plan.steps[path]]  # fmt: skip
    out = [
        {**record, "failed": list(record["failed"])}
        for record in reads.to_list()
        if record["path"] in plan.replicas
    ]
    return sorted(out, key=lambda r: (r["path"], r["start"]))


def analyze_job(
    config: Mapping,
    dataset: str,
    inventory: str | Path,
    systematics: Sequence[str] | None = None,
    *,
    group: int | None = None,
    **options: Any,
) -> Result:
    """One analyze job of the workflow: ``dataset``'s files from its ``inventory`` (all of
    them, or chunk group ``group`` of ``events_per_job``), for ``systematics`` (None: every
    variation of the dataset), with provenance. ``options`` go to :func:`run`."""
    dataset_spec(config, dataset)
    files = read_inventory(inventory)["files"]
    if group is not None:
        groups = group_chunks(files, config["events_per_job"])
        if not 0 <= group < len(groups):
            raise ConfigError(
                f"dataset {dataset!r} has {len(groups)} chunk group(s) of "
                f"events_per_job={config['events_per_job']}; no group {group}"
            )
        files = groups[group]
    if systematics is None:
        systematics = systematics_for(config, dataset)
    result = run(config, dataset, systematics, files, **options)
    if group is not None:
        result.meta["group"] = [group, len(groups)]
    result.meta["provenance"] = provenance.record(
        config=config, inputs=files, payloads=payload_files(config, dataset),
        analysis=analysis_code(config),
    )  # fmt: skip
    return result
