"""Jet quality as JetMET recommends it: the jet ID recomputed where NanoAOD's is wrong, and the
jet veto maps of Run 3 (JME's ``jetvetomaps`` payload).

- **Jet ID** (:func:`recomputed_jet_id`): NanoAOD v12 and v13 store a ``Jet_jetId`` that is
  wrong for PUPPI jets at ``|eta| > 2.7``; JME's recipe (twiki ``JetID13p6TeV``, "NanoAOD v12")
  recomputes the tight (bit 1, value 2) and tight-lepton-veto (bit 2, value 4) bits from the
  stored ones and the energy fractions: tight = stored tight, and ``neHEF < 0.99`` for
  ``2.7 < |eta| <= 3.0``, ``neEmEF < 0.4`` for ``|eta| > 3.0``; tight-lepton-veto = tight, and
  ``muEF < 0.8`` and ``chEmEF < 0.8`` for ``|eta| <= 2.7``. NanoAOD v15 stores none: JME's
  payload ``jetid.json.gz`` gives it (:func:`payload_jet_id`).
- **Jet veto maps** (:func:`veto_map_jets`): a jet in a map's vetoed (eta, phi) cell (value
  > 0) vetoes its event when it passes JME's selection for the maps (:func:`veto_map_selected`:
  pT > 15 GeV, tight ID, ``chEmEF + neEmEF < 0.9``, no PF muon within Delta R < 0.2); the
  option ``mode: jet`` instead removes every jet in a vetoed cell (twiki
  ``JECDataMC#Jet_veto_maps``, Run 3: mandatory for every analysis).

Lazy or eager, like the events.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from brewflow.arrays import lib
from brewflow.corrections import CorrectionError, evaluate_by_name
from brewflow.kinematics import near

__all__ = [
    "JET_ID_INPUTS",
    "JET_ID_RECIPES",
    "TIGHT",
    "TIGHT_LEPTON_VETO",
    "VETO_MAP_SELECTION",
    "check_veto_map",
    "payload_jet_id",
    "recomputed_jet_id",
    "veto_map_jets",
    "veto_map_selected",
]

TIGHT, TIGHT_LEPTON_VETO = 2, 4
"""``Jet_jetId`` bits: tight (bit 1) and tight with lepton veto (bit 2)."""

JET_ID_RECIPES = {"run3_nanov12": "twiki CMS/JetID13p6TeV, NanoAOD v12 and v13 (rev. 2024)"}
"""The recipes ``jets.id`` names, with their source."""

VETO_MAP_SELECTION = {"pt_min": 15.0, "em_fraction_max": 0.9, "muon_distance": 0.2}
"""JME's selection of the jets a veto map vetoes events for (GeV; Delta R)."""

_EDGE = 1e-4  # inputs on the last bin's upper edge (|phi| = pi) go into the last bin


def recomputed_jet_id(jets: Any, recipe: str = "run3_nanov12") -> Any:
    """``Jet_jetId`` (per jet) as ``recipe`` recomputes it: the stored loose bit kept, the tight
    and tight-lepton-veto bits recomputed (see the module)."""
    if recipe not in JET_ID_RECIPES:
        raise ValueError(f"unknown jet ID recipe {recipe!r}; known: {', '.join(JET_ID_RECIPES)}")
    ak = lib(jets.pt)
    abseta = np.abs(jets.eta)
    stored_tight = (jets.jetId & TIGHT) > 0
    forward = ak.where(abseta <= 3.0, jets.neHEF < 0.99, jets.neEmEF < 0.4)
    tight = stored_tight & ak.where(abseta <= 2.7, True, forward)
    central_veto = (jets.muEF < 0.8) & (jets.chEmEF < 0.8)
    lepton_veto = tight & ak.where(abseta <= 2.7, central_veto, True)
    loose = jets.jetId & 1
    return (
        loose
        + ak.values_astype(tight, np.int32) * TIGHT
        + ak.values_astype(lepton_veto, np.int32) * TIGHT_LEPTON_VETO
    )


JET_ID_INPUTS = ("eta", "chHEF", "neHEF", "chEmEF", "neEmEF", "muEF", "chMultiplicity",
                 "neMultiplicity", "multiplicity")  # fmt: skip
"""The inputs of JME's Run 3 jet ID payload (``jetid.json.gz``); ``multiplicity`` is the sum
of the two multiplicities."""


def payload_jet_id(jets: Any, tight: Any, lepton_veto: Any) -> Any:
    """``Jet_jetId`` (per jet: 2 tight, 4 tight-lepton-veto) from JME's jet ID payload's
    corrections (e.g. ``AK4PUPPI_Tight``, ``AK4PUPPI_TightLeptonVeto``; 1 passes), for NanoAOD
    v15, which stores no ``jetId``; the inputs from the jets' fields (:data:`JET_ID_INPUTS`)."""
    missing = [f for f in JET_ID_INPUTS[:-1] if f not in jets.fields]
    if missing:
        raise CorrectionError(
            f"the jet ID payload needs the branch Jet_{missing[0]}, which the file lacks "
            "(NanoAOD v15 has it)"
        )
    ak = lib(jets.pt)
    values = {f: ak.values_astype(jets[f], np.float64) for f in JET_ID_INPUTS[:-1]}
    values["multiplicity"] = values["chMultiplicity"] + values["neMultiplicity"]
    passes = [evaluate_by_name(c, values) > 0.5 for c in (tight, lepton_veto)]
    return (ak.values_astype(passes[0], np.int32) * TIGHT
            + ak.values_astype(passes[1], np.int32) * TIGHT_LEPTON_VETO)  # fmt: skip


def veto_map_selected(jets: Any, muons: Any) -> Any:
    """Per jet: JME's selection for the veto maps (pT, tight ID, EM fraction, no PF muon near;
    :data:`VETO_MAP_SELECTION`)."""
    cut = VETO_MAP_SELECTION
    ak = lib(jets.pt)
    far = 1e3  # muons that are not PF candidates, moved out of reach (a masked slice would
    # hide isPFcand from dask-awkward's column projection)
    pf_muons = ak.zip({"eta": ak.where(muons.isPFcand, muons.eta, far), "phi": muons.phi})
    return (
        (jets.pt > cut["pt_min"])
        & ((jets.jetId & TIGHT) > 0)
        & (jets.chEmEF + jets.neEmEF < cut["em_fraction_max"])
        & ~near(jets, pf_muons, cut["muon_distance"])
    )


def _clipped(values: Any, bound: float) -> Any:
    return np.minimum(np.maximum(values, -bound), bound)  # ufuncs: jagged and lazy arrays


def check_veto_map(correction: Any) -> None:
    """A :class:`CorrectionError` unless ``correction`` takes a veto map's (type, eta, phi)."""
    names = [i.name for i in correction.inputs]
    if names != ["type", "eta", "phi"]:
        raise CorrectionError(
            f"correction {correction.name!r} takes {names}, not a jet veto map's (type, eta, phi)"
        )


def veto_map_jets(jets: Any, correction: Any, kind: str = "jetvetomap") -> Any:
    """Per jet: in a vetoed cell of the map ``kind`` (e.g. ``jetvetomap``, ``jetvetomap_eep``)
    of ``correction`` (inputs ``type``, ``eta``, ``phi``; value > 0: vetoed)."""
    names = [i.name for i in correction.inputs]
    if names != ["type", "eta", "phi"]:
        raise CorrectionError(
            f"correction {correction.name!r} takes {names}, not a jet veto map's (type, eta, phi)"
        )
    ak = lib(jets.pt)
    eta = ak.values_astype(_clipped(jets.eta, 5.191 - _EDGE), np.float64)
    phi = ak.values_astype(_clipped(jets.phi, np.pi - _EDGE), np.float64)
    return correction.evaluate(kind, eta, phi) > 0
