"""JEC, JES, JER and MET propagation against per-jet loops over the flat branches.

The reference calls correctionlib once per jet with Python scalars, draws the smearing numbers
with an independent pure-Python SplitMix64 and sums the MET shifts by hand.
"""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot

from brewflow.corrections import CorrectionError
from brewflow.jetmet import JetCorrector
from brewflow.nanoevents.reader import eager_events, lazy_events
from tests import jet_reference

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


def _spec(shared_data, spec):
    return {**spec, "file": str(shared_data / spec["file"])}


def reference(path: str, spec: dict, *, is_data: bool, variation=None) -> list[dict]:
    """Per event: corrected jet pts and MET (pt, phi), jet by jet (tests/jet_reference.py)."""
    arrays = uproot.open(path)["Events"].arrays(jet_reference.branches(spec, is_data), library="np")
    return [
        jet_reference.corrected(arrays, i, spec, is_data=is_data, variation=variation)
        for i in range(len(arrays["run"]))
    ]


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


def _against_reference(shared_data, spec, sample, *, is_data, variation=None) -> JetCorrector:
    """Correct ``sample`` with ``spec`` and compare with the per-jet loop; returns the corrector."""
    spec = _spec(shared_data, spec)
    path = str(shared_data / "nanoaod" / sample)
    corrector = JetCorrector.from_config(spec, is_data=is_data)
    got = corrector.apply(eager_events(path), variation)
    _check(got, reference(path, spec, is_data=is_data, variation=variation))
    return corrector


@pytest.mark.parametrize("variation", VARIATIONS, ids=lambda v: "".join(v) if v else "nominal")
def test_run2_mc_against_per_jet_loop(shared_data, variation):
    _against_reference(shared_data, RUN2, "nano_dy.root", is_data=False, variation=variation)


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
    corrector = _against_reference(shared_data, RUN2, "nano_dimuon.root", is_data=True)
    assert corrector.resolution is None
    assert corrector.uncertainty is None


@pytest.mark.parametrize("variation", [None, ("jer", "", "Down")], ids=["nominal", "jerDown"])
def test_run3_puppi_payload(shared_data, variation):
    _against_reference(shared_data, RUN3, "nano_tt_v12.root", is_data=False, variation=variation)


def test_smearing_uses_both_branches(shared_data):
    """The sample has matched and unmatched jets, so both JER formulas are exercised."""
    events = eager_events(str(shared_data / "nanoaod" / "nano_dy.root"))
    idx = ak.flatten(events.Jet.genJetIdx)
    assert ak.sum(idx >= 0) > 20
    assert ak.sum(idx < 0) > 20


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


def test_the_config_knows_every_object_variation():
    """Config validation (which cannot import the physics layer) and the correctors (jetmet,
    egamma, muonscale) name the same object variations."""
    from brewflow.config import OBJECT_TYPES
    from brewflow.egamma import VARIATIONS as ELECTRONS
    from brewflow.jetmet import VARIATIONS
    from brewflow.muonscale import VARIATIONS as MUONS

    assert set(OBJECT_TYPES) == {*VARIATIONS, *ELECTRONS, *MUONS}


MET_XY = {"file": "corrections/2018_UL/met.json.gz"}


@pytest.mark.parametrize("variation", [None, ("jes", "Total", "Up"), ("unclustered", "", "Down")],
                         ids=["nominal", "jesTotalUp", "unclusteredDown"])  # fmt: skip
@pytest.mark.parametrize(("sample", "is_data"), [("nano_dy.root", False),
                                                 ("nano_dimuon.root", True)])  # fmt: skip
def test_met_xy_correction_follows_the_jet_changes(shared_data, sample, is_data, variation):
    """The 2018 UL MET phi correction (real payload; data and MC formulas) applied after the
    type-1 changes, against the payload evaluated event by event on the loop's MET."""
    xy = {"file": str(shared_data / MET_XY["file"])}
    spec = {**RUN2, "met_xy": xy}
    _against_reference(shared_data, spec, sample, is_data=is_data,
                       variation=None if is_data else variation)  # fmt: skip
    plain = JetCorrector.from_config(_spec(shared_data, RUN2), is_data=is_data)
    corrected = JetCorrector.from_config(
        {**_spec(shared_data, RUN2), "met_xy": xy}, is_data=is_data
    )
    events = eager_events(str(shared_data / "nanoaod" / sample))
    shift = corrected.apply(events).MET.phi - plain.apply(events).MET.phi
    assert ak.max(np.abs(shift)) > 1e-3  # the correction moves MET
    assert corrected.met_xy[1] == f"pt_metphicorr_pfmet_{'data' if is_data else 'mc'}"


PUPPI_VARIATIONS = [None, ("jes", "Total", "Down"), ("unclustered", "", "Up"),
                    ("unclustered", "", "Down")]  # fmt: skip


@pytest.mark.parametrize(
    "variation", PUPPI_VARIATIONS, ids=lambda v: "".join(v) if v else "nominal"
)
def test_run3_puppi_met_takes_the_jet_changes_and_its_own_unclustered_variation(
    shared_data, variation
):
    """Run 3: PUPPI jets' changes go into PuppiMET (not PF MET); its unclustered variation is
    NanoAOD v12's PuppiMET_pt/phiUnclusteredUp/Down."""
    spec = {**RUN3, "met": "PuppiMET"}
    path = str(shared_data / "nanoaod" / "nano_tt_v12.root")
    corrector = JetCorrector.from_config(_spec(shared_data, spec), is_data=False)
    got = corrector.apply(eager_events(path), variation)
    expected = reference(path, _spec(shared_data, spec), is_data=False, variation=variation)
    np.testing.assert_allclose(ak.to_numpy(got.PuppiMET.pt), [e["met"] for e in expected],
                               rtol=1e-6)  # fmt: skip
    np.testing.assert_allclose(ak.to_numpy(got.PuppiMET.phi), [e["phi"] for e in expected],
                               atol=1e-6)  # fmt: skip
    assert ak.to_list(got.MET.pt) == ak.to_list(eager_events(path).MET.pt)  # PF MET untouched


def test_a_met_without_an_unclustered_variation_is_named(shared_data):
    corrector = JetCorrector.from_config(_spec(shared_data, {**RUN2, "met": "ChsMET"}),
                                         is_data=False)  # fmt: skip
    events = eager_events(str(shared_data / "nanoaod" / "nano_dy.root"))
    with pytest.raises(CorrectionError, match="unclustered MET variation needs"):
        corrector.apply(events, ("unclustered", "", "Up"))
