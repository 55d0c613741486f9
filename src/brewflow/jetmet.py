"""Jet energy corrections and their uncertainties, propagated to missing transverse momentum.

What :meth:`JetCorrector.apply` does to NanoAOD events (eager or lazy, the same code):

1. **JEC**: re-apply the compound correction (e.g. ``..._L1L2L3Res_AK4PFchs``) to the raw jet
   four-momentum, ``raw = pt * (1 - rawFactor)``, with inputs ``JetA`` (area), ``JetEta``,
   ``JetPt`` (raw) and ``Rho``. Data gets the data tag of its dataset; MC the MC tag.
2. **JER** (MC only): smear the corrected jets. With a generator jet (``Jet_genJetIdx``) within
   ``dR < 0.2`` and ``|pt - pt_gen| < 3 sigma pt``, scale: ``1 + (s - 1) (pt - pt_gen) / pt``;
   otherwise stochastic: ``1 + sigma N(0, 1) sqrt(max(s^2 - 1, 0))``, clipped at 0. ``sigma`` is
   the relative pT resolution ``(JetEta, JetPt, Rho)``, ``s`` the scale factor
   ``(JetEta[, JetPt], "nom"|"up"|"down")``. The N(0, 1) numbers are a pure function of
   ``(run, luminosityBlock, event, jet index)``: the same on every rerun and for any chunking.
3. **JES** variations: ``pt (1 +- u)`` with ``u`` the uncertainty of a source ``(JetEta, JetPt)``.
4. **MET** (``jets.met``: ``MET`` or ``PuppiMET``): ``MET -= sum over jets with new pT >
   met_jet_pt_min of (new - NanoAOD) pT``, in x and y (the NanoAOD MET already includes the
   NanoAOD JEC; only differences propagate). With ``type1_from_raw`` the type-1 MET is first
   recomputed from the raw MET with this JEC (:func:`brewflow.met.type1_met`), then the
   smearing and variations propagate from the JEC-corrected jets. The unclustered-energy
   variation: ``MET_MetUnclustEnUpDelta{X,Y}``, or PuppiMET's own varied values. Then the MET
   phi (xy) correction (``met_xy``), on nominal and varied MET alike.

Jets keep their NanoAOD order (index links such as ``Muon_jetIdx`` stay valid); the mass scales
like the pT. Inputs are named by the payload's own input names, so Run 2 (CHS) and Run 3 (Puppi)
payloads work alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from brewflow.arrays import lib
from brewflow.corrected import CorrectedEvents
from brewflow.corrections import CorrectionError, evaluate_by_name, load
from brewflow.draws import event_normals
from brewflow.errors import InputError
from brewflow.jetquality import payload_jet_id, recomputed_jet_id
from brewflow.met import RAW_MET, propagate_met, type1_met, unclustered_shift
from brewflow.objects import link, resolved_branch

__all__ = ["VARIATIONS", "JetCorrector"]

VARIATIONS = ("jes", "jer", "unclustered")
"""The object variations :meth:`JetCorrector.apply` makes (the config's systematic types
that vary objects)."""


@dataclass
class JetCorrector:
    """The jet and MET corrections of one configuration (see the config key ``jets``).

    ``jec``: compound correction for this dataset (data or MC tag); ``uncertainty``: JES
    uncertainty template with ``{source}``; ``resolution``/``resolution_sf``: JER payload names
    (MC only; None to skip smearing).
    """

    file: str
    jec: str | None
    uncertainty: str | None = None
    resolution: str | None = None
    resolution_sf: str | None = None
    rho: str = "fixedGridRhoFastjetAll"
    met: str = "MET"
    met_jet_pt_min: float = 15.0
    jet_id: str | Mapping[str, str] | None = None  # a recipe, or {file, tight, lepton_veto}
    type1_from_raw: bool = False
    met_xy: tuple[str, str, str] | None = None  # (payload, pT correction, phi correction)
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_config(cls, spec: Mapping[str, Any], *, is_data: bool, jec: str | None = None):
        """From the ``jets`` config block; ``jec`` overrides the data/MC tag (per dataset)."""
        tag = jec or spec["jec"]["data" if is_data else "mc"]
        return cls(
            file=spec["file"],
            jec=tag,
            uncertainty=None if is_data else spec.get("uncertainty"),
            resolution=None if is_data else spec.get("resolution"),
            resolution_sf=None if is_data else spec.get("resolution_sf"),
            rho=spec.get("rho", "fixedGridRhoFastjetAll"),
            met=spec.get("met", "MET"),
            met_jet_pt_min=spec.get("met_jet_pt_min", 15.0),
            jet_id=spec.get("id"),
            type1_from_raw=spec.get("type1_from_raw", False),
            met_xy=_met_xy(spec, is_data),
        )

    def correction(self, name: str, file: str | None = None) -> Any:
        """The correction ``name`` of the JERC payload (or of ``file``)."""
        key = (file or self.file, name)
        if key not in self._cache:
            self._cache[key] = load(key[0], name)
        return self._cache[key]

    def check(self, sources: Sequence[str] = ()) -> None:
        """Load every correction this configuration needs now (clear errors before any job)."""
        for name in (self.jec, self.resolution, self.resolution_sf):
            if name:
                self.correction(name)
        if self.met_xy:
            for name in self.met_xy[1:]:
                self.correction(name, self.met_xy[0])
        if self.type1_from_raw:
            self.correction(self._l1())
        if self.jet_id is not None and not isinstance(self.jet_id, str):
            for key in ("tight", "lepton_veto"):
                self.correction(self.jet_id[key], self.jet_id["file"])
        for source in sources:
            self.correction(self._source(source))

    def _source(self, source: str) -> str:
        if not self.uncertainty:
            raise CorrectionError("JES variations need 'jets.uncertainty' (a name with {source})")
        return self.uncertainty.format(source=source)

    # the corrections ---------------------------------------------------------------------------
    def corrected(self, events: Any) -> Any:
        """The NanoAOD jets with the JEC re-applied (``pt``, ``mass``; ``pt_raw`` added)."""
        jets = events.Jet
        if isinstance(self.jet_id, str):
            jets = _with(jets, jetId=recomputed_jet_id(jets, self.jet_id))
        elif self.jet_id is not None:  # JME's payload (NanoAOD v15: no stored jetId)
            tight, veto = (self.correction(self.jet_id[k], self.jet_id["file"])
                           for k in ("tight", "lepton_veto"))  # fmt: skip
            jets = _with(jets, jetId=payload_jet_id(jets, tight, veto))
        scale = 1.0 - jets.rawFactor
        pt_raw, mass_raw = jets.pt * scale, jets.mass * scale
        if not self.jec:
            return _with(jets, pt=jets.pt, mass=jets.mass, pt_raw=pt_raw)
        rho = jets.pt * 0.0 + resolved_branch(events, self.rho)  # broadcast per jet
        factor = evaluate_by_name(
            self.correction(self.jec),
            {"JetA": jets.area, "JetEta": jets.eta, "JetPt": pt_raw, "Rho": rho},
        )
        return _with(jets, pt=pt_raw * factor, mass=mass_raw * factor, pt_raw=pt_raw)

    def smeared(self, events: Any, jets: Any, variation: str = "nom") -> Any:
        """``jets`` (JEC-corrected) after JER smearing with scale factor ``variation``."""
        if not (self.resolution and self.resolution_sf):
            return jets
        ak_ = lib(jets.pt)
        rho = jets.pt * 0.0 + resolved_branch(events, self.rho)
        values = {"JetEta": jets.eta, "JetPt": jets.pt, "Rho": rho, "systematic": variation}
        sigma = evaluate_by_name(self.correction(self.resolution), values)
        sf = evaluate_by_name(self.correction(self.resolution_sf), values)
        gen = link(events.GenJet, jets.genJetIdx)
        dpt = jets.pt - gen.pt
        matched = (gen.delta_r(jets) < 0.2) & (np.abs(dpt) < 3.0 * sigma * jets.pt)
        matched = ak_.fill_none(matched, False)
        scaled = 1.0 + (sf - 1.0) * ak_.fill_none(dpt, 0.0) / jets.pt
        stochastic = 1.0 + sigma * event_normals(events, jets.pt) * np.sqrt(
            np.maximum(sf * sf - 1.0, 0.0)
        )
        factor = np.maximum(ak_.where(matched, scaled, stochastic), 0.0)
        return _with(jets, pt=jets.pt * factor, mass=jets.mass * factor)

    def jes(self, jets: Any, source: str, direction: str) -> Any:
        """``jets`` with the JES uncertainty ``source`` applied up or down."""
        u = evaluate_by_name(
            self.correction(self._source(source)), {"JetEta": jets.eta, "JetPt": jets.pt}
        )
        factor = 1.0 + u if direction == "Up" else 1.0 - u
        return _with(jets, pt=jets.pt * factor, mass=jets.mass * factor)

    def _smeared(self, events: Any, variation: str | None) -> Any:
        """JEC + JER jets (``variation`` None: JEC only), built once per events collection and
        JER variation (the nominal ones are shared by every JES and MET variation of a
        graph)."""
        # keyed by id(events); the entry holds events, so the id cannot be reused meanwhile
        jec, key = ("jec", id(events)), ("smeared", id(events), variation)
        if jec not in self._cache:
            self._cache[jec] = (events, self.corrected(events))
        if variation is None:
            return self._cache[jec][1]
        if key not in self._cache:
            self._cache[key] = (events, self.smeared(events, self._cache[jec][1], variation))
        return self._cache[key][1]

    def apply(self, events: Any, variation: tuple[str, str, str] | None = None) -> Any:
        """Events with corrected ``Jet`` and MET for the nominal or one shape ``variation``:
        ``(type, source, "Up"|"Down")`` with type ``jes`` (source e.g. ``Total``), ``jer`` or
        ``unclustered``."""
        kind, source, direction = variation or ("", "", "")
        jer = {"Up": "up", "Down": "down"}[direction] if kind == "jer" else "nom"
        jets = self._smeared(events, jer)
        if kind == "jes":
            jets = self.jes(jets, source, direction)
        met = events[self.met]
        if self.type1_from_raw:  # the type-1 MET of the configured JEC, then the changes
            before = self._smeared(events, None)  # the JEC-corrected jets
            new_met = propagate_met(self._type1(events, before), before, jets,
                                    self.met_jet_pt_min)  # fmt: skip
            # a column of the replaced record read: dask-awkward's projection would drop a
            # record none of whose fields is read, and the new fields with it
            new_met["pt"] = new_met["pt"] + 0.0 * met.pt
        else:  # NanoAOD's type-1 MET (its JEC): the changes from NanoAOD's jets
            new_met = propagate_met(met, events.Jet, jets, self.met_jet_pt_min)
        if kind == "unclustered":
            dx, dy = unclustered_shift(met, direction)
            px = new_met["pt"] * np.cos(new_met["phi"]) + dx
            py = new_met["pt"] * np.sin(new_met["phi"]) + dy
            new_met = {"pt": np.hypot(px, py), "phi": np.arctan2(py, px)}
        elif kind not in ("", "jes", "jer"):
            raise ValueError(f"unknown object variation {kind!r}; known: {VARIATIONS}")
        if self.met_xy:
            new_met = self._xy_corrected(events, new_met)
        new_met = _with(met, pt_nano=met.pt, phi_nano=met.phi, **new_met)
        return CorrectedEvents(events, {"Jet": jets, self.met: new_met})

    def _l1(self) -> str:
        """The L1FastJet of the compound JEC (type-1 MET's offset)."""
        if not self.jec or "L1L2L3Res" not in self.jec:
            raise CorrectionError(
                f"jets.type1_from_raw needs a compound L1L2L3Res JEC (to find its L1FastJet); "
                f"the JEC is {self.jec!r}"
            )
        return self.jec.replace("L1L2L3Res", "L1FastJet")

    def _type1(self, events: Any, corrected: Any) -> dict[str, Any]:
        """The type-1 MET recomputed from the raw MET with this JEC (:func:`type1_met`); the L1
        correction is the compound correction's ``L1FastJet``."""
        l1 = self.correction(self._l1())
        l123 = self.correction(str(self.jec))
        rho = resolved_branch(events, self.rho)

        def factors(jets: Any, raw: Any) -> tuple[Any, Any]:
            values = {"JetA": jets.area, "JetEta": jets.eta, "JetPt": raw, "Rho": raw * 0.0 + rho}
            return evaluate_by_name(l123, values), evaluate_by_name(l1, values)

        raw_name = RAW_MET.get(self.met, f"Raw{self.met}")
        for name in ("CorrT1METJet", raw_name):
            if name not in events.fields:
                raise InputError(
                    f"jets.type1_from_raw needs the branches {name}_*, which the events lack "
                    "(NanoAOD has them since v9): leave type1_from_raw out"
                )
        low = events.CorrT1METJet
        jet_l123, jet_l1 = factors(corrected, corrected.pt_raw)
        low_l123, low_l1 = factors(low, low.rawPt)
        raw_met = events[raw_name]
        return type1_met(raw_met, events.Jet, jet_l123, jet_l1, low, low_l123, low_l1)

    def _xy_corrected(self, events: Any, met: Mapping[str, Any]) -> dict[str, Any]:
        """``met`` after the MET phi (xy) correction (inputs ``met_pt``, ``met_phi``, ``npvs``,
        ``run``)."""
        assert self.met_xy is not None
        file, pt_name, phi_name = self.met_xy
        ak_ = lib(met["pt"])
        real = lambda a: ak_.values_astype(a, np.float64)  # noqa: E731
        npvs = resolved_branch(events, "PV_npvs")
        values = {"met_pt": real(met["pt"]), "met_phi": real(met["phi"]),
                  "npvs": real(npvs), "run": real(events.run)}  # fmt: skip
        return {
            "pt": evaluate_by_name(self.correction(pt_name, file), values),
            "phi": evaluate_by_name(self.correction(phi_name, file), values),
        }


def _met_xy(spec: Mapping[str, Any], is_data: bool) -> tuple[str, str, str] | None:
    """(payload, pT name, phi name) of the ``jets.met_xy`` block for data or MC."""
    xy = spec.get("met_xy")
    if xy is None:
        return None
    kind = "data" if is_data else "mc"
    flavour = "puppimet" if spec.get("met", "MET") == "PuppiMET" else "pfmet"
    names = (xy.get(q, f"{q}_metphicorr_{flavour}_{{kind}}") for q in ("pt", "phi"))
    pt, phi = (name.format(kind=kind) for name in names)
    return xy["file"], pt, phi


def _with(record: Any, **fields: Any) -> Any:
    """``record`` with fields replaced or added (keeps its name and behaviour)."""
    for name, values in fields.items():
        record = lib(values).with_field(record, values, name)
    return record
