"""An analyze job's lazy computation: one graph over the chunks not yet computed, its sums per
file and per chunk added in the fixed order of :mod:`brewflow.jobs.pieces`, the cache of
pieces (:mod:`brewflow.jobs.piececache`) used and filled.

Each file of the job is one *unit* (its chunks' pieces added in the graph) unless some of its
chunks are skipped now or were computed before without the others (a job that skipped chunks,
then fills them in): then each chunk is a unit. Units are computed in batches of a few per
worker, in file order, and each file's value is added to the job's total as soon as it is
known, so a job holds a batch of values, not one per file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import dask

from brewflow.jobs import execution
from brewflow.jobs.build import build
from brewflow.jobs.gate import DataGate
from brewflow.jobs.piececache import PieceCache
from brewflow.jobs.pieces import (
    Piece,
    add,
    chunk_keys,
    fold,
    partition_local,
    piece_graph,
    unit_values,
)
from brewflow.jobs.reading import ReadPlan, file_chunks
from brewflow.locations import reads_remotely
from brewflow.nanoevents.inputs import InputError, MissingBranchError, is_missing_field
from brewflow.nanoevents.reader import ChunkReadError, lazy_events
from brewflow.weights import weight_sums

__all__ = ["Computed", "compute"]

log = logging.getLogger(__name__)

Chunk = tuple[int, int]
FORKED_BATCH = 8
"""Chunks per worker of a batch computed in forked workers (a worker is forked per batch,
inheriting the files the job opened, and its memory grows with the chunks it computes; a
batch's pieces are what the job holds)."""


@dataclass
class Computed:
    """The job's total piece (None: no chunk was read or found) and how many chunks were
    read now and taken from the cache."""

    total: Piece | None
    read: int = 0
    cached: int = 0


Unit = Chunk | None
"""A chunk of a file, or None: all the chunks the job reads of it."""


@dataclass
class _File:
    record: Mapping[str, Any]
    chunks: list[Chunk]  # the chunks the job reads of it now
    whole: bool  # one unit (its chunks added in the graph), else a unit per chunk
    cached: set[Unit]  # the units the cache has
    values: dict[Unit, Piece]  # the units computed now

    @property
    def units(self) -> list[Unit]:
        return [None] if self.whole else list(self.chunks)

    def missing(self) -> list[Unit]:
        return [u for u in self.units if u not in self.cached and u not in self.values]


class _Vanished(Exception):
    """A cache entry found when the job was planned is gone when its value is needed."""


class _Whole(Exception):
    """The graph reduces over the whole dataset: every chunk a job reads changes every
    piece, so the job is computed whole and keeps no piece."""


@dataclass(frozen=True)
class _Job:
    """What one lazy computation is of (the arguments of :func:`compute`)."""

    config: Mapping
    dataset: str
    systematics: Sequence[str]
    files: Sequence[Mapping[str, Any]]
    plan: ReadPlan
    label: str
    progress_interval: float | None
    where: Mapping[str, Any]


def compute(
    config: Mapping,
    dataset: str,
    systematics: Sequence[str],
    files: Sequence[Mapping[str, Any]],
    plan: ReadPlan,
    cache: PieceCache,
    label: str,
    progress_interval: float | None,
    **where: Any,
) -> Computed:
    """The sums of ``files``' chunks in ``plan`` (:mod:`brewflow.jobs.pieces`), on ``where``
    (scheduler, workers, client). A bad chunk or file is skipped (``on_bad_file: skip``: the
    pieces computed so far are kept in ``cache``, and the job computes again without it) or
    raises."""
    job = _Job(config, dataset, systematics, files, plan, label, progress_interval, where)
    while True:
        try:
            done = _attempt(job, cache)
        except ChunkReadError as err:  # skip the chunk and compute again without it
            plan.bad(err, err.path, (err.start, err.stop))
        except MissingBranchError as err:  # skip the file and compute again without it
            plan.bad(err, err.path)
        except _Vanished as err:
            log.info("%s; computing it", err)
        except _Whole:
            log.warning("%s: the analysis reduces over the whole dataset (a chunk's histograms "
                        "depend on the others): computed whole, its pieces not kept",
                        label)  # fmt: skip
            cache = PieceCache(None, cache.job)
        else:
            if done is not None:
                return done


def _files(plan: ReadPlan, files: Sequence[Mapping[str, Any]], cache: PieceCache) -> list[_File]:
    """The job's files with chunks left to read, each with the units the cache has."""
    out = []
    for f in plan.reading(files):
        chunks = [(a, b) for a, b in plan.steps[f["path"]] if b > a]
        if cache.has(f, chunks):
            out.append(_File(f, chunks, True, {None}, {}))
            continue
        found: set[Unit] = {c for c in chunks if cache.has(f, [c])}
        whole = not found and chunks == file_chunks(f, plan.step_size)
        out.append(_File(f, chunks, whole, found, {}))  # (whole: none found)
    return out


class _Total:
    """The job's total: each file's value added as soon as it and those before it are known."""

    def __init__(self, files: Sequence[_File], cache: PieceCache) -> None:
        self.files, self.cache = files, cache
        self.at = 0
        self.value: Piece | None = None

    def advance(self) -> None:
        while self.at < len(self.files) and not self.files[self.at].missing():
            value = self._value(self.files[self.at])
            if value is not None and self.value is not None and set(value) != set(self.value):
                raise InputError(  # every piece of a job has its sums: an entry was altered
                    f"the cached sums of {self.files[self.at].record['path']!r} are not the "
                    f"job's ({sorted(set(value) ^ set(self.value))[:3]} differ): the cache of "
                    "pieces was altered; remove .brewflow/cache/analyze and rerun"
                )
            if value is not None:
                self.value = value if self.value is None else add(self.value, value)
            self.at += 1

    def _value(self, f: _File) -> Piece | None:
        """A file's value: its units' values added in chunk order (kept in the cache as the
        file's when it was made of chunk pieces); its computed values are let go."""
        pieces = [self._unit(f, u) for u in f.units]
        f.values.clear()
        if f.whole:
            return pieces[0]
        value = fold(pieces)
        if value is not None:  # the next job reading these chunks of the file finds one piece
            self.cache.store(f.record, f.chunks, value)
        return value

    def _unit(self, f: _File, unit: Unit) -> Piece:
        if unit in f.values:
            return f.values[unit]
        chunks = f.chunks if unit is None else [unit]
        value = self.cache.load(f.record, chunks)
        if value is None:
            raise _Vanished(f"the cached piece of {f.record['path']!r} {unit or ''} is gone")
        return value


def _attempt(job: _Job, cache: PieceCache) -> Computed | None:
    """One try at the job: None when a file turned out bad building the graph (marked: plan
    again)."""
    todo = _files(job.plan, job.files, cache)
    total = _Total(todo, cache)
    done = Computed(None, cached=sum(len(f.chunks) if u is None else 1
                                     for f in todo for u in f.cached))  # fmt: skip
    total.advance()
    reading = [f for f in todo if f.missing()]
    if reading:
        steps = {f.record["path"]: f.chunks if f.whole else [c for c in f.missing()
                                                               if c is not None]
                 for f in reading}  # fmt: skip
        graph = _lazy_graph(job, [f.record for f in reading], steps)
        if graph is None:  # the first file lacks a field: marked bad
            return None
        work = _pieces(graph, reading, steps)
        forks = False
        if not partition_local(work.graph):  # a dataset-wide reduction: every chunk, no
            # piece kept
            if cache.enabled or len(reading) < len(todo) or done.cached:
                raise _Whole
            batch = len(work.units)  # one compute: the reduction reads every chunk once
        else:
            remote = any(reads_remotely(f.record) for f in reading)
            forks = execution.forks(remote=remote, **job.where)
            per_worker = FORKED_BATCH if forks else 4  # (forked: a batch forks its workers)
            batch = per_worker * int(job.where.get("workers") or 1)
            batch = batch if forks else max(8, batch)
        _run(job, work, reading, steps, cache, total, batch, forks)
        done.read = sum(map(len, steps.values()))
    total.advance()
    done.total = total.value
    return done


def _lazy_graph(
    job: _Job, reading: Sequence[Mapping[str, Any]], steps: Mapping[str, Sequence[Chunk]]
) -> dict[str, Any] | None:
    """The optimized lazy sums of the analysis over ``steps`` of the ``reading`` files, by
    piece name: ``h:<histogram>``, ``certified``, ``sumw``, ``x:<exposure>``, ``reads`` (the
    reader's report). None when the first file lacks a field the analysis uses (then marked
    bad; a later file without a needed branch is found when read)."""
    config, dataset, plan = job.config, job.dataset, job.plan
    events, reads = lazy_events(
        {f["path"]: f["tree"] for f in reading},
        steps=steps,
        entries={f["path"]: f["entries"] for f in reading},
        retries=(config["retries"]["read"], config["retries"]["backoff"]),
        locations=plan.locations(reading),
        report=True,
    )
    layout = reading[0]["path"]
    try:
        graph = build(config, dataset, job.systematics, events, layout)
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
        return None
    except InputError as err:
        plan.bad(err, layout)
        return None
    sums: dict[str, Any] = {
        f"h:{k}": h for k, h in graph.histograms.items() if h.staged_fills()
    }  # (one no region of the dataset fills: empty)
    sums.update({f"x:{k}": n for k, n in graph.exposures.items()})
    if graph.certified is not None:
        sums["certified"] = graph.certified
    if not config["datasets"][dataset]["is_data"]:
        sums["sumw"] = weight_sums(events.genWeight)[0]
    if reads is not None:
        sums["reads"] = reads
    (optimized,) = dask.optimize(sums)  # reads only what is needed
    return dict(optimized)


class _Work(NamedTuple):
    """The piece graph of a job's missing units, its unit keys and the units (file, unit,
    chunk indices)."""

    graph: Any
    keys: list[Any]
    units: list[tuple[_File, Unit, list[int]]]


def _pieces(
    graph: Mapping[str, Any], reading: Sequence[_File], steps: Mapping[str, Sequence[Chunk]]
) -> _Work:
    """The piece graph of the missing units of ``reading`` (their chunks ``steps``,
    partitions in that order)."""
    units: list[tuple[_File, Unit, list[int]]] = []
    index = 0
    for f in reading:
        chunks = steps[f.record["path"]]
        if f.whole:
            units.append((f, None, list(range(index, index + len(chunks)))))
        else:
            units += [(f, c, [index + i]) for i, c in enumerate(chunks)]
        index += len(chunks)
    full, keys = piece_graph(graph, index, [members for _, _, members in units])
    return _Work(full, keys, units)


def _run(
    job: _Job,
    work: _Work,
    reading: Sequence[_File],
    steps: Mapping[str, Sequence[Chunk]],
    cache: PieceCache,
    total: _Total,
    batch: int,
    forks: bool,
) -> None:
    """Compute the units of ``work`` in batches of about ``batch`` chunks, in order (``forks``:
    each chunk's piece in a forked worker, workers forked again for each batch, a unit's
    pieces folded here once all are known), keeping each value in its file's ``values`` and in
    ``cache`` (once it passed the data gate), and adding each file to the ``total`` once
    known."""
    gate = DataGate.of(job.config, job.dataset)
    sizes = [b - a for f in reading for a, b in steps[f.record["path"]]]
    log.info("%s: %d chunks to read, %d files%s", job.label, len(sizes), len(reading),
             f", {job.where['workers']} forked workers" if forks else "")  # fmt: skip
    progress = (
        execution.Progress(job.label, sizes, job.progress_interval)
        if job.progress_interval is not None else None
    )  # fmt: skip

    def keep(unit: tuple[_File, Unit, list[int]], value: Piece) -> None:
        f, chunk, _ = unit
        gate.check({k[2:]: v for k, v in value.items() if k.startswith("x:")})  # before
        # anything of it is kept: a refused job leaves no blinded event on disk
        f.values[chunk] = value
        cache.store(f.record, f.chunks if chunk is None else [chunk], value)

    if forks:
        _run_forked(job, work, steps, batch, progress, keep, total)
        return
    full, keys, units = work
    start = 0
    while start < len(units):
        stop, size = start, 0
        while stop < len(units) and (size < batch or stop == start):
            size += len(units[stop][2])
            stop += 1
        values = execution.compute(unit_values(full, keys[start:stop]), progress=progress,
                                   **job.where)  # fmt: skip
        for unit, value in zip(units[start:stop], values, strict=True):
            keep(unit, value)
        total.advance()
        start = stop


def _run_forked(
    job: _Job,
    work: _Work,
    steps: Mapping[str, Sequence[Chunk]],
    batch: int,
    progress: execution.Progress | None,
    keep: Callable[[tuple[_File, Unit, list[int]], Piece], None],
    total: _Total,
) -> None:
    """:func:`_run` in forked workers: the chunks of every unit, in order, ``batch`` at a time
    (a worker's memory grows with the chunks it computes: it lives for one batch), a unit's
    value folded from its chunks' pieces once the last is known."""
    full, keys, units = work
    chunks = []  # (unit index, chunk key, partition, name), units' chunks in order
    for u, (key, (f, unit, members)) in enumerate(zip(keys, units, strict=True)):
        path = f.record["path"]
        spans = steps[path] if unit is None else [unit]
        chunks += [(u, k, m, f"{path} entries {a}-{b}")
                   for k, m, (a, b) in zip(chunk_keys(key, members), members, spans,
                                           strict=True)]  # fmt: skip
    pieces: list[list[Piece]] = [[] for _ in units]
    folded = 0  # the units before it are kept
    for start in range(0, len(chunks), batch):
        part = chunks[start : start + batch]
        values = execution.compute_forked(
            full, [c[1] for c in part], workers=job.where["workers"],
            chunks=[c[2] for c in part], names=[c[3] for c in part],
            stall=job.config["stall_timeout"] or None, progress=progress,
        )  # fmt: skip
        for (u, *_), value in zip(part, values, strict=True):
            pieces[u].append(value)
        while folded < len(units) and len(pieces[folded]) == len(units[folded][2]):
            value = fold(pieces[folded])
            assert value is not None
            pieces[folded] = []
            keep(units[folded], value)
            folded += 1
        total.advance()
