"""One analyze job's sums per chunk, added up in one fixed order.

Every histogram and count of a job is a sum over its events, and a floating-point sum depends
on its order. brewflow fixes the order: each chunk (a partition of the lazy graph) gives a
*piece* (every histogram and count of its events), a file's value is its pieces added in
chunk order, and the job's value is its files' values added in inventory order. A job
computed from scratch and one that takes some files' or chunks' values from the cache
(:mod:`brewflow.jobs.piececache`) therefore agree to the last bit.

The pieces come from the optimized graph itself: every hist.dask histogram and every
dask-awkward sum ends in a tree reduction over its partitions (a layer with ``name_input``
and ``npartitions_input``); :func:`piece_graph` replaces those reductions with the order
fixed here. A collection with more partitions than the job has chunks (object variations
stacked block after block, :func:`brewflow.jobs.build.build`) gives, per chunk, its blocks'
values added in block order.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import awkward as ak
import dask
import numpy as np
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph, MaterializedLayer

__all__ = [
    "Piece",
    "add",
    "chunk_keys",
    "fold",
    "partition_local",
    "piece_graph",
    "unit_values",
]

Piece = dict[str, Any]
"""Name -> a histogram, a number or a list of records (they add with ``+``)."""


def add(first: Piece, second: Piece) -> Piece:
    """The sum of two pieces (same names)."""
    return {name: first[name] + second[name] for name in first}


def fold(pieces: Iterable[Piece | None]) -> Piece | None:
    """``((p0 + p1) + p2) + ...``: the one order brewflow adds pieces in (None for none;
    a None piece is left out)."""
    total = None
    for piece in pieces:
        if piece is not None:
            total = piece if total is None else add(total, piece)
    return total


def _one(concat: Callable, finalize: Callable, post: tuple, part: Any) -> Any:
    """A tree reduction's value for one partition alone, as computing its collection gives
    it (``post``: the collection's ``__dask_postcompute__``)."""
    function, args = post
    value = function([finalize(concat([part]))], *args)
    if isinstance(value, ak.Array):  # records (the reader's report): a list adds up
        return value.to_list()
    return value.item() if isinstance(value, np.generic) else value


def _listed(part: Any) -> list[Any]:
    """A partition of a lazy array as a list of records (e.g. the reader's report)."""
    return part.to_list()


def _piece(spec: tuple[tuple[str, int, Callable], ...], *parts: Any) -> Piece:
    """One chunk's piece from its partitions' outputs (``spec``: per name, its number of
    blocks and the function of one partition; ``parts`` in that order)."""
    out: Piece = {}
    at = 0
    for name, blocks, one in spec:
        values = [one(p) for p in parts[at : at + blocks]]
        at += blocks
        total = values[0]
        for value in values[1:]:
            total = total + value
        out[name] = total
    return out


def _gather(*values: Piece) -> list[Piece]:
    return list(values)


def piece_graph(
    collections: Mapping[str, Any], chunks: int, units: Sequence[Sequence[int]]
) -> tuple[HighLevelGraph, list[Any]]:
    """``(graph, keys)``: the graph of ``collections`` (optimized lazy sums: histograms,
    dask-awkward reductions; or lazy arrays of one record list per chunk), with their final
    reductions replaced by one piece per chunk (``chunks`` of them, in partition order) and
    one key per unit of ``units`` (chunk indices): the fold of its chunks' pieces, in order
    (keys of one layer: ``(layer, chunk)`` a piece, ``(layer, chunks + unit, step)`` a sum).
    Compute any subset of ``keys`` (:func:`unit_values`)."""
    graph = HighLevelGraph.merge(*(c.__dask_graph__() for c in collections.values()))
    drop: set[str] = set()
    spec: list[tuple[str, int, Callable]] = []
    inputs: list[tuple[str, int]] = []  # per name: its partitions' layer, its partitions
    for name, collection in collections.items():
        (final,) = collection.__dask_layers__()
        layer: Any = graph.layers[final]
        one: Callable
        if hasattr(layer, "name_input"):  # a tree reduction: per partition instead
            drop.add(final)
            one = functools.partial(_one, layer.concat_func, layer.finalize_func,
                                    collection.__dask_postcompute__())  # fmt: skip
            source, partitions = layer.name_input, layer.npartitions_input
        else:
            one, source, partitions = _listed, final, collection.npartitions
        if partitions % chunks:
            raise ValueError(f"{name}: {partitions} partitions for {chunks} chunks")
        spec.append((name, partitions // chunks, one))
        inputs.append((source, partitions))
    token = dask.base.tokenize(sorted(graph.layers), chunks, [list(u) for u in units])
    pieces = f"brewflow-piece-{token}"
    tasks: dict[Any, Any] = {}
    run = functools.partial(_piece, tuple(spec))
    for c in range(chunks):
        keys = [(source, b * chunks + c) for source, partitions in inputs
                for b in range(partitions // chunks)]  # fmt: skip
        tasks[(pieces, c)] = (run, *keys)
    out = []
    for u, members in enumerate(units):
        previous: tuple = (pieces, members[0])
        for step, c in enumerate(members[1:], 1):
            tasks[(pieces, chunks + u, step)] = (add, previous, (pieces, c))
            previous = (pieces, chunks + u, step)
        out.append(previous)
    layers = {k: v for k, v in graph.layers.items() if k not in drop}
    dependencies = {k: set(graph.dependencies[k]) - drop for k in layers}
    layers[pieces] = MaterializedLayer(tasks)
    dependencies[pieces] = {source for source, _ in inputs}
    return HighLevelGraph(layers, dependencies), out


def chunk_keys(key: Any, members: Sequence[int]) -> list[Any]:
    """The keys of the chunk pieces of the unit ``key`` of :func:`piece_graph` (its chunk
    indices ``members``): their :func:`fold`, in this order, is the unit's value."""
    return [(key[0], c) for c in members]


def partition_local(graph: HighLevelGraph) -> bool:
    """Whether every piece of a :func:`piece_graph` depends on its own chunk alone: no
    reduction is left inside the graph (an analysis that cuts on a dataset-wide mean, say, makes
    each chunk's value depend on every chunk read with it: such a job is computed whole, from
    scratch, its pieces never kept)."""
    return not any(hasattr(layer, "name_input") for layer in graph.layers.values())


def unit_values(graph: HighLevelGraph, keys: Sequence[Any]) -> Any:
    """A collection computing the values of ``keys`` of :func:`piece_graph` (a list, in
    order), culled to what they need."""
    name = f"brewflow-gather-{dask.base.tokenize(list(keys))}"
    culled = graph.cull(set(keys))
    layers = dict(culled.layers)
    dependencies = {k: set(v) for k, v in culled.dependencies.items()}
    layers[name] = MaterializedLayer({name: (_gather, *keys)})
    dependencies[name] = {key[0] for key in keys}  # the pieces' layer
    return Delayed(name, HighLevelGraph(layers, dependencies), layer=name)
