"""Certified-luminosity ("golden JSON") masks for collision data, eager or lazy.

The JSON maps run numbers to inclusive luminosity-block ranges,
``{"297050": [[12, 137], [193, 776]], ...}``. Lookups are vectorised: (run, lumi) pairs are
encoded as one 64-bit key and found among the sorted certified ranges with a binary search.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from brewflow._array import is_lazy

__all__ = ["LumiMask"]


class LumiMask:
    """``mask(run, luminosityBlock)`` is True for certified lumi blocks."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        try:
            certified = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"cannot read golden JSON {str(path)!r}: {err}") from err
        starts, stops = [], []
        for run, ranges in certified.items():
            for first, last in ranges:
                starts.append((int(run) << 32) | int(first))
                stops.append((int(run) << 32) | int(last))
        order = np.argsort(starts)
        self._starts = np.asarray(starts, dtype=np.int64)[order]
        self._stops = np.asarray(stops, dtype=np.int64)[order]
        self.path = str(path)

    def _numpy(self, run: np.ndarray, lumi: np.ndarray) -> np.ndarray:
        key = (np.asarray(run, dtype=np.int64) << 32) | np.asarray(lumi, dtype=np.int64)
        index = np.searchsorted(self._starts, key, side="right") - 1
        found = index >= 0
        return found & (key <= self._stops[np.where(found, index, 0)])

    def _awkward(self, run: ak.Array, lumi: ak.Array) -> ak.Array:
        if ak.backend(run) == "typetracer":  # dask-awkward's metadata pass:
            ak.typetracer.touch_data(run)  # say that both columns are needed, so that
            ak.typetracer.touch_data(lumi)  # column projection reads them
            return ak.Array(ak.Array(np.zeros(0, dtype=bool)).layout.to_typetracer(True))
        return ak.Array(self._numpy(ak.to_numpy(run), ak.to_numpy(lumi)))

    def __call__(self, run: Any, lumi: Any) -> Any:
        """Per-event bool: is ``(run, lumi)`` certified? Works on numpy, awkward, dask-awkward."""
        if is_lazy(run):
            import dask_awkward as dak

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
