"""The array library (awkward or dask-awkward) that matches an array: write analysis code once."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import awkward as ak
import dask_awkward as dak

__all__ = ["is_lazy", "lib"]


def is_lazy(array: Any) -> bool:
    """True for dask-awkward collections."""
    return isinstance(array, dak.Array | dak.Scalar)


def lib(array: Any) -> ModuleType:
    """``dask_awkward`` for lazy arrays, ``awkward`` otherwise (same function names)."""
    return dak if is_lazy(array) else ak
