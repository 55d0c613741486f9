"""MET (brewflow.met): the type-1 MET recomputed from the raw MET reproduces NanoAOD's PuppiMET
(CMSSW's computation) given NanoAOD's own jet corrections; with the configured JEC, through
JetCorrector, it equals a jet-by-jet loop with correctionlib called per jet (real Run 3 ttbar and
Summer22 payload)."""

from __future__ import annotations

import math

import awkward as ak
import numpy as np
import pytest
import uproot

from brewflow.corrections import CorrectionError, load
from brewflow.jetmet import JetCorrector
from brewflow.met import type1_met
from brewflow.nanoevents.reader import eager_events, lazy_events
from tests import jet_reference
from tests.test_jetmet import RUN3

PAYLOAD = "corrections/jet_jerc_Summer22_V3.json.gz"
L1 = "Summer22_22Sep2023_V3_MC_L1FastJet_AK4PFPuppi"
L123 = "Summer22_22Sep2023_V3_MC_L1L2L3Res_AK4PFPuppi"  # whose low-pT jets do pass 15 GeV


@pytest.fixture
def ttbar(shared_data) -> str:
    return str(shared_data / "nanoaod" / "nano_tt_v12.root")


def test_type1_from_raw_reproduces_nanoaods_puppimet(shared_data, ttbar):
    """NanoAOD's own jet corrections (Jet_pt over the raw pT) and the payload's L1: RawPuppiMET
    corrected so is NanoAOD's PuppiMET to 0.1% in half of the events and 1% in 90%. The low-pT
    jets (CorrT1METJet) are below 15 GeV with NanoAOD's corrections by construction (they are
    kept for a new JEC to lift them): factor 1 here, so they add nothing."""
    events = eager_events(ttbar)
    l1 = load(shared_data / PAYLOAD, L1)
    jets, low = events.Jet, events.CorrT1METJet
    raw = jets.pt * (1 - jets.rawFactor)
    jet_l1 = l1.evaluate(jets.area, jets.eta, raw, raw * 0 + events.Rho.fixedGridRhoFastjetAll)
    one = low.rawPt * 0 + 1.0
    found = type1_met(events.RawPuppiMET, jets, jets.pt / raw, jet_l1, low, one, one)
    deviation = np.abs(ak.to_numpy(found["pt"] / events.PuppiMET.pt) - 1)
    assert np.median(deviation) < 1e-3
    assert np.mean(deviation < 0.01) > 0.9
    raw_deviation = np.abs(ak.to_numpy(events.RawPuppiMET.pt / events.PuppiMET.pt) - 1)
    assert np.median(raw_deviation) > 10 * np.median(deviation)  # the correction matters


def _loop(path: str, spec: dict, variation) -> list[float]:
    """Per event: the type-1 PuppiMET from RawPuppiMET with the payload's JEC, jet by jet, then
    the JES variation's change of the jets above 15 GeV."""
    l1, l123 = (load(spec["file"], n) for n in (L1, L123))
    names = [
        *jet_reference.branches(spec, False),
        "RawPuppiMET_pt",
        "RawPuppiMET_phi",
        "Jet_muonSubtrFactor",
        "Jet_chEmEF",
        "Jet_neEmEF",
        *(f"CorrT1METJet_{x}" for x in ("rawPt", "eta", "phi", "area", "muonSubtrFactor")),
    ]
    with uproot.open(path) as f:
        a = f["Events"].arrays(names, library="np")
    out = []
    for i in range(len(a["run"])):
        rho = float(a["Rho_fixedGridRhoFastjetAll"][i])
        mx = float(a["RawPuppiMET_pt"][i]) * math.cos(float(a["RawPuppiMET_phi"][i]))
        my = float(a["RawPuppiMET_pt"][i]) * math.sin(float(a["RawPuppiMET_phi"][i]))
        jets = [(float(pt) * (1 - float(rf)), float(eta), float(phi), float(area), float(mu),
                 float(ch) + float(ne) < 0.9) for pt, rf, eta, phi, area, mu, ch, ne in zip(
            a["Jet_pt"][i], a["Jet_rawFactor"][i], a["Jet_eta"][i], a["Jet_phi"][i],
            a["Jet_area"][i], a["Jet_muonSubtrFactor"][i], a["Jet_chEmEF"][i],
            a["Jet_neEmEF"][i], strict=True)]  # fmt: skip
        low = [(float(r), float(eta), float(phi), float(area), float(mu), True)
               for r, eta, phi, area, mu in zip(*(a[f"CorrT1METJet_{x}"][i] for x in (
                   "rawPt", "eta", "phi", "area", "muonSubtrFactor")), strict=True)]  # fmt: skip
        for raw, eta, phi, area, mu, em in jets + low:
            c123 = l123.evaluate(area, eta, raw, rho)
            c1 = l1.evaluate(area, eta, raw, rho)
            if em and raw * (1 - mu) * c123 > 15:
                mx -= raw * (1 - mu) * (c123 - c1) * math.cos(phi)
                my -= raw * (1 - mu) * (c123 - c1) * math.sin(phi)
        if variation is not None:
            jec = jet_reference.corrected(a, i, spec, is_data=False)["pt"]
            varied = jet_reference.corrected(a, i, spec, is_data=False, variation=variation)["pt"]
            for (_, _, phi, *_), before, after in zip(jets, jec, varied, strict=True):
                if after > 15:
                    mx -= (after - before) * math.cos(phi)
                    my -= (after - before) * math.sin(phi)
        out.append(math.hypot(mx, my))
    return out


@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize("variation", [None, ("jes", "Total", "Up")],
                         ids=["nominal", "jesTotalUp"])  # fmt: skip
def test_type1_from_raw_with_the_configured_jec_against_a_loop(shared_data, ttbar, variation,
                                                                lazy):  # fmt: skip
    spec = {k: v for k, v in RUN3.items() if not k.startswith("resolution")}  # no smearing
    spec |= {"file": str(shared_data / PAYLOAD), "met": "PuppiMET", "type1_from_raw": True}
    corrector = JetCorrector.from_config(spec, is_data=False)
    events = lazy_events([ttbar], step_size=70) if lazy else eager_events(ttbar)
    met = corrector.apply(events, variation).PuppiMET.pt
    found = ak.to_numpy(met.compute(scheduler="sync") if lazy else met)
    np.testing.assert_allclose(found, _loop(ttbar, spec, variation), rtol=1e-6)


def test_type1_from_raw_needs_a_compound_jec(shared_data, ttbar):
    spec = {
        **RUN3,
        "file": str(shared_data / PAYLOAD),
        "met": "PuppiMET",
        "type1_from_raw": True,
        "jec": {"mc": "Summer22_22Sep2023_V3_MC_L2Relative_AK4PFPuppi", "data": "x"},
    }
    corrector = JetCorrector.from_config(spec, is_data=False)
    with pytest.raises(CorrectionError, match="needs a compound L1L2L3Res JEC"):
        corrector.apply(eager_events(ttbar))


def test_type1_from_raw_names_a_missing_branch(shared_data, ttbar):
    """Regression (review): a file without CorrT1METJet was an AttributeError (a traceback)."""
    from brewflow.errors import InputError

    spec = {**RUN3, "file": str(shared_data / PAYLOAD), "met": "PuppiMET", "type1_from_raw": True}
    events = eager_events(ttbar)
    without = events[[f for f in events.fields if f != "CorrT1METJet"]]
    with pytest.raises(InputError, match="type1_from_raw needs the branches CorrT1METJet_"):
        JetCorrector.from_config(spec, is_data=False).apply(without)
