"""The array library (awkward or dask-awkward) that matches an array: write analysis code once."""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

import awkward as ak
import dask_awkward as dak
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph
from dask_awkward.layers import AwkwardMaterializedLayer
from dask_awkward.lib.core import new_array_object

__all__ = ["chain", "is_lazy", "lib", "local_scheduler", "metadata_pass", "typetracer_like"]


def is_lazy(array: Any) -> bool:
    """True for dask-awkward collections."""
    return isinstance(array, dak.Array | dak.Scalar)


def lib(array: Any) -> ModuleType:
    """``dask_awkward`` for lazy arrays, ``awkward`` otherwise (same function names)."""
    return dak if is_lazy(array) else ak


def typetracer_like(example: Any) -> ak.Array:
    """A typetracer (unknown length) of the type of ``example`` (a list or numpy array): the
    ``meta`` of a ``map_partitions`` output."""
    return ak.Array(ak.Array(example).layout.to_typetracer(forget_length=True))


def metadata_pass(*inputs: Any) -> bool:
    """In a ``map_partitions`` function: True when dask-awkward calls it on typetracers (its
    metadata pass), after marking every input's data as needed, so that column projection reads
    them; the function then returns a typetracer of its output type (:func:`typetracer_like`)
    instead of computing::

        def kernel(pt, eta):
            if metadata_pass(pt, eta):
                return typetracer_like([[1.0]])
            ...
    """
    if not inputs or ak.backend(inputs[0]) != "typetracer":
        return False
    for array in inputs:
        ak.typetracer.touch_data(array)
    return True


def chain(arrays: Sequence[Any]) -> Any:
    """Arrays of one type one after the other along the event axis; lazily, their partitions
    in order (block ``i`` of ``P`` partitions each is ``result.partitions[i * P:(i + 1) * P]``).

    Unlike ``dask_awkward.concatenate``, building it costs one typetracer whatever the number
    of arrays, and column optimization runs the graph of *every* input (an input's private
    columns are read even when only the first input's path would be traced).
    """
    if not is_lazy(arrays[0]):
        return ak.concatenate(list(arrays), axis=0)
    first = arrays[0]
    name = "stack-" + tokenize(*(a.name for a in arrays))
    keys = (key for a in arrays for key in a.__dask_keys__())
    graph = {(name, i): key for i, key in enumerate(keys)}
    names = list(dict.fromkeys(a.name for a in arrays))
    layer = AwkwardMaterializedLayer(
        graph, previous_layer_names=names, fn=_first if len(names) > 1 else None
    )
    meta = ak.typetracer.typetracer_from_form(first.form, behavior=first.behavior)
    return new_array_object(
        HighLevelGraph.from_collections(name, layer, dependencies=list(arrays)),
        name,
        meta=meta,
        npartitions=len(graph),
    )


def _first(*arrays: Any) -> Any:
    """The typetracer stand-in of a stack: its inputs' types are equal."""
    return arrays[0]


def local_scheduler(name: str | None) -> Any:
    """dask's local scheduler ``name`` (``threads``, ``processes``, ``sync``; None: threads, the
    default of awkward collections) as its ``get`` function. ``dask.compute`` given a name
    first looks for a ``distributed`` client, importing ``distributed`` (~0.35 s of every
    short job's start); given the function it does not."""
    import dask.local
    import dask.threaded

    if name in (None, "threads", "threading"):
        return dask.threaded.get
    if name in ("sync", "synchronous", "single-threaded"):
        return dask.local.get_sync
    if name in ("processes", "multiprocessing"):
        import dask.multiprocessing

        return dask.multiprocessing.get
    raise ValueError(f"unknown dask local scheduler {name!r}: threads, processes or sync")
