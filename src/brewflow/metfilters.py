"""MET filters: the event flags CMS's JetMET group recommends an analysis require, in data and
in MC, per data-taking campaign (NanoAOD's ``Flag_*`` branches, ``events.Flag``).

Each recommendation is named by its campaign and carries its source (the JetMET twiki
``MissingETOptionalFiltersRun2`` for Run 2 Ultra-Legacy, ``MissingETOptionalFiltersRun2#Run_3``
for Run 3, as of their 2024 revisions). Older NanoAOD (pre-UL, e.g. ``Flag_ecalBadCalibFilterV2``
and no ``Flag_BadPFMuonDzFilter``) lacks some flags of these lists: it needs a list of its own
(:func:`met_filter_mask` names the missing flag).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["RECOMMENDATIONS", "MissingFlag", "Recommendation", "met_filter_mask"]


@dataclass(frozen=True)
class Recommendation:
    """The flags (without ``Flag_``) of one campaign's recommendation, and where it is."""

    flags: tuple[str, ...]
    source: str


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
    "run3_2022": Recommendation(_RUN3_FLAGS, _RUN3),
    "run3_2023": Recommendation(_RUN3_FLAGS, _RUN3),
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
