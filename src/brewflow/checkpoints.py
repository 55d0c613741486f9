"""Checkpoints: intermediates an analysis marks to be computed once and kept on the cluster.

An analysis marks an intermediate with ``jets = context.checkpoint("jets", jets)`` (e.g. the
selected, corrected objects). Inside a :func:`persisting` block on a ``dask.distributed``
client, the intermediate is persisted: computed once (its own graph, reading only the columns
it holds), kept in the workers' memory, and every fill or variation built on the returned
array reads it from there instead of reading the files and redoing the selection. Analyze
jobs open such a block when the config says ``persist_checkpoints: true`` and the scheduler
is distributed; in a notebook, ``with persisting(client): output = analysis(events, ctx)``.
Elsewhere (eager arrays, dask's local schedulers, no block) the mark is a no-op: one graph
computes a shared intermediate once anyway. ``python benchmarks/persist.py`` measures when
persisting pays.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import dask

__all__ = ["Checkpoints", "checkpoint", "persisting"]

log = logging.getLogger(__name__)


@dataclass
class Checkpoints:
    """The client intermediates are persisted on, their names in the order persisted and the
    futures of their partitions (``distributed.wait(kept.futures)`` waits until all are kept)."""

    client: Any
    names: list[str] = field(default_factory=list)
    futures: list[Any] = field(default_factory=list)


_ACTIVE: contextvars.ContextVar[Checkpoints | None] = contextvars.ContextVar(
    "brewflow_checkpoints", default=None
)


@contextlib.contextmanager
def persisting(client: Any = None) -> Iterator[Checkpoints]:
    """Persist every intermediate marked in this block on ``client`` (default: the current
    ``distributed`` client). Yields the :class:`Checkpoints` record (names persisted)."""
    if client is None:
        from distributed import default_client

        try:
            client = default_client()
        except ValueError:
            raise ValueError(
                "checkpoints are persisted on a dask.distributed cluster, and there is no "
                "client: create one (distributed.Client(...)) or pass it to persisting()"
            ) from None
    record = Checkpoints(client)
    token = _ACTIVE.set(record)
    try:
        yield record
    finally:
        _ACTIVE.reset(token)


def checkpoint(array: Any, name: str) -> Any:
    """``array``, persisted on the cluster inside a :func:`persisting` block if it is a dask
    collection; unchanged otherwise. Persisting starts the computation and returns at once:
    later computes that use the returned collection wait for it and reuse it."""
    active = _ACTIVE.get()
    if active is None or not dask.is_dask_collection(array):
        return array
    import dask_awkward as dak

    (persisted,) = active.client.persist([array])
    graph = persisted.__dask_graph__()
    parts = [graph[(persisted.name, i)] for i in range(persisted.npartitions)]
    active.names.append(name)
    active.futures += parts
    log.info("checkpoint %r: persisting %d partitions", name, array.npartitions)
    # a mockable input layer over the futures: the column optimization of the graphs built on
    # it sees the intermediate's type (its meta), never the futures
    meta = array._meta
    kept = _Kept(meta.layout.form, meta.behavior, meta.attrs)
    return dak.from_map(kept, parts, label=f"checkpoint-{name}", divisions=array.divisions)


class _Kept:
    """The partitions of a persisted intermediate (distributed passes each future's value)."""

    def __init__(self, form: Any, behavior: Any, attrs: Any) -> None:
        self.form, self.behavior, self.attrs = form, behavior, attrs

    def mock(self) -> Any:
        import awkward as ak

        layout = self.form.length_zero_array().to_typetracer(forget_length=True)
        return ak.Array(layout, behavior=self.behavior, attrs=self.attrs)

    def __call__(self, part: Any) -> Any:
        return part
