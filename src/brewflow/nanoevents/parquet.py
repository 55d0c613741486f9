"""Parquet event files (brewflow skims, or any NanoAOD-like parquet) as analysis inputs.

A file is one partition; collections get their vector behaviour back from their field names,
as NanoAOD collections do (:func:`brewflow.nanoevents.reader.behavior`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import awkward as ak

__all__ = ["Source", "eager", "footprint", "is_parquet", "lazy", "num_rows"]


def is_parquet(path: str | Path) -> bool:
    """Whether ``path`` names a parquet file (by its suffix)."""
    return str(path).endswith(".parquet")


def num_rows(path: str | Path) -> int:
    """Events in a parquet file, from its footer (no data read)."""
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


def footprint(path: str | Path) -> str:
    """An identity of the file's content for provenance (SHA-256 of its footer)."""
    import pyarrow.parquet as pq

    metadata = pq.ParquetFile(path).metadata.to_dict()
    return "parquet:" + hashlib.sha256(repr(metadata).encode()).hexdigest()[:32]


class Source:
    """A parquet file checked to be readable: its ``num_entries`` and top-level fields."""

    def __init__(self, path: str | Path) -> None:
        import pyarrow.parquet as pq

        handle = pq.ParquetFile(path)
        self.path = str(path)
        self.num_entries = int(handle.metadata.num_rows)
        self.branches = list(handle.schema_arrow.names)

    def keys(self, recursive: bool = False) -> list[str]:
        return list(self.branches)


def _named(array: Any, lib: Any) -> Any:
    """``array`` with each record collection named for its vector behaviour."""
    from brewflow.nanoevents.schema import behavior, record_name

    for field in array.fields:
        sub = array[field]
        if sub.fields and (name := record_name(sub.fields)) is not None:
            array = lib.with_field(array, lib.with_name(sub, name, behavior=behavior()), field)
    return lib.with_name(array, None, behavior=behavior())


def lazy(paths: list[str]) -> Any:
    """A dask-awkward array of the files' events, one partition per file."""
    import dask_awkward as dak

    from brewflow.nanoevents.schema import behavior

    return _named(dak.from_parquet(paths, behavior=behavior()), dak)


def eager(path: str, start: int = 0, stop: int | None = None) -> ak.Array:
    """Events ``[start, stop)`` of one file."""
    from brewflow.nanoevents.schema import behavior

    return _named(ak.from_parquet(path, behavior=behavior())[start:stop], ak)
