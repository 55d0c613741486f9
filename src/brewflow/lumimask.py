"""Certified-luminosity ("golden JSON") masks for collision data, eager or lazy.

The JSON maps run numbers to inclusive luminosity-block ranges,
``{"297050": [[12, 137], [193, 776]], ...}``. Lookups are vectorised: (run, lumi) pairs are
encoded as one 64-bit key and found among the sorted certified ranges with a binary search.
The file is read and checked by :mod:`brewflow.goldenjson` (which config validation uses too).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import awkward as ak
import dask_awkward as dak
import numpy as np

from brewflow.arrays import is_lazy, metadata_pass, typetracer_like
from brewflow.goldenjson import LumiMaskError, certified_ranges

__all__ = ["LumiMask", "LumiMaskError", "certified_ranges"]


class LumiMask:
    """``mask(run, luminosityBlock)`` is True for certified lumi blocks. The file is checked
    when read (:class:`LumiMaskError` names it and what is wrong)."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        starts, stops = [], []
        for run, first, last in certified_ranges(path):
            starts.append((run << 32) | first)
            stops.append((run << 32) | last)
        order = np.argsort(starts)
        self._starts = np.asarray(starts, dtype=np.int64)[order]
        self._stops = np.asarray(stops, dtype=np.int64)[order]
        self.path = str(path)

    def _numpy(self, run: np.ndarray, lumi: np.ndarray) -> np.ndarray:
        key = (np.asarray(run, dtype=np.int64) << 32) | np.asarray(lumi, dtype=np.int64)
        index = np.searchsorted(self._starts, key, side="right") - 1
        found = index >= 0
        return found & (key <= self._stops[np.where(found, index, 0)])

    def _awkward(self, run: Any, lumi: Any) -> Any:
        if metadata_pass(run, lumi):
            return typetracer_like(np.zeros(0, dtype=bool))
        return ak.Array(self._numpy(ak.to_numpy(run), ak.to_numpy(lumi)))

    def __call__(self, run: Any, lumi: Any) -> Any:
        """Per-event bool: is ``(run, lumi)`` certified? Works on numpy, awkward, dask-awkward."""
        if is_lazy(run):
            return dak.map_partitions(self._awkward, run, lumi, label="lumi-mask")
        if isinstance(run, ak.Array):
            return self._awkward(run, lumi)
        return self._numpy(run, lumi)

    def events(self, events: Any) -> Any:
        """The mask for NanoAOD events (needs the ``run`` and ``luminosityBlock`` branches)."""
        missing = [b for b in ("run", "luminosityBlock") if b not in events.fields]
        if missing:
            raise KeyError(
                f"golden JSON mask needs the branch(es) {', '.join(missing)}, absent from these "
                "events; is this a NanoAOD collision-data file?"
            )
        return self(events.run, events.luminosityBlock)
