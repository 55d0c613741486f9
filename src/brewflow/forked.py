"""Compute a graph's partitions in forked processes: all cores for GIL-bound awkward code.

dask's threads share one interpreter: awkward's per-operation Python overhead holds the GIL,
so on compute-bound inputs a second thread adds ~20%. dask's ``processes`` scheduler ships
every task's output back to the parent (whole event arrays here), which costs more than it
saves. Here each worker process is forked from the parent after the graph is built and
optimized (it inherits the graph, nothing is pickled but partition numbers), computes its
share of whole partitions with dask's synchronous scheduler, and returns only their small
results (histograms), which the parent combines: the way a batch system splits a dataset,
within one job.

Every wait is bounded. The parent watches each worker's pipe and exit: a worker that dies
before its whole result has arrived (killed, out of memory, at any point) is noticed within
:data:`~brewflow.worker.POLL` seconds, its share is computed once more by a new worker, and
a second death raises :class:`WorkerLost`. A worker that hangs (a library whose thread pool
does not survive a fork, a dead file system) is one that finishes no task of its share for
``stall`` seconds (each finished task is reported to the parent, at most every
:data:`~brewflow.worker.POLL` seconds): it is ended and counts as a death. Workers die with
the parent: the kernel kills them when it dies (``PR_SET_PDEATHSIG`` on Linux), its SIGTERM
and SIGINT handlers end them first, and each worker watches its parent's pid. (What a worker
runs: :mod:`brewflow.worker`.)

Used for collections with one output key per partition (dask-histogram's
``PartitionedHistogram``). Where ``fork`` is not available or safe (Windows, macOS), or with one
worker or partition, the partitions are computed in this process by dask's threads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import logging
import multiprocessing
import operator
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import reduce
from typing import Any, NamedTuple

import brewflow.worker
from brewflow.errors import BrewflowError
from brewflow.worker import Task, work

__all__ = [
    "GRACE",
    "STALL",
    "Partitioned",
    "WorkerLost",
    "available",
    "compute_keys",
    "compute_partitions",
    "optimized",
]

log = logging.getLogger(__name__)

GRACE = 5.0
"""Seconds a worker has to exit once it sent its result or was sent SIGTERM; then SIGKILL."""
STALL = 600.0
"""Seconds a worker may go without finishing a task before it is taken as hung (the
default of :func:`compute_partitions` and :func:`compute_keys`)."""
SUSPENDED = 2.0
"""Seconds the parent's look at its workers may come late before it counts as stopped with
them (a suspended job: that time is no worker's stall)."""


class WorkerLost(BrewflowError):
    """A forked worker died or hung before sending its result, twice for the same
    partitions."""


def available() -> bool:
    """Whether worker processes can be forked here: not on macOS, where a forked process
    that uses the system's frameworks may crash (Python's own advice)."""
    return "fork" in multiprocessing.get_all_start_methods() and sys.platform != "darwin"


class Partitioned(NamedTuple):
    """An optimized graph and, per collection, its output key of each partition."""

    graph: dict
    keys: dict[str, list]


def optimized(collections: Mapping[str, Any]) -> Partitioned:
    """The graph of partitioned dask collections, optimized as ``dask.compute`` would (column
    projection for dask-awkward inputs), with their per-partition keys."""
    import dask

    keys = {n: list(c.__dask_keys__()) for n, c in collections.items()}
    if len({len(k) for k in keys.values()}) > 1:
        raise ValueError("the collections must have the same number of partitions")
    graph = dask.base.collections_to_dsk(list(collections.values()), optimize_graph=True)
    return Partitioned(dict(graph), keys)


def compute_partitions(
    work: Partitioned,
    workers: int,
    combine: Callable[[Any, Any], Any] = operator.add,
    stall: float | None = STALL,
    progress: Callable[[int, int], None] | None = None,
    keep_memory: bool = False,
    sources: Sequence[tuple[str, int, int]] | None = None,
) -> dict[str, Any]:
    """``{name: combined result}``: every partition of ``work`` computed, by ``workers``
    forked processes, each partition's results merged with ``combine``. Raises
    :class:`WorkerLost` where a share's worker dies, or finishes no task for ``stall``
    seconds (None: no limit), twice; a worker's own exception is raised here. ``progress``,
    when given, is called with the output keys computed so far and their number, as the
    workers report them (at least every :data:`~brewflow.worker.POLL` seconds while they run).
    ``keep_memory``: the forked workers keep the memory they free for their next arrays
    (:func:`brewflow.allocator.keep_freed_memory`; never this process, also when the
    partitions are computed here): for partitions of ~100k events, whose arrays of MB glibc
    would otherwise hand back and fault in again at every step (the ADL queries: 0.27 s of a
    worker's 1.6 s); on chunks of 10k events it measured 6% slower. ``sources``: the
    ``(file, start, stop)`` each partition reads, to name a lost worker's share by (its files
    and entries; else the partitions' numbers)."""
    import dask.threaded

    collections = list(work.keys)
    keys: Any = [work.keys[n] for n in collections]
    npartitions = len(keys[0])
    if sources is not None and len(sources) != npartitions:
        raise ValueError(f"{len(sources)} sources for {npartitions} partitions")
    workers = max(1, min(workers, npartitions))
    if workers == 1 or not available():
        with _counted({k for ks in keys for k in ks}, progress):
            outputs = dask.threaded.get(work.graph, keys, num_workers=workers)
        return {n: reduce(combine, out) for n, out in zip(collections, outputs, strict=True)}
    shares = [list(range(npartitions))[i::workers] for i in range(workers)]
    wanted = lambda share: [[k[i] for i in share] for k in keys]  # noqa: E731

    def what(share: list[int]) -> str:
        if sources is None:
            return f"partitions {_listed(share)} of {npartitions}"
        return f"{len(share)} partitions of {npartitions} ({_read_by(share, sources)})"

    watch = _Watch(what, stall, progress)
    partials = _in_workers(work.graph, shares, wanted, combine, watch, keep_memory)
    merged = partials[0]
    for part in partials[1:]:
        merged = [combine(a, b) for a, b in zip(merged, part, strict=True)]
    return dict(zip(collections, merged, strict=True))


def compute_keys(
    graph: Mapping,
    keys: Sequence[Any],
    workers: int,
    names: Sequence[str] | None = None,
    stall: float | None = STALL,
) -> list[Any]:
    """The values of ``keys`` of the (optimized, low-level) ``graph``, in order: each of
    ``workers`` forked processes computes every ``workers``-th key with dask's synchronous
    scheduler and sends back its values (small ones: histograms, counts). Waits, deaths and
    stalls as :func:`compute_partitions`; a lost worker is named by its keys' ``names``
    (e.g. the file and entries of a chunk)."""
    import dask.threaded

    workers = max(1, min(workers, len(keys)))
    if workers == 1 or not available():
        return list(dask.threaded.get(dict(graph), list(keys), num_workers=workers))
    shares = [list(range(len(keys)))[i::workers] for i in range(workers)]
    wanted = lambda share: [[keys[i] for i in share]]  # noqa: E731

    def what(share: list[int]) -> str:
        return _listed([names[i] for i in share]) if names else f"keys {_listed(share)}"

    partials = _in_workers(graph, shares, wanted, None, _Watch(what, stall))
    out: list[Any] = [None] * len(keys)
    for share, (values,) in zip(shares, partials, strict=True):
        for i, value in zip(share, values, strict=True):
            out[i] = value
    return out


def _in_workers(
    graph: Mapping,
    shares: list[list[int]],
    wanted: Callable[[list[int]], list[list[Any]]],
    combine: Callable[[Any, Any], Any] | None,
    watch: _Watch,
    keep_memory: bool = False,
) -> list[list[Any]]:
    """Per share, per group of ``wanted(share)``: its keys' values (combined when ``combine``
    is given), each share computed by a worker forked from this process."""
    gc.freeze()  # the workers' collections leave the parent's objects (and their pages,
    try:  # shared until written) alone
        return _run(Task(graph, wanted, combine, keep_memory), shares, watch)
    finally:
        gc.unfreeze()


class _Watch(NamedTuple):
    """How a share is named in messages, the seconds its worker may go without finishing
    a task (None: no limit), and who is told the output keys computed so far (and of how
    many)."""

    what: Callable[[list[int]], str]
    stall: float | None
    progress: Callable[[int, int], None] | None = None


@dataclasses.dataclass
class _Worker:
    process: Any  # multiprocessing's forked Process
    pipe: Any  # the parent's (reading) end of the worker's pipe
    seen: float  # when it last finished a task (time.monotonic), or started
    finished: int = 0  # output keys of its share it reported computed


_ALIVE = object()  # a worker's messages so far were reports of finished tasks
_FEWER = ("Rerun with fewer workers (analyze: --threads, config threads; adl: --workers) or "
          "the threads scheduler (--scheduler threads; config scheduler: threads)")  # fmt: skip


def _run(task: Task, shares: list[list[int]], watch: _Watch) -> list[list[Any]]:
    """Each share's results, from a forked worker per share (one more for a share whose
    worker died or hung)."""
    context = multiprocessing.get_context("fork")
    poll = brewflow.worker.POLL  # (the workers' own: one constant, read at each run)
    running: dict[int, _Worker] = {}
    results: dict[int, list[Any]] = {}
    lost = dict.fromkeys(range(len(shares)), 0)
    outputs = [sum(map(len, task.wanted(share))) for share in shares]
    with _children_end_with_this_process(running):
        try:
            for i, share in enumerate(shares):
                running[i] = _start(context, task, share)
            looked = time.monotonic()
            while running:
                waited = [w.pipe for w in running.values()] + [
                    w.process.sentinel for w in running.values()
                ]
                ready = set(multiprocessing.connection.wait(waited, timeout=poll))
                now = time.monotonic()
                if now - looked > poll + SUSPENDED:  # this process was stopped too (Ctrl-Z,
                    for worker in running.values():  # a batch system's suspend): the time
                        worker.seen += now - looked - poll  # it lost is no worker's
                looked = now
                for i, worker in list(running.items()):
                    if worker.pipe in ready or worker.process.sentinel in ready:
                        outcome = _receive(worker)
                        if outcome is _ALIVE:
                            continue
                        del running[i]
                        if outcome is not None:
                            results[i] = outcome
                            continue
                        what = f"{_death(worker.process)} before sending its result"
                        advice = f"is the machine out of memory? {_FEWER}"
                    elif watch.stall and time.monotonic() - worker.seen > watch.stall:
                        del running[i]
                        worker.process.kill()  # (a stopped process would wait out SIGTERM)
                        worker.process.join(GRACE)
                        worker.pipe.close()
                        what = f"finished no task in {watch.stall:g} s (hung)"
                        advice = ("does a library it calls not survive a fork? Rerun with "
                                  "the threads scheduler (--scheduler threads; config "
                                  "scheduler: threads), or, for an analyze job whose "
                                  "single tasks take that long, a longer config "
                                  "stall_timeout")  # fmt: skip
                    else:
                        continue
                    what = f"the forked worker of {watch.what(shares[i])} {what}"  # (named only
                    lost[i] += 1  # when lost: not at every look)
                    if lost[i] > 1:
                        raise WorkerLost(f"{what}, twice; {advice}")
                    log.warning("%s; computing its share again", what)
                    running[i] = _start(context, task, shares[i])
                if watch.progress is not None:
                    done = sum(outputs[i] for i in results)
                    watch.progress(done + sum(w.finished for w in running.values()),
                                   sum(outputs))  # fmt: skip
        finally:
            _end(list(running.values()))
    return [results[i] for i in range(len(shares))]


def _start(context: Any, task: Task, share: list[int]) -> _Worker:
    """A forked worker computing ``share`` of ``task``; the parent keeps only the pipe's
    reading end."""
    reader, writer = context.Pipe(duplex=False)
    process = context.Process(target=work, args=(task, share, writer, os.getpid()))
    process.start()
    writer.close()  # the worker holds the only writing end: its death is the pipe's end
    return _Worker(process, reader, time.monotonic())


def _receive(worker: _Worker) -> Any:
    """The worker's result (raising its exception), None where it died first (the worker
    reaped either way, killed after :data:`GRACE` seconds), or :data:`_ALIVE` where it only
    reported finished tasks (``seen`` updated)."""
    message: Any = None
    try:
        for _ in range(2):  # the pipe read again once the worker is seen to have exited: it
            # may have sent its result and exited between the two looks
            while worker.pipe.poll(0):
                message = worker.pipe.recv()
                if message[0] != "done":
                    break
                worker.seen, worker.finished, message = time.monotonic(), message[1], None
            if message is not None:
                break
            if worker.process.exitcode is None:
                return _ALIVE
    except (EOFError, OSError):  # died (while sending)
        message = None
    worker.pipe.close()
    worker.process.join(GRACE)
    if worker.process.exitcode is None:
        worker.process.kill()
        worker.process.join(GRACE)
    if message is None:
        return None
    status, value = message
    if status == "error":
        raise value
    return list(value)


def _end(workers: Sequence[_Worker]) -> None:
    """``workers`` ended: SIGTERM, then SIGKILL after :data:`GRACE` seconds; all reaped."""
    for worker in workers:
        with contextlib.suppress(OSError, ValueError):
            worker.process.terminate()
    deadline = time.monotonic() + GRACE
    for worker in workers:
        worker.process.join(max(0.0, deadline - time.monotonic()))
        if worker.process.exitcode is None:
            worker.process.kill()
            worker.process.join(GRACE)
        with contextlib.suppress(OSError):
            worker.pipe.close()


def _listed(items: Sequence[Any], limit: int = 10) -> str:
    return ", ".join(map(str, items[:limit])) + (", ..." if len(items) > limit else "")


def _read_by(share: list[int], sources: Sequence[tuple[str, int, int]]) -> str:
    """What the partitions ``share`` read, by file (a worker's share takes every n-th
    partition: it spans the files), bounded: 3 files, 4 entry ranges each."""
    spans: dict[str, list[str]] = {}
    for i in share:
        path, start, stop = sources[i]
        spans.setdefault(path, []).append(f"{start}-{stop}")
    shown = [f"{path!r} entries {_listed(ranges, 4)}" for path, ranges in list(spans.items())[:3]]
    more = f"; {len(spans) - 3} more files" if len(spans) > 3 else ""
    return "; ".join(shown) + more


def _death(process: Any) -> str:
    code = process.exitcode
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


@contextlib.contextmanager
def _children_end_with_this_process(running: dict[int, _Worker]) -> Iterator[None]:
    """While the workers run: SIGTERM and SIGINT end them before this process goes (only the
    main thread has signal handlers; elsewhere the kernel and the workers' watch do)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    owner = os.getpid()
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: Any) -> None:
        if os.getpid() != owner:  # a worker, forked before it set its own handlers
            os._exit(128 + signum)
        _end(list(running.values()))
        running.clear()
        signal.signal(signum, previous[signum])
        if callable(previous[signum]):
            previous[signum](signum, frame)  # Python's SIGINT handler: KeyboardInterrupt
        else:
            os.kill(os.getpid(), signum)  # the default action: this process ends by it

    for signum in (signal.SIGTERM, signal.SIGINT):
        current = signal.getsignal(signum)
        if current not in (signal.SIG_IGN, None):
            previous[signum] = current
            signal.signal(signum, handler)
    try:
        yield
    finally:
        for number, restored in previous.items():
            signal.signal(number, restored)


@contextlib.contextmanager
def _counted(outputs: set, progress: Callable[[int, int], None] | None) -> Iterator[None]:
    """While dask computes in this process: ``progress`` told of the ``outputs`` done."""
    if progress is None:
        yield
        return
    from dask.callbacks import Callback

    done = 0

    def posttask(key: Any, *args: Any) -> None:
        nonlocal done
        if key in outputs:
            done += 1
            progress(done, len(outputs))

    with Callback(posttask=posttask):
        yield
