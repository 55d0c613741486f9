"""Electron energy scale and smearing (EGM), as object variations like the jet energy scale.

Two sources, chosen per era (config ``electrons.scale_smearing``):

- **Run 3 payload** (EGM's ``electronSS.json.gz``: corrections ``Scale`` with inputs ``valtype``
  (``total_correction`` | ``total_uncertainty``), ``gain`` (``Electron_seedGain``), ``run``,
  ``eta`` (supercluster), ``r9``, ``et`` (the electron pT), and ``Smearing`` with ``valtype``
  (``rho`` | ``err_rho``), ``eta``, ``r9``), following EGM's recipe: data get the scale
  correction, ``pt * Scale(total_correction)``; MC the smearing, ``pt * (1 + rho * n)`` with
  ``n`` a standard normal number that is a pure function of the event and the electron's index
  (:func:`brewflow.draws.event_normals`); MC's variations: the scale ``pt_smeared * (1 +-
  Scale(total_uncertainty))``, the smearing ``rho +- err_rho`` with the same ``n``.
- **NanoAOD's branches** (Run 2 UL, ``nanoaod``): the electrons are already corrected; the
  variations shift the energy by ``Electron_dEscaleUp/Down`` (scale) or
  ``Electron_dEsigmaUp/Down`` (smearing), each the corrected energy minus the varied one
  (CMSSW's ``electrons_cff``: ``ecalTrkEnergyPostCorr - energyScaleUp``): ``pt * (1 - dE /
  E)``, ``E = pt cosh(eta)``. (Analysis frameworks report wrong ``dEscale`` values in some UL
  productions; EGM's scale uncertainty payloads are the alternative.)

The mass scales with the pT; every other field is kept. MET is not changed (as CMS analyses
do; jets' changes propagate through :mod:`brewflow.jetmet`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from brewflow.arrays import lib
from brewflow.corrections import CorrectionError, evaluate_by_name, load
from brewflow.draws import event_normals

__all__ = ["NANOAOD", "VARIATIONS", "ElectronCorrector"]

VARIATIONS = ("electron_scale", "electron_smearing")
"""The object variations :meth:`ElectronCorrector.electrons` makes (the config's types)."""

NANOAOD = "nanoaod"
"""``scale_smearing: nanoaod``: Run 2 UL NanoAOD's corrected electrons and their branches."""

_SALT = 0xE6  # the electrons' normal numbers differ from the jets'
_BRANCHES = {"electron_scale": "dEscale", "electron_smearing": "dEsigma"}


@dataclass
class ElectronCorrector:
    """The electron scale and smearing of one era, for data or MC."""

    is_data: bool
    file: str | None = None  # None: NanoAOD's branches
    scale: str = "Scale"
    smearing: str = "Smearing"
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_config(cls, spec: Any, *, is_data: bool) -> ElectronCorrector:
        """From ``electrons.scale_smearing``: ``nanoaod`` or ``{file, scale, smearing}``."""
        if spec == NANOAOD:
            return cls(is_data)
        return cls(is_data, spec["file"], spec.get("scale", "Scale"),
                   spec.get("smearing", "Smearing"))  # fmt: skip

    def correction(self, name: str) -> Any:
        if self.file is None:
            raise CorrectionError("electron scale and smearing from NanoAOD use no payload")
        if name not in self._cache:
            self._cache[name] = load(self.file, name)
        return self._cache[name]

    def check(self) -> None:
        """Load the payload's corrections now (clear errors before any job)."""
        if self.file is not None:
            self.correction(self.scale)
            self.correction(self.smearing)

    def _inputs(self, events: Any, electrons: Any) -> dict[str, Any]:
        ak = lib(electrons.pt)
        real = lambda a: ak.values_astype(a, np.float64)  # noqa: E731
        return {
            "gain": ak.values_astype(electrons.seedGain, np.int32),
            "run": real(electrons.pt * 0 + events.run),
            "eta": real(electrons.eta + electrons.deltaEtaSC),
            "r9": real(electrons.r9),
            "et": real(electrons.pt),
        }

    def _evaluate(self, name: str, valtype: str, values: Mapping[str, Any]) -> Any:
        return evaluate_by_name(self.correction(name), {**values, "valtype": valtype})

    def electrons(self, events: Any, variation: tuple[str, str, str] | None = None) -> Any:
        """The corrected electrons of ``events`` (nominal, or ``variation``: ``(type, "",
        "Up"|"Down")`` with type ``electron_scale`` or ``electron_smearing``, MC only)."""
        electrons = events.Electron
        kind, _, direction = variation or ("", "", "")
        if kind and kind not in VARIATIONS:
            raise ValueError(f"unknown electron variation {kind!r}; known: {VARIATIONS}")
        sign = 1.0 if direction == "Up" else -1.0
        if self.file is None:  # NanoAOD: corrected already; the branches shift the energy
            if not kind:
                return electrons
            branch = f"{_BRANCHES[kind]}{direction}"
            if branch not in electrons.fields:
                raise CorrectionError(
                    f"the {kind} variation (scale_smearing: nanoaod) needs the branch "
                    f"Electron_{branch}, which the file lacks (Run 2 UL NanoAOD has it)"
                )
            shift = electrons[branch]
            energy = electrons.pt * np.cosh(electrons.eta)
            return _scaled(electrons, 1.0 - shift / energy)  # shift: corrected - varied
        values = self._inputs(events, electrons)
        if self.is_data:
            return _scaled(electrons, self._evaluate(self.scale, "total_correction", values))
        rho = self._evaluate(self.smearing, "rho", values)
        if kind == "electron_smearing":
            rho = rho + sign * self._evaluate(self.smearing, "err_rho", values)
        factor = 1.0 + rho * event_normals(events, electrons.pt, salt=_SALT)
        if kind == "electron_scale":
            factor = factor * (1.0 + sign * self._evaluate(self.scale, "total_uncertainty",
                                                           values))  # fmt: skip
        return _scaled(electrons, factor)


def _scaled(electrons: Any, factor: Any) -> Any:
    """``electrons`` with pT and mass times ``factor``."""
    ak = lib(electrons.pt)
    out = ak.with_field(electrons, electrons.pt * factor, "pt")
    return ak.with_field(out, electrons.mass * factor, "mass")
