"""Compute a graph's partitions in forked processes: all cores for GIL-bound awkward code.

dask's threads share one interpreter: awkward's per-operation Python overhead holds the GIL,
so on compute-bound inputs a second thread adds ~20%. dask's ``processes`` scheduler ships
every task's output back to the parent (whole event arrays here), which costs more than it
saves. Here each worker process is forked from the parent after the graph is built and
optimized (it inherits the graph, nothing is pickled but partition numbers), computes its
share of whole partitions with dask's synchronous scheduler, and returns only their small
results (histograms), which the parent combines: the way a batch system splits a dataset,
within one job.

Used for collections with one output key per partition (dask-histogram's
``PartitionedHistogram``). Where ``fork`` is not available (not Linux/macOS), or with one
worker or partition, the partitions are computed in this process by dask's threads.
"""

from __future__ import annotations

import multiprocessing
import operator
from collections.abc import Callable, Mapping, Sequence
from functools import reduce
from typing import Any, NamedTuple

__all__ = ["Partitioned", "available", "compute_partitions", "optimized"]

_GRAPH: dict[str, Any] = {}  # the graph the forked workers inherit


def available() -> bool:
    """Whether worker processes can be forked here."""
    return "fork" in multiprocessing.get_all_start_methods()


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
    work: Partitioned, workers: int, combine: Callable[[Any, Any], Any] = operator.add
) -> dict[str, Any]:
    """``{name: combined result}``: every partition of ``work`` computed, by ``workers``
    forked processes, each partition's results merged with ``combine``."""
    from concurrent.futures import ProcessPoolExecutor  # not at import: the CLI imports this module

    import dask.threaded

    names = list(work.keys)
    keys: Any = [work.keys[n] for n in names]
    npartitions = len(keys[0])
    workers = max(1, min(workers, npartitions))
    if workers == 1 or not available():
        outputs = dask.threaded.get(work.graph, keys, num_workers=workers)
        return {n: reduce(combine, out) for n, out in zip(names, outputs, strict=True)}
    shares = [list(range(npartitions))[i::workers] for i in range(workers)]
    _GRAPH.update(graph=work.graph, keys=keys)
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            partials = list(pool.map(_compute_share, shares, [combine] * workers))
    finally:
        _GRAPH.clear()
    merged = partials[0]
    for part in partials[1:]:
        merged = [combine(a, b) for a, b in zip(merged, part, strict=True)]
    return dict(zip(names, merged, strict=True))


def _compute_share(share: Sequence[int], combine: Callable[[Any, Any], Any]) -> list[Any]:
    """In a forked worker: partitions ``share`` of every collection, each combined."""
    import dask.local
    from dask.optimization import cull

    graph, keys = _GRAPH["graph"], _GRAPH["keys"]
    wanted: Any = [[k[i] for i in share] for k in keys]
    needed, _ = cull(graph, [key for group in wanted for key in group])  # only these
    outputs = dask.local.get_sync(needed, wanted)
    return [reduce(combine, out) for out in outputs]
