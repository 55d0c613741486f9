"""Detector conditions of a data-taking era that an analysis corrects for: the HEM15/16 failure
of 2018 and the L1 ECAL/muon prefiring of 2016-2018.

- **HEM15/16** (:func:`hem_veto`): from run 319077 on, two sectors of the hadronic endcap
  (HEM15/16, ``-3.2 < eta < -1.3``, ``-1.57 < phi < -0.87``) read nothing. JetMET and EGamma
  recommend vetoing events with a jet (pT > 30 GeV, tight ID) or an electron in the region:
  data from the first affected run on, MC in the fraction of events equal to the affected
  luminosity's share (:data:`HEM`, ``mc_fraction``), each MC event assigned to the affected
  runs by a reproducible draw from ``(run, luminosityBlock, event)``, so data and MC pass the
  same cut.
- **L1 prefiring** (:func:`prefiring_weights`): NanoAOD's ``L1PreFiringWeight_Nom/Up/Dn``
  (the probability that the event did not prefire, with its uncertainty), for MC of 2016 and
  2017 (ECAL and muons) and 2018 (muons).

Lazy or eager, like the events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from brewflow.arrays import lib
from brewflow.draws import event_uniforms
from brewflow.jetquality import TIGHT
from brewflow.objects import resolved_branch

__all__ = ["HEM", "PREFIRING_BRANCHES", "HemRegion", "hem_objects", "hem_veto", "prefiring_weights"]


@dataclass(frozen=True)
class HemRegion:
    """The HEM15/16 failure: where, from which run, which objects, and the MC share."""

    first_run: int = 319077
    mc_fraction: float = 0.648
    """The share of 2018's certified luminosity in runs >= ``first_run`` (about 38.7 of 59.8
    fb^-1: the end of run B, C and D); compute yours with brilcalc and your golden JSON."""
    eta: tuple[float, float] = (-3.2, -1.3)
    phi: tuple[float, float] = (-1.57, -0.87)
    jet_pt_min: float = 30.0
    electron_pt_min: float = 10.0


HEM = HemRegion()
"""The region and defaults of the JetMET/EGamma recommendation (2018 HEM15/16)."""

PREFIRING_BRANCHES = ("L1PreFiringWeight_Nom", "L1PreFiringWeight_Up", "L1PreFiringWeight_Dn")
"""The NanoAOD branches of the L1 prefiring weight (nominal, up, down)."""


def _inside(objects: Any, region: HemRegion) -> Any:
    return (
        (objects.eta > region.eta[0]) & (objects.eta < region.eta[1])
        & (objects.phi > region.phi[0]) & (objects.phi < region.phi[1])
    )  # fmt: skip


def hem_objects(jets: Any, electrons: Any, region: HemRegion = HEM) -> Any:
    """Per event: a jet (pT, tight ID) or an electron (pT) in the HEM region."""
    ak = lib(jets.pt)
    jet = _inside(jets, region) & (jets.pt > region.jet_pt_min) & ((jets.jetId & TIGHT) > 0)
    electron = _inside(electrons, region) & (electrons.pt > region.electron_pt_min)
    return ak.any(jet, axis=1) | ak.any(electron, axis=1)


def hem_veto(events: Any, is_data: bool, region: HemRegion = HEM) -> Any:
    """Per event: passes the HEM veto (no HEM object, or not in the affected runs: data by its
    run, MC by a reproducible draw with probability ``mc_fraction``). ``events.Jet``: the
    corrected jets."""
    if is_data:
        affected = events.run >= region.first_run
    else:
        affected = event_uniforms(events, salt=0x4E3) < region.mc_fraction
    return ~(affected & hem_objects(events.Jet, events.Electron, region))


def prefiring_weights(events: Any) -> dict[str, Any]:
    """``{"nominal", "up", "down"}``: the L1 prefiring weights of NanoAOD
    (:data:`PREFIRING_BRANCHES`; a missing one is a KeyError naming it)."""
    nominal, up, down = (resolved_branch(events, name) for name in PREFIRING_BRANCHES)
    return {"nominal": nominal, "up": up, "down": down}
