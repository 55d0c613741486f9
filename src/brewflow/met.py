"""Missing transverse momentum: the jets' changes propagated (type-1), the unclustered-energy
variation of PF MET and PuppiMET. Lazy or eager."""

from __future__ import annotations

from typing import Any

import numpy as np

from brewflow.arrays import lib
from brewflow.corrections import CorrectionError

__all__ = ["propagate_met", "unclustered_shift"]


def propagate_met(met: Any, before: Any, after: Any, pt_min: float) -> dict[str, Any]:
    """``{"pt", "phi"}`` of ``met`` after the jets' pT went from ``before`` to ``after``.

    ``before``/``after``: the same jets (with ``phi``) before and after a change; jets with new
    pT above ``pt_min`` contribute ``-(after - before)`` in x and y.
    """
    ak_ = lib(met.pt)
    delta = ak_.where(after.pt > pt_min, after.pt - before.pt, 0.0)
    dx = ak_.sum(delta * np.cos(after.phi), axis=1)
    dy = ak_.sum(delta * np.sin(after.phi), axis=1)
    px = met.pt * np.cos(met.phi) - dx
    py = met.pt * np.sin(met.phi) - dy
    return {"pt": np.hypot(px, py), "phi": np.arctan2(py, px)}


def unclustered_shift(met: Any, direction: str) -> tuple[Any, Any]:
    """The unclustered-energy variation's shift of MET in (x, y): ``+-MetUnclustEnUpDelta{X,Y}``
    (PF MET), or the varied PuppiMET (``pt/phiUnclustered{Up,Down}``) minus the nominal one."""
    if "MetUnclustEnUpDeltaX" in met.fields:
        sign = 1.0 if direction == "Up" else -1.0
        return sign * met.MetUnclustEnUpDeltaX, sign * met.MetUnclustEnUpDeltaY
    pt, phi = f"ptUnclustered{direction}", f"phiUnclustered{direction}"
    if pt not in met.fields:
        raise CorrectionError(
            "the unclustered MET variation needs MET_MetUnclustEnUpDeltaX/Y or "
            f"PuppiMET_ptUnclusteredUp/Down; the MET collection has {', '.join(met.fields)}"
        )
    dx = met[pt] * np.cos(met[phi]) - met.pt * np.cos(met.phi)
    dy = met[pt] * np.sin(met[phi]) - met.pt * np.sin(met.phi)
    return dx, dy
