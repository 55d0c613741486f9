"""Where a graph computes (dask's local schedulers or dask.distributed) and its progress.

``scheduler`` is ``processes`` (the default: an analyze job's chunks computed whole in
``workers`` processes forked from the job, :mod:`brewflow.forked`, as ``brewflow adl`` does;
dask's threads for remote files, whose live XRootD/HTTP client is never forked, and for other
graphs), ``threads`` or ``sync`` (dask's local schedulers, ``workers`` of them),
``distributed`` (a ``LocalCluster`` of ``workers`` single-threaded worker processes, started
for the job and closed after it) or the address of a running scheduler
(``tcp://host:8786``), e.g. one started by ``brewflow cluster``, which serves every job. The
environment variable ``BREWFLOW_SCHEDULER`` overrides the config.

Progress is counted in chunks read (tasks of the reader layer) and events, logged as they
complete: ``dy/nominal: 12/40 chunks, 240000/800000 events (30%), 52000 events/s``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import dask
from dask.callbacks import Callback

from brewflow import forked
from brewflow.arrays import local_scheduler
from brewflow.config import SCHEDULER_ENV, check_scheduler
from brewflow.errors import BrewflowError

__all__ = [
    "ENV",
    "Progress",
    "SchedulerError",
    "compute",
    "compute_forked",
    "connect",
    "scheduler_name",
]

log = logging.getLogger(__name__)

ENV = SCHEDULER_ENV
LOCAL = ("threads", "processes", "sync")
CONNECT_TIMEOUT = "30s"  # how long a job waits for a scheduler at an address


class SchedulerError(BrewflowError, ConnectionError):
    """The dask scheduler a job is pointed at cannot be reached."""


def scheduler_name(config: Mapping) -> str:
    """The scheduler of this job: ``$BREWFLOW_SCHEDULER`` if set, else config ``scheduler``."""
    check_scheduler(os.environ.get(ENV))
    return os.environ.get(ENV) or config["scheduler"]


class Progress:
    """Chunks and events done of one job, logged at most every ``interval`` seconds (and at the
    end): ``label: done/total chunks, events (percent), rate``."""

    def __init__(self, label: str, sizes: Sequence[int], interval: float = 10.0) -> None:
        self.label = label
        self.sizes = list(sizes)
        self.interval = interval
        self.done: set[int] = set()
        self.started = time.perf_counter()
        self._last = self.started
        self._lock = threading.Lock()

    @property
    def events(self) -> int:
        return sum(self.sizes[i] for i in self.done)

    def line(self) -> str:
        total = sum(self.sizes)
        rate = self.events / max(time.perf_counter() - self.started, 1e-9)
        percent = 100.0 * self.events / total if total else 100.0
        return (
            f"{self.label}: {len(self.done)}/{len(self.sizes)} chunks, "
            f"{self.events}/{total} events ({percent:.0f}%), {rate:.0f} events/s"
        )

    def update(self, done: Iterator[int] | Sequence[int]) -> None:
        """Mark partitions ``done`` (indices); log when ``interval`` has passed."""
        with self._lock:
            self.done.update(done)
            now = time.perf_counter()
            if now - self._last >= self.interval and len(self.done) < len(self.sizes):
                self._last = now
                log.info(self.line())

    def finish(self) -> None:
        log.info(self.line())

    def finished(self, done: Sequence[int]) -> None:
        """Mark partitions ``done``; the last line once every one is."""
        self.update(done)
        if len(self.done) >= len(self.sizes):
            self.finish()


class _LocalProgress(Callback):
    """dask local-scheduler callback: a reader task finished = one chunk done."""

    def __init__(self, prefix: str, progress: Progress) -> None:
        super().__init__()
        self.prefix = prefix
        self.progress = progress

    def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        if isinstance(key, tuple) and key[0] == self.prefix:
            self.progress.update([key[1]])


def _chunk_counter(prefix: str, name: str) -> Any:
    from distributed.diagnostics.plugin import SchedulerPlugin

    class ChunkCounter(SchedulerPlugin):
        """Scheduler-side: indices of the reader tasks that finished (polled by the client)."""

        def __init__(self) -> None:
            self.name = name
            self.done: set[int] = set()

        def transition(self, key: Any, start: str, finish: str, *args: Any, **kw: Any) -> None:
            if finish == "memory" and isinstance(key, tuple) and key[0] == prefix:
                self.done.add(key[1])

    return ChunkCounter()


@contextlib.contextmanager
def connect(scheduler: str, workers: int) -> Iterator[Any]:
    """A ``distributed.Client`` for ``distributed`` (a LocalCluster for this block) or an
    address; None for dask's local schedulers. Logs the dashboard link."""
    if scheduler in LOCAL:
        yield None
        return
    from distributed import Client, LocalCluster

    if scheduler == "distributed":
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
        with cluster, Client(cluster) as client:
            log.info("dask LocalCluster: %d workers, dashboard %s", workers, client.dashboard_link)
            yield client
    else:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT)
        except OSError as err:
            raise SchedulerError(
                f"cannot connect to the dask scheduler {scheduler!r} (config key 'scheduler' "
                f"or ${ENV}): {err}; is `brewflow cluster` still running?"
            ) from err
        with client:
            log.info("dask scheduler %s, dashboard %s", scheduler, client.dashboard_link)
            yield client


def _reader_prefix(graph: Any) -> str | None:
    names = [name for name, layer in graph.layers.items()  # the reader's input layer, not
             if name.startswith("from-nanoaod")  # its report's layers
             and type(layer).__name__ == "AwkwardInputLayer"]  # fmt: skip
    return names[0] if len(names) == 1 else None


def compute(
    collections: Any,
    *,
    scheduler: str,
    workers: int,
    progress: Progress | None = None,
    poll: float = 1.0,
    client: Any = None,
) -> Any:
    """``dask.compute(collections)`` (already optimized) on ``scheduler`` with ``workers``, or
    on ``client`` (a ``distributed.Client`` already connected); ``progress`` is updated as
    chunks are read."""
    if scheduler in ("processes", "multiprocessing"):  # dask's would pickle every event array
        scheduler = "threads"  # between processes: forked workers only for :func:`compute_keys`
    parts, _ = dask.base.unpack_collections(collections)
    prefix = _reader_prefix(dask.base.collections_to_dsk(parts, optimize_graph=False))
    given = client is not None
    with contextlib.nullcontext(client) if given else connect(scheduler, workers) as client:
        if client is None:
            callbacks = [_LocalProgress(prefix, progress)] if progress and prefix else []
            with contextlib.ExitStack() as stack:
                for callback in callbacks:
                    stack.enter_context(callback)
                (out,) = dask.compute(
                    collections,
                    scheduler=local_scheduler(scheduler),
                    num_workers=workers,
                    optimize_graph=False,
                )
        else:
            out = _distributed(client, collections, prefix, progress, poll)
    if progress and len(progress.done) >= len(progress.sizes):  # (a job computing in
        # batches: after its last)
        progress.finish()
    return out


def forks(scheduler: str, workers: int, client: Any, remote: bool) -> bool:
    """Whether a job computes in forked worker processes: the ``processes`` scheduler, more
    than one worker, fork available, no remote file and no dask.distributed client."""
    return (scheduler in ("processes", "multiprocessing") and workers > 1 and client is None
            and not remote and forked.available())  # fmt: skip


def compute_forked(
    graph: Any, keys: Sequence[Any], *, workers: int, chunks: Sequence[int],
    names: Sequence[str], stall: float | None, progress: Progress | None = None,
) -> list[Any]:  # fmt: skip
    """The values of ``keys`` of the optimized high-level ``graph`` (they read the partitions
    ``chunks``; a lost or hung worker is named by its keys' ``names``), computed by
    ``workers`` forked processes (:mod:`brewflow.forked`), a worker that finishes no task
    for ``stall`` seconds taken as hung."""
    values = forked.compute_keys(dict(graph.cull(set(keys))), keys, workers, names, stall)
    if progress is not None:
        progress.finished(chunks)
    return values


def _distributed(
    client: Any, collections: Any, prefix: str | None, progress: Progress | None, poll: float
) -> Any:
    parts, repack = dask.base.unpack_collections(collections)
    futures = client.compute(parts, optimize_graph=False)
    gather = lambda: repack(client.gather(futures))[0]  # noqa: E731
    if progress is None or prefix is None:
        return gather()
    name = f"brewflow-progress-{prefix}-{id(progress)}"
    client.register_plugin(_chunk_counter(prefix, name))
    query: Callable = lambda dask_scheduler: sorted(dask_scheduler.plugins[name].done)  # noqa: E731
    try:
        while not all(f.done() for f in futures):
            time.sleep(poll)
            progress.update(client.run_on_scheduler(query))
        out = gather()
        progress.update(client.run_on_scheduler(query))
        return out
    finally:
        with contextlib.suppress(Exception):
            client.unregister_scheduler_plugin(name)
