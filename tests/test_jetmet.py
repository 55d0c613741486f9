"""JEC, JES, JER and MET propagation against per-jet loops over the flat branches.

The reference calls correctionlib once per jet with Python scalars, draws the smearing numbers
with an independent pure-Python SplitMix64 and sums the MET shifts by hand.
"""

from __future__ import annotations

import math

import awkward as ak
import numpy as np
import pytest
import uproot

from brewflow.corrections import CorrectionError, load
from brewflow.jetmet import JetCorrector, event_normals
from brewflow.nanoevents import eager_events, lazy_events

RUN2 = {
    "file": "corrections/2018_UL/jet_jerc.json.gz",
    "jec": {
        "mc": "Summer19UL18_V5_MC_L1L2L3Res_AK4PFchs",
        "data": "Summer19UL18_RunA_V5_DATA_L1L2L3Res_AK4PFchs",
    },
    "uncertainty": "Summer19UL18_V5_MC_{source}_AK4PFchs",
    "resolution": "Summer19UL18_JRV2_MC_PtResolution_AK4PFchs",
    "resolution_sf": "Summer19UL18_JRV2_MC_ScaleFactor_AK4PFchs",
}
RUN3 = {
    "file": "corrections/jet_jerc_Summer22_V3.json.gz",
    "jec": {
        "mc": "Summer22_22Sep2023_V3_MC_L1L2L3Res_AK4PFPuppi",
        "data": "Summer22_22Sep2023_RunCD_V3_DATA_L1L2L3Res_AK4PFPuppi",
    },
    "uncertainty": "Summer22_22Sep2023_V3_MC_{source}_AK4PFPuppi",
    "resolution": "Summer22_22Sep2023_JRV1_MC_PtResolution_AK4PFPuppi",
    "resolution_sf": "Summer22_22Sep2023_JRV1_MC_ScaleFactor_AK4PFPuppi",
    "rho": "Rho_fixedGridRhoFastjetAll",
}
MASK = (1 << 64) - 1


def _splitmix(x: int) -> int:
    z = (x + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def _normal(run: int, lumi: int, event: int, index: int, salt: int = 0) -> float:
    key = _splitmix(run ^ salt)
    for value in (lumi, event, index):
        key = _splitmix(key ^ value)
    u1 = ((key >> 11) + 0.5) * 2.0**-53
    u2 = ((_splitmix(key) >> 11) + 0.5) * 2.0**-53
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def _spec(shared_data, spec):
    return {**spec, "file": str(shared_data / spec["file"])}


def _args(c, **values):
    return [values[i.name] for i in c.inputs]


def reference(path: str, spec: dict, *, is_data: bool, variation=None) -> list[dict]:
    """Per event: corrected jet pts and MET (pt, phi), jet by jet with scalar correctionlib."""
    file = spec["file"]
    rho_branch = spec.get("rho", "fixedGridRhoFastjetAll")
    jec = load(file, spec["jec"]["data" if is_data else "mc"])
    branches = ["run", "luminosityBlock", "event", rho_branch, "MET_pt", "MET_phi"]
    branches += ["MET_MetUnclustEnUpDeltaX", "MET_MetUnclustEnUpDeltaY"]
    branches += [f"Jet_{f}" for f in ("pt", "eta", "phi", "mass", "rawFactor", "area")]
    if not is_data:
        branches += ["Jet_genJetIdx", "GenJet_pt", "GenJet_eta", "GenJet_phi"]
        res, sfc = load(file, spec["resolution"]), load(file, spec["resolution_sf"])
    arrays = uproot.open(path)["Events"].arrays(branches, library="np")
    kind, source, direction = variation or (None, None, None)
    out = []
    for i in range(len(arrays["run"])):
        rho = float(arrays[rho_branch][i])
        met_x = float(arrays["MET_pt"][i]) * math.cos(float(arrays["MET_phi"][i]))
        met_y = float(arrays["MET_pt"][i]) * math.sin(float(arrays["MET_phi"][i]))
        pts = []
        for j, pt_nano in enumerate(arrays["Jet_pt"][i]):
            pt_nano, eta = float(pt_nano), float(arrays["Jet_eta"][i][j])
            phi = float(arrays["Jet_phi"][i][j])
            raw = pt_nano * (1 - float(arrays["Jet_rawFactor"][i][j]))
            area = float(arrays["Jet_area"][i][j])
            pt = raw * jec.evaluate(*_args(jec, JetA=area, JetEta=eta, JetPt=raw, Rho=rho))
            if not is_data:
                syst = {"Up": "up", "Down": "down"}[direction] if kind == "jer" else "nom"
                values = {"JetEta": eta, "JetPt": pt, "Rho": rho, "systematic": syst}
                sigma = res.evaluate(*_args(res, **values))
                sf = sfc.evaluate(*_args(sfc, **values))
                g = int(arrays["Jet_genJetIdx"][i][j])
                factor = None
                if 0 <= g < len(arrays["GenJet_pt"][i]):
                    gpt = float(arrays["GenJet_pt"][i][g])
                    dphi = (float(arrays["GenJet_phi"][i][g]) - phi + math.pi) % (
                        2 * math.pi
                    ) - math.pi
                    dr = math.hypot(float(arrays["GenJet_eta"][i][g]) - eta, dphi)
                    if dr < 0.2 and abs(pt - gpt) < 3 * sigma * pt:
                        factor = 1 + (sf - 1) * (pt - gpt) / pt
                if factor is None:
                    run, lumi, event = (int(arrays[k][i]) for k in branches[:3])
                    n = _normal(run, lumi, event, j)
                    factor = 1 + sigma * n * math.sqrt(max(sf * sf - 1, 0.0))
                pt *= max(factor, 0.0)
                if kind == "jes":
                    unc = load(file, spec["uncertainty"].format(source=source))
                    u = unc.evaluate(*_args(unc, JetEta=eta, JetPt=pt))
                    pt *= 1 + u if direction == "Up" else 1 - u
            if pt > 15:
                met_x -= (pt - pt_nano) * math.cos(phi)
                met_y -= (pt - pt_nano) * math.sin(phi)
            pts.append(pt)
        if kind == "unclustered":
            sign = 1 if direction == "Up" else -1
            met_x += sign * float(arrays["MET_MetUnclustEnUpDeltaX"][i])
            met_y += sign * float(arrays["MET_MetUnclustEnUpDeltaY"][i])
        out.append({"pt": pts, "met": math.hypot(met_x, met_y), "phi": math.atan2(met_y, met_x)})
    return out


VARIATIONS = [
    None,
    ("jes", "Total", "Up"),
    ("jes", "Total", "Down"),
    ("jes", "FlavorQCD", "Up"),
    ("jer", "", "Up"),
    ("jer", "", "Down"),
    ("unclustered", "", "Up"),
    ("unclustered", "", "Down"),
]


def _check(got, expected):
    assert ak.to_list(ak.num(got.Jet.pt)) == [len(e["pt"]) for e in expected]
    np.testing.assert_allclose(
        ak.to_numpy(ak.flatten(got.Jet.pt)), [p for e in expected for p in e["pt"]], rtol=1e-6
    )
    np.testing.assert_allclose(ak.to_numpy(got.MET.pt), [e["met"] for e in expected], rtol=1e-6)
    np.testing.assert_allclose(ak.to_numpy(got.MET.phi), [e["phi"] for e in expected], atol=1e-6)


@pytest.mark.parametrize("variation", VARIATIONS, ids=lambda v: "".join(v) if v else "nominal")
def test_run2_mc_against_per_jet_loop(shared_data, variation):
    spec = _spec(shared_data, RUN2)
    path = str(shared_data / "nanoaod" / "nano_dy.root")
    corrector = JetCorrector.from_config(spec, is_data=False)
    got = corrector.apply(eager_events(path), variation)
    _check(got, reference(path, spec, is_data=False, variation=variation))


@pytest.mark.parametrize("variation", [None, ("jes", "Total", "Up")], ids=["nominal", "jesUp"])
def test_lazy_equals_eager_for_any_chunking(shared_data, variation):
    spec = _spec(shared_data, RUN2)
    path = str(shared_data / "nanoaod" / "nano_dy.root")
    corrector = JetCorrector.from_config(spec, is_data=False)
    eager = corrector.apply(eager_events(path), variation)
    for step in (7, 40):
        lazy = corrector.apply(lazy_events([path], step_size=step), variation)
        got = lazy[["Jet", "MET"]].compute()
        assert ak.to_list(got.Jet.pt) == ak.to_list(eager.Jet.pt)
        assert ak.to_list(got.MET.pt) == ak.to_list(eager.MET.pt)


def test_data_gets_data_jec_and_no_smearing(shared_data):
    spec = _spec(shared_data, RUN2)
    path = str(shared_data / "nanoaod" / "nano_dimuon.root")
    corrector = JetCorrector.from_config(spec, is_data=True)
    assert corrector.resolution is None
    assert corrector.uncertainty is None
    _check(corrector.apply(eager_events(path)), reference(path, spec, is_data=True))


@pytest.mark.parametrize("variation", [None, ("jer", "", "Down")], ids=["nominal", "jerDown"])
def test_run3_puppi_payload(shared_data, variation):
    spec = _spec(shared_data, RUN3)
    path = str(shared_data / "nanoaod" / "nano_tt_v12.root")
    corrector = JetCorrector.from_config(spec, is_data=False)
    got = corrector.apply(eager_events(path), variation)
    _check(got, reference(path, spec, is_data=False, variation=variation))


def test_smearing_uses_both_branches(shared_data):
    """The sample has matched and unmatched jets, so both JER formulas are exercised."""
    events = eager_events(str(shared_data / "nanoaod" / "nano_dy.root"))
    idx = ak.flatten(events.Jet.genJetIdx)
    assert ak.sum(idx >= 0) > 20
    assert ak.sum(idx < 0) > 20


def test_event_normals_are_standard_normal_and_reproducible():
    n = 20000
    events = ak.zip(
        {
            "run": np.full(n, 1, np.uint32),
            "luminosityBlock": np.arange(n, dtype=np.uint32) // 100,
            "event": np.arange(n, dtype=np.uint64),
        }
    )
    like = ak.unflatten(np.zeros(3 * n), np.full(n, 3))
    draws = event_normals(events, like)
    flat = ak.to_numpy(ak.flatten(draws))
    assert abs(flat.mean()) < 0.02
    assert abs(flat.std() - 1) < 0.02
    assert ak.to_list(event_normals(events[5:9], like[5:9])) == ak.to_list(draws[5:9])
    assert ak.to_list(draws[3]) == [_normal(1, 0, 3, j) for j in range(3)]
    assert not np.array_equal(flat, ak.to_numpy(ak.flatten(event_normals(events, like, 1))))


def test_unknown_names_are_listed(shared_data):
    spec = _spec(shared_data, RUN2)
    corrector = JetCorrector.from_config(
        {**spec, "jec": {"mc": "Summer19UL18_V5_MC_L1L2L3Res_AK4PFpuppi", "data": "x"}},
        is_data=False,
    )
    with pytest.raises(CorrectionError, match="did you mean 'Summer19UL18_V5_MC_L1L2L3Res_AK4"):
        corrector.check(["Total"])
    corrector = JetCorrector.from_config(spec, is_data=False)
    with pytest.raises(CorrectionError, match="no correction 'Summer19UL18_V5_MC_Nope_AK4PFchs'"):
        corrector.check(["Nope"])
