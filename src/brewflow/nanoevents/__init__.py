"""Reading NanoAOD: the reader (:mod:`.reader`: lazy dask-awkward and eager events with
physics-object behaviour, reading only the columns an analysis touches), the schema and
behaviours (:mod:`.schema`), open trees kept per
process (:mod:`.trees`), parquet skims as inputs (:mod:`.parquet`) and the checks that name a
bad input file (:mod:`.inputs`).

The names below load :mod:`.reader` on first use, so the input checks and the tree cache can
be imported without the array stack.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_READER = ("READ_ERRORS", "ChunkReadError", "NanoReader", "behavior", "eager_events",
           "lazy_events", "nanoaod_form")  # fmt: skip

__all__ = sorted(_READER)


def __getattr__(name: str) -> Any:
    if name not in _READER:
        raise AttributeError(f"module 'brewflow.nanoevents' has no attribute {name!r}")
    return getattr(import_module("brewflow.nanoevents.reader"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_READER])
