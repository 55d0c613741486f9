"""Missing transverse momentum: the type-1 MET recomputed from the raw MET, the jets' changes
propagated to it, the unclustered-energy variation of PF MET and PuppiMET. Lazy or eager."""

from __future__ import annotations

from typing import Any

import numpy as np

from brewflow.arrays import lib
from brewflow.corrections import CorrectionError

__all__ = ["RAW_MET", "TYPE1", "propagate_met", "type1_met", "unclustered_shift"]


def propagate_met(met: Any, before: Any, after: Any, pt_min: float) -> dict[str, Any]:
    """``{"pt", "phi"}`` of ``met`` after the jets' pT went from ``before`` to ``after``.

    ``before``/``after``: the same jets (with ``phi``) before and after a change; jets with new
    pT above ``pt_min`` contribute ``-(after - before)`` in x and y.
    """
    ak_ = lib(met["pt"])
    delta = ak_.where(after.pt > pt_min, after.pt - before.pt, 0.0)
    dx = ak_.sum(delta * np.cos(after.phi), axis=1)
    dy = ak_.sum(delta * np.sin(after.phi), axis=1)
    return _shifted(met, dx, dy)


def _shifted(met: Any, dx: Any, dy: Any) -> dict[str, Any]:
    """``{"pt", "phi"}`` of ``met`` minus ``(dx, dy)``."""
    px = met["pt"] * np.cos(met["phi"]) - dx
    py = met["pt"] * np.sin(met["phi"]) - dy
    return {"pt": np.hypot(px, py), "phi": np.arctan2(py, px)}


RAW_MET = {"MET": "RawMET", "PuppiMET": "RawPuppiMET"}
"""The raw (uncorrected) MET of each type-1 MET collection."""

TYPE1 = {"pt_min": 15.0, "em_fraction_max": 0.9}
"""Which jets enter the type-1 correction: muon-subtracted corrected pT above ``pt_min`` GeV
and, for ``Jet`` (``CorrT1METJet`` stores none), EM energy fraction below the maximum."""


def type1_met(
    raw_met: Any, jets: Any, l123: Any, l1: Any, low_jets: Any, low_l123: Any, low_l1: Any,
) -> dict[str, Any]:  # fmt: skip
    """``{"pt", "phi"}`` of the type-1 MET from ``raw_met`` (``RawMET``, ``RawPuppiMET``): minus,
    for each jet of ``jets`` (NanoAOD ``Jet``) and of ``low_jets`` (``CorrT1METJet``, the
    low-pT jets NanoAOD keeps for this) passing :data:`TYPE1`, its muon-subtracted raw pT times
    ``(l123 - l1)``, the jet's L1L2L3 and L1 correction factors at its raw pT (CMS's
    ``PFJetMETcorrInputProducer``)."""
    ak_ = lib(raw_met["pt"])

    def shift(raw: Any, muon_fraction: Any, phi: Any, corr: Any, offset: Any, keep: Any) -> Any:
        no_muon = raw * (1.0 - muon_fraction)
        delta = ak_.where(keep & (no_muon * corr > TYPE1["pt_min"]), no_muon * (corr - offset),
                          0.0)  # fmt: skip
        return ak_.sum(delta * np.cos(phi), axis=1), ak_.sum(delta * np.sin(phi), axis=1)

    em = (jets.chEmEF + jets.neEmEF) < TYPE1["em_fraction_max"]
    raw = jets.pt * (1.0 - jets.rawFactor)
    dx, dy = shift(raw, jets.muonSubtrFactor, jets.phi, l123, l1, em)
    lx, ly = shift(low_jets.rawPt, low_jets.muonSubtrFactor, low_jets.phi, low_l123, low_l1,
                   low_jets.rawPt >= 0)  # fmt: skip
    return _shifted(raw_met, dx + lx, dy + ly)


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
