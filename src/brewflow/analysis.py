"""The contract between brewflow and an analysis: what it is told and what it returns.

An analysis is a function ``analysis(events, context) -> AnalysisOutput`` named in the config as
``module:function``. ``events`` is a NanoAOD record array, lazy (dask-awkward) in workflow jobs
and eager (awkward) in tests; write the function once against the array API
(:func:`brewflow.arrays.lib` gives the matching library).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from brewflow.checkpoints import checkpoint
from brewflow.selection import Selection
from brewflow.weights import Weights

__all__ = ["AnalysisOutput", "Context", "JESVariation", "PerBlock"]


@dataclass(frozen=True)
class JESVariation:
    """The jet-energy-scale variation the events' jets carry: ``direction`` ``"up"`` or
    ``"down"`` of uncertainty ``source`` (e.g. ``"Total"``, ``"FlavorQCD"``). Weights that CMS
    correlates with JES follow it, e.g. the b-tag shape SF's ``up_jes``/``down_jes<Source>``
    (:func:`brewflow.corrections.btag_shape_weights`)."""

    direction: str
    source: str = "Total"

    @property
    def btag_systematic(self) -> str:
        """The b-tag shape payload's name: ``up_jes`` (Total) or ``down_jesFlavorQCD``."""
        return f"{self.direction}_jes{'' if self.source == 'Total' else self.source}"


@dataclass(frozen=True)
class PerBlock:
    """Per-event variation of stacked object variations (lazy events, one block of partitions
    per variation): ``codes`` (per event) indexes ``values`` (e.g. a :class:`JESVariation` or
    None for a non-JES variation); constant within a partition."""

    codes: Any
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Context:
    """What the analysis is told about the events it runs on.

    ``systematic`` is ``"nominal"`` for the run on nominal objects (the one whose weight
    variations are used), the object variation's name (e.g. ``"jesTotalUp"``) when the analysis
    runs on varied objects, or ``OBJECT_VARIATIONS`` when it runs once on all object variations
    stacked (lazy graphs). Only the nominal run's weight variations are used: the analysis may
    skip computing them otherwise (:attr:`wants_weight_variations`). ``jes`` is the JES
    variation of the jets (:class:`JESVariation`; :class:`PerBlock` when stacked; None on
    nominal jets and other variations): pass it to weights correlated with JES. ``met`` names
    the MET collection the config corrects (``jets.met``: ``MET``, or ``PuppiMET`` in Run 3):
    read ``events[context.met]``.
    """

    dataset: str
    is_data: bool
    systematic: str = "nominal"
    options: dict[str, Any] = field(default_factory=dict)
    corrections: dict[str, Any] = field(default_factory=dict)  # correctionlib, by config key
    models: dict[str, str] = field(default_factory=dict)  # ML model files, by config key
    jes: Any = None  # JESVariation | PerBlock | None
    met: str = "MET"

    def checkpoint(self, name: str, array: Any) -> Any:
        """Mark ``array`` (e.g. the selected, corrected objects) as a checkpoint: persisted on
        the cluster when the job persists checkpoints (config ``persist_checkpoints: true`` on
        a distributed scheduler), so every later use reuses it; else returned unchanged. Use
        the returned array. See :mod:`brewflow.checkpoints`."""
        return checkpoint(array, f"{self.dataset}/{self.systematic}/{name}")

    @property
    def wants_weight_variations(self) -> bool:
        """True in the run on nominal objects, the only one whose weight variations are used."""
        return self.systematic == "nominal"


OBJECT_VARIATIONS = "object variations"


@dataclass
class AnalysisOutput:
    """What an analysis returns: named cuts, named per-event variables, and event weights;
    ``objects``: its selected objects by NanoAOD collection name (``"Muon"``: the selected
    muons), which the config's ``lepton_sf`` block weighs (:mod:`brewflow.jobs.blocks`)."""

    selection: Selection
    variables: dict[str, Any]
    weights: Weights
    objects: dict[str, Any] = field(default_factory=dict)
