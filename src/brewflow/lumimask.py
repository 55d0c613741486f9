"""Certified-luminosity ("golden JSON") masks for collision data, eager or lazy.

The JSON maps run numbers to inclusive luminosity-block ranges,
``{"297050": [[12, 137], [193, 776]], ...}``. Lookups are vectorised: (run, lumi) pairs are
encoded as one 64-bit key and found among the sorted certified ranges with a binary search.
The array libraries are imported where they are used: validating a config checks golden JSONs
(:func:`certified_ranges`) without them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from brewflow.errors import BrewflowError

__all__ = ["LumiMask", "LumiMaskError", "certified_ranges"]


class LumiMaskError(BrewflowError, ValueError):
    """A golden JSON that cannot be read or is not a valid list of certified lumi blocks."""


def certified_ranges(path: Path) -> list[tuple[int, int, int]]:
    """``(run, first, last)`` of every certified range of the golden JSON ``path``, checked:
    run numbers and lumi blocks are positive integers, each range ``[first, last]`` has
    ``first <= last``, and at least one block is certified."""
    try:
        certified = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise LumiMaskError(
            f"cannot read golden JSON {str(path)!r} (truncated or not JSON? {err}); "
            "download it again"
        ) from None
    fix = 'expected {"<run>": [[first, last], ...], ...} with first <= last'
    if not isinstance(certified, dict) or not certified:
        raise LumiMaskError(f"golden JSON {str(path)!r} certifies no lumi block; {fix}")
    out = []
    for run, ranges in certified.items():
        where = f"golden JSON {str(path)!r}, run {run!r}"
        if not run.isdigit() or int(run) <= 0:
            raise LumiMaskError(f"{where}: not a run number; {fix}")
        if not isinstance(ranges, list) or not ranges:
            raise LumiMaskError(f"{where}: no lumi ranges; {fix}")
        for pair in ranges:
            ok = isinstance(pair, list) and len(pair) == 2
            ok = ok and all(isinstance(x, int) and not isinstance(x, bool) for x in pair)
            if not ok or pair[0] < 1:
                raise LumiMaskError(f"{where}: {pair!r} is not a lumi range [first, last]; {fix}")
            if pair[0] > pair[1]:
                raise LumiMaskError(
                    f"{where}: range {pair!r} is reversed (first > last: it would certify "
                    f"nothing); {fix}"
                )
            out.append((int(run), pair[0], pair[1]))
    return out


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
        import awkward as ak

        if ak.backend(run) == "typetracer":  # dask-awkward's metadata pass:
            ak.typetracer.touch_data(run)  # say that both columns are needed, so that
            ak.typetracer.touch_data(lumi)  # column projection reads them
            return ak.Array(ak.Array(np.zeros(0, dtype=bool)).layout.to_typetracer(True))
        return ak.Array(self._numpy(ak.to_numpy(run), ak.to_numpy(lumi)))

    def __call__(self, run: Any, lumi: Any) -> Any:
        """Per-event bool: is ``(run, lumi)`` certified? Works on numpy, awkward, dask-awkward."""
        import awkward as ak

        from brewflow._array import is_lazy

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
