"""Results: the :class:`Result` model (:mod:`.model`), checksummed JSON documents
(:mod:`.documents`), histogram arithmetic (:mod:`.arithmetic`), the event ledger
(:mod:`.ledger`), dataset inventories (:mod:`.inventory`) and provenance (:mod:`.provenance`).

The names below are importable from ``brewflow.results`` and load their module on first use,
so reading an inventory (the Snakefile does) does not import ``hist``.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_WHERE = {
    "FORMAT": "model",
    "Result": "model",
    "load": "model",
    "save": "model",
    "check_finite": "model",
    "DamagedFileError": "documents",
    "NonFiniteError": "documents",
    "read_document": "documents",
    "write_document": "documents",
    "regenerate": "documents",
    "add_chunks": "ledger",
    "check_complete": "ledger",
    "describe": "ledger",
    "event_ledger": "ledger",
    "partial_note": "ledger",
    "combine_process": "arithmetic",
    "merge_systematics": "arithmetic",
    "save_split": "arithmetic",
    "scale": "arithmetic",
    "split_systematics": "arithmetic",
    "variation_names": "arithmetic",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'brewflow.results' has no attribute {name!r}")
    return getattr(import_module(f"brewflow.results.{module}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
