"""Golden JSON files: the certified luminosity blocks of collision data, read and checked.

Standard library only: config validation checks every golden JSON before any job runs;
:class:`brewflow.lumimask.LumiMask` turns them into per-event masks.
"""

from __future__ import annotations

import json
from pathlib import Path

from brewflow.errors import BrewflowError

__all__ = ["LumiMaskError", "certified_ranges"]


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
