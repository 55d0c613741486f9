"""Cross-references between NanoAOD collections through their index branches.

NanoAOD links objects by integer index branches, ``-1`` meaning "none": ``Jet_muonIdx1/2``,
``Jet_electronIdx1/2``, ``Muon_jetIdx``, ``Electron_jetIdx``, ``Jet_genJetIdx``,
``Muon_genPartIdx``, ``GenPart_genPartIdxMother``, ... :func:`matched` follows one of them
(eagerly or lazily); the result has one entry per source object, None where there is no link.
Indices past the end of the stored target are None too: real NanoAOD has ``Jet_genJetIdx``
values pointing at generator jets below the GenJet storage threshold.
"""

from __future__ import annotations

import re
from typing import Any

from brewflow.arrays import lib

__all__ = ["TARGETS", "has_branch", "link", "matched", "resolved_branch", "with_pt"]

TARGETS = {
    "muonIdx": "Muon",
    "electronIdx": "Electron",
    "jetIdx": "Jet",
    "genJetIdx": "GenJet",
    "genPartIdx": "GenPart",
    "genPartIdxMother": "GenPart",
    "photonIdx": "Photon",
    "fsrPhotonIdx": "FsrPhoton",
    "tauIdx": "Tau",
    "svIdx": "SV",
}


def link(target: Any, index: Any) -> Any:
    """``target[index]`` within each event; ``index < 0`` or past the target's end gives None."""
    ak = lib(index)
    valid = (index >= 0) & (index < ak.num(target, axis=1))
    return target[ak.mask(index, valid)]


def matched(events: Any, collection: str, field: str) -> Any:
    """Follow ``<collection>_<field>`` (e.g. ``"Jet", "muonIdx1"``) to its target collection."""
    key = re.sub(r"\d+$", "", field)
    if key not in TARGETS:
        raise KeyError(
            f"{collection}_{field}: unknown index branch; known kinds: {', '.join(TARGETS)}"
        )
    source = events[collection]
    if field not in source.fields:
        raise KeyError(f"{collection} has no field {field!r} (branch {collection}_{field})")
    return link(events[TARGETS[key]], source[field])


def has_branch(events: Any, name: str) -> bool:
    """Whether the events have the NanoAOD branch ``name``: a top-level field, or a field of
    its group (``Jet_jetId``, ``Rho_fixedGridRhoFastjetAll``)."""
    if name in events.fields:
        return True
    prefix, _, rest = name.partition("_")
    return bool(rest) and prefix in events.fields and rest in events[prefix].fields


def resolved_branch(events: Any, name: str) -> Any:
    """A flat NanoAOD branch by its branch name, e.g. ``fixedGridRhoFastjetAll`` (Run 2, a
    top-level field) or ``Rho_fixedGridRhoFastjetAll`` (Run 3, field of the ``Rho`` group)."""
    if not has_branch(events, name):
        raise KeyError(
            f"branch {name!r} not found in the events (is it the right NanoAOD version?)"
        )
    if name in events.fields:
        return events[name]
    prefix, _, rest = name.partition("_")
    return events[prefix][rest]


def with_pt(objects: Any, pt: Any) -> Any:
    """``objects`` with a new ``pt`` and the mass scaled alike (a momentum correction)."""
    ak = lib(objects.pt)
    out = ak.with_field(objects, pt, "pt")
    return ak.with_field(out, objects.mass * pt / objects.pt, "mass")
