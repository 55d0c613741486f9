"""Electron energy scale and smearing (brewflow.egamma) on the real Run 3 ttbar with EGM's real
2022 payload (tests/data/payloads), against correctionlib called electron by electron and the
normal numbers drawn by the independent SplitMix64 of tests/jet_reference.py; NanoAOD's Run 2
UL branches on electrons given them (no sample here has them)."""

from __future__ import annotations

import math

import awkward as ak
import numpy as np
import pytest
import uproot

from brewflow.corrections import CorrectionError
from brewflow.egamma import ElectronCorrector
from brewflow.nanoevents.reader import eager_events, lazy_events
from tests import jet_reference
from tests.helpers import ROOT, computed

PAYLOAD = str(ROOT / "tests" / "data" / "payloads" / "EGM" / "2022_Summer22" / "electronSS.json.gz")
FIELDS = ("pt", "eta", "deltaEtaSC", "r9", "seedGain")
VARIATIONS = [None, ("electron_scale", "", "Up"), ("electron_scale", "", "Down"),
              ("electron_smearing", "", "Up"), ("electron_smearing", "", "Down")]  # fmt: skip


@pytest.fixture
def ttbar(shared_data) -> str:
    return str(shared_data / "nanoaod" / "nano_tt_v12.root")


def _loop(path: str, variation, *, is_data: bool, run: float | None = None) -> list[list[float]]:
    import correctionlib

    payload = correctionlib.CorrectionSet.from_file(PAYLOAD)
    scale, smearing = payload["Scale"], payload["Smearing"]
    with uproot.open(path) as f:
        a = f["Events"].arrays(["run", "luminosityBlock", "event",
                                *(f"Electron_{x}" for x in FIELDS)], library="np")  # fmt: skip
    kind, _, direction = variation or ("", "", "")
    sign = 1 if direction == "Up" else -1
    out = []
    for i in range(len(a["run"])):
        r = float(run if run is not None else a["run"][i])
        pts = []
        for j in range(len(a["Electron_pt"][i])):
            pt, r9 = float(a["Electron_pt"][i][j]), float(a["Electron_r9"][i][j])
            eta = float(a["Electron_eta"][i][j]) + float(a["Electron_deltaEtaSC"][i][j])
            gain = int(a["Electron_seedGain"][i][j])
            if is_data:
                pts.append(pt * scale.evaluate("total_correction", gain, r, eta, r9, pt))
                continue
            rho = smearing.evaluate("rho", eta, r9)
            if kind == "electron_smearing":
                rho += sign * smearing.evaluate("err_rho", eta, r9)
            n = jet_reference.normal(int(a["run"][i]), int(a["luminosityBlock"][i]),
                                     int(a["event"][i]), j, salt=0xE6)  # fmt: skip
            value = pt * (1 + rho * n)
            if kind == "electron_scale":
                value *= 1 + sign * scale.evaluate("total_uncertainty", gain, r, eta, r9, pt)
            pts.append(value)
        out.append(pts)
    return out


def _pts(electrons) -> list[list[float]]:
    return ak.to_list(computed(electrons).pt)


@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize("variation", VARIATIONS, ids=lambda v: "".join(v) if v else "nominal")
def test_mc_smearing_and_its_variations_electron_by_electron(ttbar, variation, lazy):
    corrector = ElectronCorrector.from_config({"file": PAYLOAD}, is_data=False)
    events = lazy_events([ttbar], step_size=70) if lazy else eager_events(ttbar)
    found = _pts(corrector.electrons(events, variation))
    expected = _loop(ttbar, variation, is_data=False)
    assert [len(e) for e in found] == [len(e) for e in expected]
    np.testing.assert_allclose([p for e in found for p in e], [p for e in expected for p in e],
                               rtol=1e-6)  # fmt: skip
    raw = ak.to_list(eager_events(ttbar).Electron.pt)
    assert any(abs(f - r) > 1e-3 * r for e, g in zip(found, raw, strict=True)
               for f, r in zip(e, g, strict=True))  # fmt: skip


def test_data_get_the_scale_correction_of_their_run(ttbar):
    """The MC sample's electrons as 2022 data of run 357000 (the correction is 1 at run 1)."""
    events = eager_events(ttbar)
    as_data = ak.with_field(events, ak.full_like(events.run, 357000), "run")
    corrector = ElectronCorrector.from_config({"file": PAYLOAD}, is_data=True)
    found = _pts(corrector.electrons(as_data))
    expected = _loop(ttbar, None, is_data=True, run=357000)
    np.testing.assert_allclose([p for e in found for p in e], [p for e in expected for p in e],
                               rtol=1e-6)  # fmt: skip
    assert found != ak.to_list(events.Electron.pt)


def test_nanoaod_branches_shift_the_energy(ttbar):
    """Run 2 UL layout: corrected electrons, Electron_dEscaleUp/Down and dEsigmaUp/Down the
    corrected energy minus the varied one, as CMSSW's electrons_cff writes them
    (``ecalTrkEnergyPostCorr - energyScaleUp``; added here to the real electrons): the scale up
    by 1% is dEscaleUp = -0.01 E."""
    events = eager_events(ttbar)
    e = events.Electron
    energy = e.pt * np.cosh(e.eta)
    shifts = {"dEscaleUp": -0.01 * energy, "dEscaleDown": 0.012 * energy,
              "dEsigmaUp": -0.003 * energy, "dEsigmaDown": 0.002 * energy}  # fmt: skip
    given = ak.with_field(events, ak.zip({**{f: e[f] for f in e.fields}, **shifts},
                                         with_name="PtEtaPhiMCandidate"), "Electron")  # fmt: skip
    corrector = ElectronCorrector.from_config("nanoaod", is_data=False)
    assert _pts(corrector.electrons(given)) == ak.to_list(e.pt)  # corrected already
    pts = ak.to_list(e.pt)
    for kind, branch, factor in (("electron_scale", "Up", 1.01), ("electron_scale", "Down", 0.988),
                                 ("electron_smearing", "Up", 1.003)):  # fmt: skip
        found = _pts(corrector.electrons(given, (kind, "", branch)))
        np.testing.assert_allclose([p for x in found for p in x],
                                   [p * factor for x in pts for p in x], rtol=1e-6)  # fmt: skip
    with pytest.raises(CorrectionError, match="needs the branch Electron_dEscaleUp"):
        corrector.electrons(events, ("electron_scale", "", "Up"))
    assert math.isfinite(sum(map(sum, pts)))
