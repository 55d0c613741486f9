"""Run the configured analysis on one dataset for one systematic: one lazy graph, one compute.

The dataset's files are opened lazily with ``uproot.dask`` (only the columns the analysis needs
are read), the analysis callable builds selections, variables and weights, and every histogram
and cutflow is filled with ``hist.dask``; all of them are computed together, so the data are
read once. Sums are added per chunk, file and job in one fixed order
(:mod:`brewflow.jobs.pieces`); a workflow's job keeps them per file (or chunk) and computes
only the files and chunks it has not computed before (:mod:`brewflow.jobs.piececache`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

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
from brewflow.jobs.lazy import compute as compute_lazy
from brewflow.jobs.piececache import PieceCache, job_identity
from brewflow.jobs.pieces import Piece, fold
from brewflow.jobs.reading import ReadPlan, covers, preflight
from brewflow.nanoevents.inputs import InputError
from brewflow.nanoevents.reader import eager_events
from brewflow.results import provenance
from brewflow.results.inventory import group_chunks, read_inventory
from brewflow.results.model import Result
from brewflow.secrets import redact
from brewflow.weights import weight_sums

__all__ = ["analyze_job", "run"]

log = logging.getLogger(__name__)


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
    cache: PieceCache | None = None,
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
    total: Piece | None = None
    if lazy:
        with _checkpoints(config, scheduler, workers) as client:
            done = compute_lazy(
                config, dataset, systematics, files, plan, cache or PieceCache(None, ""),
                label, progress_interval, scheduler=scheduler, workers=workers, client=client,
            )  # fmt: skip
        total = done.total
        if done.cached:
            log.info("%s: %d chunks read, %d from the cache of earlier runs", label,
                     done.read, done.cached)  # fmt: skip
    else:  # the eager (reference) path: chunk by chunk, added in the same order
        total = fold(_eager_file(config, dataset, systematics, f, plan)
                     for f in plan.reading(files))  # fmt: skip
    bad = {s["path"] for s in plan.skipped}
    if total is None:  # nothing read: every file skipped, or none has events
        good = [f for f in files if f["path"] not in bad][:1]
        if good:  # the first file's empty range: every sum of an empty dataset, zeros
            total = _eager_file(config, dataset, systematics, good[0], plan, [(0, 0)])
        else:
            hists, cutflow = book_histograms(config, systematics, lazy=False)
            total = {f"h:{k}": h for k, h in {**hists, **cutflow}.items()}
    assert total is not None
    empty = {k: h for part in book_histograms(config, systematics, lazy=False) for k, h in
             part.items()}  # fmt: skip
    filled = {k[2:]: v for k, v in total.items() if k.startswith("h:")}
    computed = merge_stacked({**{k: h for k, h in empty.items() if k not in filled}, **filled})
    exposures = {k[2:]: v for k, v in total.items() if k.startswith("x:")}
    certified, sumw = total.get("certified"), total.get("sumw")
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
        meta["replicas"] = _replicas_read(total.get("reads"), plan)
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


def _eager_file(
    config: Mapping, dataset: str, systematics: Sequence[str], f: Mapping[str, Any],
    plan: ReadPlan, chunks: Sequence[tuple[int, int]] | None = None,
) -> Piece | None:  # fmt: skip
    """One file's value on the eager path: its chunks' pieces (``chunks``, default those of
    the plan) added in chunk order."""
    pieces = []
    for a, b in plan.steps[f["path"]] if chunks is None else chunks:
        chunk = eager_events(f["path"], tree=f["tree"], start=a, stop=b,
                             locations=plan.locations([f]))  # fmt: skip
        graph = build(config, dataset, systematics, chunk, f["path"])
        piece = {f"h:{k}": h for k, h in graph.histograms.items()}
        piece.update({f"x:{k}": int(n) for k, n in graph.exposures.items()})
        if graph.certified is not None:
            piece["certified"] = int(graph.certified)
        if not config["datasets"][dataset]["is_data"]:
            piece["sumw"] = weight_sums(chunk.genWeight)[0]
        pieces.append(piece)
    return fold(pieces)


def _replicas_read(reads: Any, plan: ReadPlan) -> list[dict[str, Any]]:
    """Per chunk of a remote file: the replica it was read from and the replicas that failed
    before (from the lazy read's report; the eager path reads from the preflight's choice)."""
    if reads is None:
        return [{"path": path, "start": a, "stop": b, "replica": urls[0], "failed": []}
                for path, urls in plan.replicas.items() for a, b in plan.steps[path]]  # fmt: skip
    remote = {redact(path) for path in plan.replicas}  # (pieces from the cache hold their
    # URLs redacted, as every file brewflow writes)
    out = [
        {**record, "failed": list(record["failed"])}
        for record in reads
        if redact(record["path"]) in remote
    ]
    return sorted(out, key=lambda r: (r["path"], r["start"]))


def analyze_job(
    config: Mapping,
    dataset: str,
    inventory: str | Path,
    systematics: Sequence[str] | None = None,
    *,
    group: int | None = None,
    pieces: Path | None = None,
    **options: Any,
) -> Result:
    """One analyze job of the workflow: ``dataset``'s files from its ``inventory`` (all of
    them, or chunk group ``group`` of ``events_per_job``), for ``systematics`` (None: every
    variation of the dataset), with provenance; ``pieces``: the folder of the cache of
    pieces (:mod:`brewflow.jobs.piececache`; None: none). ``options`` go to :func:`run`."""
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
    cache = PieceCache(pieces, job_identity(config, dataset, systematics, analysis_code(config)))
    result = run(config, dataset, systematics, files, cache=cache, **options)
    if group is not None:
        result.meta["group"] = [group, len(groups)]
    result.meta["provenance"] = provenance.record(
        config=config, inputs=files, payloads=payload_files(config, dataset),
        analysis=analysis_code(config),
    )  # fmt: skip
    return result
