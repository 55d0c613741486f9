"""Lepton scale factors (MUO, EGM) in every layout the POGs publish, as per-lepton values and
per-event weights with up/down variations; eager or lazy.

- Muons: 2018 UL ``(year, abseta, pt, ValType: sf|systup|systdown)``; Run 3 ``(eta, pt,
  scale_factors: nominal|systup|systdown)`` without a year (the payload takes abs(eta)).
- Electrons: ``(year, ValType: sf|sfup|sfdown, WorkingPoint, eta, pt)``, eta the supercluster's
  (``eta + deltaEtaSC``); 2023 payloads add ``phi``. Reconstruction SFs are split in pT into
  working points (:data:`RECO_BINS`), each electron taking its own.
- Trigger SFs apply to the lepton that fired the trigger (matched to ``TrigObj``), not to every
  selected lepton.

Inputs are passed by the payload's own input names, so a layout is recognised, not assumed; a
payload of another layout is a :class:`~brewflow.corrections.CorrectionError` naming its inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from brewflow.arrays import lib
from brewflow.corrections import (
    CorrectionError,
    category_keys,
    check_keys,
    evaluate_by_name,
    input_range,
)

__all__ = [
    "MUON_VALUES",
    "RECO_BINS",
    "electron_reco_sf_weights",
    "electron_sf_weights",
    "electron_sfs",
    "muon_sf_weights",
    "muon_sfs",
    "trigger_matched",
    "trigger_sf_weights",
]

_ELECTRON_VALUES = (("nominal", "sf"), ("up", "sfup"), ("down", "sfdown"))


def _input(correction: Any, *names: str) -> str | None:
    """The first of ``names`` that ``correction`` takes as an input (None: none of them)."""
    taken = [i.name for i in correction.inputs]
    return next((n for n in names if n in taken), None)


def _year(correction: Any, year: str | None) -> dict[str, str]:
    """``{"year": year}`` when the payload takes a year (2018 UL layouts), else ``{}``; a year
    the payload needs and was not given, or one it does not take, is an error."""
    if _input(correction, "year") is None:
        if year is not None:
            raise CorrectionError(
                f"correction {correction.name!r} takes no year (inputs "
                f"{[i.name for i in correction.inputs]}); give none"
            )
        return {}
    if year is None:
        accepted = category_keys(correction, "year")
        raise CorrectionError(
            f"correction {correction.name!r} needs a year; accepted: {', '.join(accepted) or '?'}"
        )
    return {"year": year}


MUON_VALUES = {"ValType": ("sf", "systup", "systdown"),
               "scale_factors": ("nominal", "systup", "systdown")}  # fmt: skip
"""The muon payloads' value inputs and their (nominal, up, down) keys: 2018 UL's ``ValType``,
Run 3's ``scale_factors``."""


def muon_sfs(correction: Any, muons: Any, year: str | None = None) -> dict[str, Any]:
    """Per muon, the scale factor and its up/down values, in either MUO layout: 2018 UL
    ``(year, abseta, pt, ValType)`` or Run 3 ``(eta, pt, scale_factors)`` (no year; the
    payload takes abs(eta) itself)."""
    value = _input(correction, *MUON_VALUES)
    known_inputs = {"year", "abseta", "eta", "pt", *MUON_VALUES}
    if value is None or any(i.name not in known_inputs for i in correction.inputs):
        raise CorrectionError(
            f"correction {correction.name!r} takes {[i.name for i in correction.inputs]}, "
            f"not a muon scale factor's (a value input: {' or '.join(MUON_VALUES)})"
        )
    keys = MUON_VALUES[value]
    known = {**_year(correction, year), "abseta": np.abs(muons.eta), "eta": muons.eta,
             "pt": muons.pt}  # fmt: skip
    check_keys(correction, **{k: v for k, v in known.items() if isinstance(v, str)},
               **{value: keys[0]})  # fmt: skip
    return {key: evaluate_by_name(correction, {**known, value: valtype})
            for key, valtype in zip(("nominal", "up", "down"), keys, strict=True)}  # fmt: skip


def muon_sf_weights(correction: Any, muons: Any, year: str | None = None) -> dict[str, Any]:
    """Per-event products over ``muons`` of the scale factor and its up/down variations
    (:func:`muon_sfs`: both MUO layouts).

    Events without muons get 1. ``year`` is the payload's scenario string (e.g. ``"2018_UL"``;
    None for Run 3 payloads, which take none). Pass muons inside the payload's validity range
    (e.g. selected muons with pT > 15 GeV).
    """
    ak = lib(muons.pt)
    return {key: ak.prod(sf, axis=1) for key, sf in muon_sfs(correction, muons, year).items()}


def _electron_values(correction: Any, electrons: Any, year: str | None) -> dict[str, Any]:
    if "deltaEtaSC" not in electrons.fields:
        raise CorrectionError(
            "electron scale factors are binned in the supercluster eta (eta + deltaEtaSC): "
            "the electrons need the NanoAOD branch Electron_deltaEtaSC"
        )
    values = {**_year(correction, year), "eta": electrons.eta + electrons.deltaEtaSC,
              "pt": electrons.pt}  # fmt: skip
    if _input(correction, "phi"):  # 2023 payloads: binned in phi too (the BPix region)
        values["phi"] = electrons.phi
    return values


def electron_sfs(
    correction: Any, electrons: Any, year: str | None, working_point: str
) -> dict[str, Any]:
    """Per electron, the scale factor and its up/down values (EGM layout ``(year, ValType,
    WorkingPoint, eta, pt[, phi])``, eta the supercluster's)."""
    values = _electron_values(correction, electrons, year)
    check_keys(correction, **{k: v for k, v in values.items() if isinstance(v, str)},
               ValType="sf", WorkingPoint=working_point)  # fmt: skip
    return {key: evaluate_by_name(correction, {**values, "ValType": valtype,
                                         "WorkingPoint": working_point})
            for key, valtype in _ELECTRON_VALUES}  # fmt: skip


def electron_sf_weights(
    correction: Any, electrons: Any, year: str | None, working_point: str
) -> dict[str, Any]:
    """Per-event products over ``electrons`` of the ID scale factor and its up/down values.

    ``year`` (e.g. ``"2018"``, ``"2023PromptC"``) and ``working_point`` (e.g. ``"Tight"``,
    ``"wp80iso"``) are the payload's category keys; pass electrons in its range (pT >= 10 GeV,
    |eta| < 2.5). The scale factors are binned in the supercluster eta, so they are evaluated
    at ``eta + deltaEtaSC`` (NanoAOD's ``Electron_deltaEtaSC``), not at the electron's eta;
    2023 payloads also in phi."""
    ak = lib(electrons.pt)
    sfs = electron_sfs(correction, electrons, year, working_point)
    return {key: ak.prod(sf, axis=1) for key, sf in sfs.items()}


RECO_BINS = {
    ("RecoBelow20", "Reco20to75", "RecoAbove75"): (20.0, 75.0),
    ("RecoBelow20", "RecoAbove20"): (20.0,),
}
"""The EGM reconstruction SF's pT-split working points (Run 3, Run 2 UL) and their edges."""


def electron_reco_sf_weights(correction: Any, electrons: Any, year: str | None) -> dict[str, Any]:
    """Per-event products of the electron reconstruction scale factors, each electron taking
    the working point of its pT (:data:`RECO_BINS`: ``RecoBelow20``/``Reco20to75``/
    ``RecoAbove75`` in Run 3, ``RecoBelow20``/``RecoAbove20`` in Run 2 UL; the payload says
    which)."""
    ak = lib(electrons.pt)
    points = set(category_keys(correction, "WorkingPoint"))
    split = next((names for names in RECO_BINS if set(names) <= points), None)
    if split is None:
        raise CorrectionError(
            f"correction {correction.name!r} has no pT-split reconstruction working points "
            f"({' or '.join('/'.join(n) for n in RECO_BINS)}); it has {sorted(points)}"
        )
    edges = (-np.inf, *RECO_BINS[split], np.inf)
    out: dict[str, Any] = {}
    for index, name in enumerate(split):
        low, high = edges[index], edges[index + 1]
        inside = (electrons.pt >= low) & (electrons.pt < high)
        # every electron evaluated inside the point's pT range, kept only where it belongs
        clipped = ak.zip({"pt": np.minimum(np.maximum(electrons.pt, low), high - 1e-3),
                          "eta": electrons.eta, "phi": electrons.phi,
                          "deltaEtaSC": electrons.deltaEtaSC}, depth_limit=2)  # fmt: skip
        for key, sf in electron_sfs(correction, clipped, year, name).items():
            out[key] = sf if index == 0 else ak.where(inside, sf, out[key])
    return {key: ak.prod(sf, axis=1) for key, sf in out.items()}


def trigger_matched(
    leptons: Any, trigger_objects: Any, *, pdg_id: int, bits: Sequence[int],
    distance: float = 0.1,
) -> Any:  # fmt: skip
    """Per lepton: a trigger object of ``pdg_id`` (``TrigObj_id``: 11 electron, 13 muon) with
    every filter bit of ``bits`` set (``TrigObj_filterBits``; e.g. muons ``(1, 3)``: Iso and
    1mu, the single isolated muon paths) within Delta R < ``distance``."""
    from brewflow.kinematics import near

    ak = lib(leptons.pt)
    mask = sum(1 << b for b in bits)
    fired = (trigger_objects.id == pdg_id) & ((trigger_objects.filterBits & mask) == mask)
    far = 1e3  # objects that did not fire, out of reach (a masked slice would hide the
    # columns from dask-awkward's projection)
    objects = ak.zip({"eta": ak.where(fired, trigger_objects.eta, far),
                      "phi": trigger_objects.phi})  # fmt: skip
    return near(leptons, objects, distance)


def trigger_sf_weights(
    correction: Any, muons: Any, trigger_objects: Any, year: str | None = None,
    *, bits: Sequence[int] = (1, 3),
) -> dict[str, Any]:  # fmt: skip
    """Event weights of a single-muon trigger scale factor applied to the muon that fired it:
    the leading muon of ``muons`` matched to a trigger object (:func:`trigger_matched`), 1
    for events without one (not the product over all muons, which counts the trigger once
    per muon). A firing muon below the payload's pT range gets its first bin's SF."""
    ak = lib(muons.pt)
    matched = trigger_matched(muons, trigger_objects, pdg_id=13, bits=bits)
    first = ak.local_index(muons.pt, axis=1) == ak.argmax(
        ak.where(matched, muons.pt, -1.0), axis=1, keepdims=True
    )
    firing = matched & first
    # only the firing muon's SF is used: the others are evaluated at the payload's lowest pT,
    # the firing one's pT clamped into its range (just below the plateau: the first bin's SF)
    low, high = input_range(correction, "pt")
    lowest = low if np.isfinite(low) else 0.0
    pt = ak.where(firing, np.minimum(np.maximum(muons.pt, lowest), high * (1 - 1e-9)), lowest)
    evaluated = ak.with_field(muons, pt, "pt")
    return {key: ak.prod(ak.where(firing, sf, 1.0), axis=1)
            for key, sf in muon_sfs(correction, evaluated, year).items()}  # fmt: skip
