"""The object corrections of a dataset's era, applied before the analysis: jets and MET
(:mod:`brewflow.jetmet`, config ``jets``), electrons (:mod:`brewflow.egamma`, config
``electrons.scale_smearing``) and muons (:mod:`brewflow.muonscale`, config
``muons.scale_resolution``; :mod:`brewflow.rochester`, ``muons.rochester``), nominal or one
object variation at a time."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from brewflow.config import era_of, era_settings
from brewflow.corrected import CorrectedEvents, with_collection
from brewflow.egamma import VARIATIONS as ELECTRON_VARIATIONS
from brewflow.egamma import ElectronCorrector
from brewflow.jetmet import JetCorrector
from brewflow.muonscale import VARIATIONS as MUON_VARIATIONS
from brewflow.muonscale import MuonCorrector
from brewflow.rochester import RochesterCorrector

__all__ = ["Correctors", "correctors"]


@dataclass
class Correctors:
    """The era's correctors; each makes the nominal objects for the others' variations."""

    jets: JetCorrector | None = None
    electrons: ElectronCorrector | None = None
    muons: MuonCorrector | RochesterCorrector | None = None

    def apply(self, events: Any, variation: tuple[str, str, str] | None = None) -> Any:
        """Events with the corrected collections (every view of a graph replaces the same
        ones, so object variations can be stacked: :meth:`CorrectedEvents.chain`)."""
        kind = variation[0] if variation else ""
        electron = variation if kind in ELECTRON_VARIATIONS else None
        muon = variation if kind in MUON_VARIATIONS else None
        out: Any = events
        if self.jets is not None:
            out = self.jets.apply(events, None if electron or muon else variation)
        if self.electrons is not None:
            out = with_collection(out, "Electron", self.electrons.electrons(events, electron))
        if self.muons is not None:
            out = with_collection(out, "Muon", self.muons.muons(events, muon))
        return out if isinstance(out, CorrectedEvents) else events


def correctors(config: Mapping, dataset: str) -> Correctors | None:
    """The dataset's correctors from its era's ``jets`` and ``electrons`` blocks (None
    without either)."""
    settings = era_settings(config, era_of(config, dataset))
    spec = config["datasets"][dataset]
    jets = settings.get("jets")
    electrons = (settings.get("electrons") or {}).get("scale_smearing")
    block = settings.get("muons") or {}
    muons = block.get("scale_resolution") or block.get("rochester")
    if jets is None and electrons is None and muons is None:
        return None
    is_data = spec["is_data"]
    return Correctors(
        None if jets is None else JetCorrector.from_config(jets, is_data=is_data,
                                                           jec=spec.get("jec")),
        None if electrons is None else ElectronCorrector.from_config(electrons, is_data=is_data),
        None if muons is None else (MuonCorrector if "scale_resolution" in block
                                    else RochesterCorrector).from_config(muons, is_data=is_data),
    )  # fmt: skip
