"""MET filters: the event flags CMS's JetMET group recommends an analysis require, in data and
in MC, per data-taking campaign (NanoAOD's ``Flag_*`` branches, ``events.Flag``).

Each recommendation is named by its campaign and carries its source (the JetMET twiki
``MissingETOptionalFiltersRun2`` for Run 2 Ultra-Legacy, ``MissingETOptionalFiltersRun2#Run_3``
for Run 3, as of their 2024 revisions). Older NanoAOD (pre-UL, e.g. ``Flag_ecalBadCalibFilterV2``
and no ``Flag_BadPFMuonDzFilter``) lacks some flags of these lists: it needs a list of its own
(:func:`met_filter_mask` names the missing flag). In 2022-2023 data the flag
``ecalBadCalibFilter`` is wrong for some runs: the Run 3 recommendations add JetMET's
on-the-fly veto there (:func:`ecal_bad_calib_pass`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from brewflow.arrays import lib

__all__ = [
    "ECAL_BAD_CALIB_RUNS",
    "RECOMMENDATIONS",
    "MissingFlag",
    "Recommendation",
    "ecal_bad_calib_pass",
    "met_filter_mask",
]


@dataclass(frozen=True)
class Recommendation:
    """The flags (without ``Flag_``) of one campaign's recommendation, and where it is;
    ``ecal_patch``: data of :data:`ECAL_BAD_CALIB_RUNS` get :func:`ecal_bad_calib_pass`."""

    flags: tuple[str, ...]
    source: str
    ecal_patch: bool = False


_UL = ("goodVertices", "globalSuperTightHalo2016Filter", "HBHENoiseFilter", "HBHENoiseIsoFilter",
       "EcalDeadCellTriggerPrimitiveFilter", "BadPFMuonFilter", "BadPFMuonDzFilter",
       "eeBadScFilter")  # fmt: skip
_RUN2 = "twiki CMS/MissingETOptionalFiltersRun2, UL data (rev. 2024)"
_RUN3_FLAGS = ("goodVertices", "globalSuperTightHalo2016Filter",
               "EcalDeadCellTriggerPrimitiveFilter", "BadPFMuonFilter", "BadPFMuonDzFilter",
               "hfNoisyHitsFilter", "eeBadScFilter", "ecalBadCalibFilter")  # fmt: skip
_RUN3 = "twiki CMS/MissingETOptionalFiltersRun2#Run_3_2022_2023_and_2024_data (rev. 2024)"

RECOMMENDATIONS: dict[str, Recommendation] = {
    "run2_ul_2016": Recommendation(_UL, _RUN2),
    "run2_ul_2017": Recommendation((*_UL, "ecalBadCalibFilter"), _RUN2),
    "run2_ul_2018": Recommendation((*_UL, "ecalBadCalibFilter"), _RUN2),
    "run3_2022": Recommendation(_RUN3_FLAGS, _RUN3, ecal_patch=True),
    "run3_2023": Recommendation(_RUN3_FLAGS, _RUN3, ecal_patch=True),
    "run3_2024": Recommendation(_RUN3_FLAGS, _RUN3),
}
"""Campaign -> the recommended MET filters (data and MC alike: since UL, ``eeBadScFilter`` is
recommended for both)."""


class MissingFlag(KeyError):
    """The events have no ``Flag_<name>`` branch a list asks for."""

    def __init__(self, flag: str, present: Sequence[str]) -> None:
        super().__init__(flag)
        self.flag, self.present = flag, tuple(present)

    def __str__(self) -> str:
        return f"no branch Flag_{self.flag} (the file has Flag_: {', '.join(self.present)})"


def met_filter_mask(events: Any, flags: Sequence[str]) -> Any:
    """Per event: every ``Flag_<name>`` of ``flags`` is true (lazy or eager, like ``events``).
    A flag the events lack is a :class:`MissingFlag`."""
    record = events["Flag"]
    present = list(record.fields)
    mask = None
    for flag in flags:
        if flag not in present:
            raise MissingFlag(flag, present)
        mask = record[flag] if mask is None else mask & record[flag]
    if mask is None:
        raise ValueError("an empty list of MET filters")
    return mask


ECAL_BAD_CALIB_RUNS = (362433, 367144)
"""The 2022-2023 runs whose ``Flag_ecalBadCalibFilter`` is wrong in NanoAOD (first, last)."""


def ecal_bad_calib_pass(events: Any, met: str = "PuppiMET") -> Any:
    """Per event: passes JetMET's on-the-fly ``ecalBadCalibFilter`` for the runs of
    :data:`ECAL_BAD_CALIB_RUNS`: events there with ``met`` above 100 GeV and a jet of pT > 50
    GeV in -0.5 < eta < -0.1, -2.1 < phi < -1.8 with an EM fraction (neutral or charged) above
    0.9, back to back with the MET (Delta phi > 2.9) fail; every other event passes."""
    first, last = ECAL_BAD_CALIB_RUNS
    jets, missing = events.Jet, events[met]
    dphi = np.abs((jets.phi - missing.phi + np.pi) % (2 * np.pi) - np.pi)
    bad_jet = (
        (jets.pt > 50) & (jets.eta > -0.5) & (jets.eta < -0.1) & (jets.phi > -2.1)
        & (jets.phi < -1.8) & ((jets.neEmEF > 0.9) | (jets.chEmEF > 0.9)) & (dphi > 2.9)
    )  # fmt: skip
    affected = (events.run >= first) & (events.run <= last) & (missing.pt > 100)
    return ~(affected & lib(jets.pt).any(bad_jet, axis=1))
