"""correctionlib corrections, evaluated eagerly or inside the dask-awkward graph.

``correctionlib`` evaluates flat and jagged awkward arrays and dask-awkward arrays itself; this
module loads payloads with errors that list what is available, and turns scale factors into
event weights with up/down variations.

Payload conventions followed (CMS POG JSON, schema v2): pileup weights take
``(NumTrueInteractions, "nominal"|"up"|"down")``; muon scale factors take
``(year, abseta, pt, "sf"|"systup"|"systdown")``.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import correctionlib
import numpy as np

from brewflow._array import lib

__all__ = ["CorrectionError", "load", "load_all", "muon_sf_weights", "pileup_weights"]


class CorrectionError(ValueError):
    """A payload or correction that cannot be used, named with what is available."""


@functools.lru_cache(maxsize=16)
def _payload(path: str, mtime_ns: int) -> Any:
    """A parsed payload, cached while the file is unchanged (large JERC files take ~1 s)."""
    try:
        return correctionlib.CorrectionSet.from_file(path)
    except Exception as err:  # correctionlib raises several types for malformed payloads
        raise CorrectionError(f"cannot read correction payload {path!r}: {err}") from err


def load(path: str | Path, name: str) -> Any:
    """The correction (or compound correction) ``name`` of the payload at ``path``."""
    path = Path(path)
    if not path.is_file():
        raise CorrectionError(f"correction payload {str(path)!r} does not exist")
    corrections = _payload(str(path.resolve()), path.stat().st_mtime_ns)
    if name in corrections.compound:
        return corrections.compound[name]
    available = [*corrections.keys(), *corrections.compound.keys()]
    if name not in available:
        close = difflib.get_close_matches(name, available, n=3, cutoff=0.6)
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        raise CorrectionError(
            f"no correction {name!r} in {str(path)!r}{hint}; available: {', '.join(available)}"
        )
    return corrections[name]


def load_all(specs: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    """``{key: correction}`` from config entries ``{key: {"file": ..., "name": ...}}``."""
    return {key: load(spec["file"], spec["name"]) for key, spec in specs.items()}


def pileup_weights(correction: Any, n_true_int: Any) -> dict[str, Any]:
    """Per-event pileup weights ``{"nominal", "up", "down"}`` from ``Pileup_nTrueInt``."""
    return {v: correction.evaluate(n_true_int, v) for v in ("nominal", "up", "down")}


def muon_sf_weights(correction: Any, muons: Any, year: str) -> dict[str, Any]:
    """Per-event products over ``muons`` of the scale factor and its up/down variations.

    Events without muons get 1. ``year`` is the payload's scenario string (e.g. ``"2018_UL"``).
    Pass muons inside the payload's validity range (e.g. selected muons with pT > 15 GeV).
    """
    ak = lib(muons.pt)
    abseta = np.abs(muons.eta)
    out = {}
    for key, valtype in (("nominal", "sf"), ("up", "systup"), ("down", "systdown")):
        sf = correction.evaluate(year, abseta, muons.pt, valtype)
        out[key] = ak.prod(sf, axis=1)
    return out
