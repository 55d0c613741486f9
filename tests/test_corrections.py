"""Corrections against correctionlib called directly on the same (flattened) values."""

from __future__ import annotations

import awkward as ak
import correctionlib
import numpy as np
import pytest

from brewflow.arrays import chain
from brewflow.corrections import (
    CorrectionError,
    btag_shape_weights,
    btag_wp_weights,
    load,
    pileup_weights,
)
from brewflow.leptonsf import electron_sf_weights, muon_sf_weights
from brewflow.nanoevents.reader import eager_events, lazy_events

PU = ("puWeights.json.gz", "Collisions18_UltraLegacy_goldenJSON")
MUON = ("muon_Z.json.gz", "NUM_TightID_DEN_genTracks")


@pytest.fixture(scope="module")
def real(shared_data) -> dict:
    base = shared_data / "corrections" / "2018_UL"
    path = str(shared_data / "nanoaod" / "nano_dy.root")
    return {
        "base": base,
        "pu": load(base / PU[0], PU[1]),
        "muon": load(base / MUON[0], MUON[1]),
        "direct_pu": correctionlib.CorrectionSet.from_file(str(base / PU[0]))[PU[1]],
        "direct_muon": correctionlib.CorrectionSet.from_file(str(base / MUON[0]))[MUON[1]],
        False: eager_events(path),
        True: lazy_events([path], step_size=15),
    }


def _direct(real, payload: str, name: str):
    return correctionlib.CorrectionSet.from_file(str(real["base"] / payload))[name]


def _jets(events):
    jets = events.Jet
    return jets[(jets.pt > 20) & (np.abs(jets.eta) < 2.5)]


def _per_event_product(objects, factor) -> list[float]:
    out = []
    for event in ak.to_list(objects):
        product = 1.0
        for obj in event:
            product *= factor(obj)
        out.append(product)
    return out


def _muons(events):
    mu = events.Muon
    return mu[(mu.pt > 15) & (np.abs(mu.eta) < 2.4)]


@pytest.mark.parametrize("lazy", [False, True])
def test_pileup_weights_equal_direct_evaluation(real, lazy):
    weights = pileup_weights(real["pu"], real[lazy].Pileup.nTrueInt)
    n_true = ak.to_numpy(real[False].Pileup.nTrueInt).astype(np.float64)
    for key in ("nominal", "up", "down"):
        got = weights[key].compute() if lazy else weights[key]
        expected = [real["direct_pu"].evaluate(float(x), key) for x in n_true]
        np.testing.assert_array_equal(ak.to_numpy(got), expected)


@pytest.mark.parametrize("lazy", [False, True])
def test_muon_sf_products_equal_a_per_muon_loop(real, lazy):
    weights = muon_sf_weights(real["muon"], _muons(real[lazy]), "2018_UL")
    muons = _muons(real[False])
    for key, valtype in (("nominal", "sf"), ("up", "systup"), ("down", "systdown")):
        got = weights[key].compute() if lazy else weights[key]
        expected = []
        for event in ak.to_list(muons):
            product = 1.0
            for m in event:
                product *= real["direct_muon"].evaluate("2018_UL", abs(m["eta"]), m["pt"], valtype)
            expected.append(product)
        np.testing.assert_allclose(ak.to_numpy(got), expected, rtol=1e-12)
        assert any(e != 1.0 for e in expected)


def test_errors_list_what_is_available(real, tmp_path):
    with pytest.raises(CorrectionError, match=r"no correction 'NUM_Tight'.*available: NUM_"):
        load(real["base"] / MUON[0], "NUM_Tight")
    with pytest.raises(CorrectionError, match="does not exist"):
        load(tmp_path / "none.json", "x")
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(CorrectionError, match="cannot read correction payload"):
        load(bad, "x")


@pytest.mark.parametrize("lazy", [False, True])
def test_electron_sf_products_equal_a_per_electron_loop(real, lazy):
    correction = load(real["base"] / "electron.json.gz", "UL-Electron-ID-SF")
    direct = _direct(real, "electron.json.gz", "UL-Electron-ID-SF")
    select = lambda ev: ev.Electron[(ev.Electron.pt > 10) & (abs(ev.Electron.eta) < 2.5)]  # noqa: E731
    weights = electron_sf_weights(correction, select(real[lazy]), "2018", "Tight")
    for key, valtype in (("nominal", "sf"), ("up", "sfup"), ("down", "sfdown")):
        got = ak.to_numpy(weights[key].compute() if lazy else weights[key])
        expected = _per_event_product(
            select(real[False]),
            lambda e, v=valtype: direct.evaluate(
                "2018", v, "Tight", e["eta"] + e["deltaEtaSC"], e["pt"]
            ),
        )
        np.testing.assert_allclose(got, expected, rtol=1e-12)
        assert any(x != 1.0 for x in expected)


def test_electron_sf_is_taken_at_the_supercluster_eta(real):
    """Regression (issue 16.6): the SF was evaluated at Electron_eta; the payload's input is
    the supercluster eta. Electrons whose eta and supercluster eta fall in different bins of
    the real 2018 payload (edges at 0.8, 1.444, 1.566) get the supercluster bin's SF."""
    correction = load(real["base"] / "electron.json.gz", "UL-Electron-ID-SF")
    direct = _direct(real, "electron.json.gz", "UL-Electron-ID-SF")
    eta, delta = [0.79, 1.43, -1.57], [0.02, 0.03, 0.01]
    electrons = ak.zip({"pt": [[35.0], [35.0], [35.0]], "eta": [[x] for x in eta],
                       "deltaEtaSC": [[x] for x in delta]})  # fmt: skip
    got = ak.to_numpy(electron_sf_weights(correction, electrons, "2018", "Tight")["nominal"])
    sc = [
        direct.evaluate("2018", "sf", "Tight", e + d, 35.0) for e, d in zip(eta, delta, strict=True)
    ]
    at_eta = [direct.evaluate("2018", "sf", "Tight", e, 35.0) for e in eta]
    np.testing.assert_allclose(got, sc, rtol=1e-12)
    assert all(a != b for a, b in zip(sc, at_eta, strict=True))  # the bins do differ
    with pytest.raises(CorrectionError, match="need the NanoAOD branch Electron_deltaEtaSC"):
        electron_sf_weights(correction, electrons[["pt", "eta"]], "2018", "Tight")


SHAPE_SYSTEMATICS = ["hf", "lf", "cferr1", "jesFlavorQCD"]


@pytest.mark.parametrize("mode", ["eager", "lazy", "stacked"])
def test_btag_shape_sf_follows_the_jes_variation(real, mode):
    """Regression (issue 16.5): on JES-varied jets the central SF was used; CMS correlates the
    b-tag shape with JES through the payload's up_jes/down_jes<Source> (b and light jets)."""
    import dask_awkward as dak

    from brewflow.analysis import JESVariation, PerBlock

    correction = load(real["base"] / "btagging.json.gz", "deepJet_shape")
    direct = _direct(real, "btagging.json.gz", "deepJet_shape")
    jets = _jets(real[False])
    variations = [JESVariation("up", "FlavorQCD"), None, JESVariation("down")]

    def expected(variation):
        def sf(j):
            name = "central"
            if variation is not None and j["hadronFlavour"] != 4:
                name = variation.btag_systematic
            args = (j["hadronFlavour"], abs(j["eta"]), j["pt"], j["btagDeepFlavB"])
            return direct.evaluate(name, *args)

        return _per_event_product(jets, sf)

    assert JESVariation("up", "FlavorQCD").btag_systematic == "up_jesFlavorQCD"
    if mode == "stacked":  # the events of each variation one block after the other
        lazy = _jets(real[True])
        stacked = chain([lazy] * len(variations))
        codes = chain([dak.num(lazy, axis=1) * 0 + i for i in range(len(variations))])
        jes = PerBlock(codes, tuple(variations))
        got = ak.to_numpy(btag_shape_weights(correction, stacked, jes=jes)["nominal"].compute())
        want = np.concatenate([expected(v) for v in variations])
        np.testing.assert_allclose(got, want, rtol=1e-12)
        return
    for variation in variations:
        source = _jets(real[mode == "lazy"])
        got = btag_shape_weights(correction, source, jes=variation)["nominal"]
        got = ak.to_numpy(got.compute() if mode == "lazy" else got)
        np.testing.assert_allclose(got, expected(variation), rtol=1e-12)
    assert not np.allclose(expected(variations[0]), expected(None))


@pytest.mark.parametrize("lazy", [False, True])
def test_btag_shape_weights_follow_the_flavour_prescription(real, lazy):
    correction = load(real["base"] / "btagging.json.gz", "deepJet_shape")
    direct = _direct(real, "btagging.json.gz", "deepJet_shape")
    weights = btag_shape_weights(correction, _jets(real[lazy]), SHAPE_SYSTEMATICS)
    jets = _jets(real[False])
    flavours = set(ak.to_list(ak.flatten(jets.hadronFlavour)))
    assert {0, 4} <= flavours  # c-only and light/b branches of the prescription both exercised

    def sf(jet, systematic):
        args = (jet["hadronFlavour"], abs(jet["eta"]), jet["pt"], jet["btagDeepFlavB"])
        return direct.evaluate(systematic, *args)

    expected = {"nominal": _per_event_product(jets, lambda j: sf(j, "central"))}
    for name in SHAPE_SYSTEMATICS:
        for direction in ("up", "down"):
            applies = (
                (lambda j: j["hadronFlavour"] == 4)
                if name.startswith("cferr")
                else (lambda j: j["hadronFlavour"] != 4)
            )
            expected[f"{name}{direction.title()}"] = _per_event_product(
                jets,
                lambda j, s=f"{direction}_{name}", a=applies: sf(j, s if a(j) else "central"),
            )
    assert set(weights) == set(expected)
    for key, values in expected.items():
        got = weights[key].compute() if lazy else weights[key]
        np.testing.assert_allclose(ak.to_numpy(got), values, rtol=1e-12, err_msg=key)
    assert not np.allclose(expected["cferr1Up"], expected["nominal"])
    assert not np.allclose(expected["hfUp"], expected["nominal"])


@pytest.mark.parametrize("lazy", [False, True])
def test_btag_fixed_wp_weights_method_1a(real, lazy):
    correction = load(real["base"] / "btagging.json.gz", "deepJet_wp")
    direct = _direct(real, "btagging.json.gz", "deepJet_wp")
    jets = _jets(real[lazy])
    tagged = jets.btagDeepFlavB > 0.2783
    efficiency = ak.where(
        jets.hadronFlavour == 5, 0.7, ak.where(jets.hadronFlavour == 4, 0.2, 0.02)
    )
    weights = btag_wp_weights(correction, jets, tagged, efficiency, "M")
    method = {5: "comb", 4: "comb", 0: "incl"}
    eff = {5: 0.7, 4: 0.2, 0: 0.02}

    def factor(jet, systematic):
        flav = jet["hadronFlavour"]
        sf = direct.evaluate(systematic, method[flav], "M", flav, abs(jet["eta"]), jet["pt"])
        if jet["btagDeepFlavB"] > 0.2783:
            return sf
        return (1 - sf * eff[flav]) / (1 - eff[flav])

    for key, systematic in (("nominal", "central"), ("up", "up"), ("down", "down")):
        got = weights[key].compute() if lazy else weights[key]
        expected = _per_event_product(_jets(real[False]), lambda j, s=systematic: factor(j, s))
        np.testing.assert_allclose(ak.to_numpy(got), expected, rtol=1e-12)
        assert any(x != 1.0 for x in expected)


@pytest.mark.parametrize(
    ("payload", "name", "call", "message"),
    [
        ("muon_Z.json.gz", MUON[1], lambda c, ev: muon_sf_weights(c, ev.Muon, "2017_UL"),
         "year = '2017_UL' is not in the payload .*accepted: 2018_UL"),
        ("electron.json.gz", "UL-Electron-ID-SF",
         lambda c, ev: electron_sf_weights(c, ev.Electron, "2018", "Tigth"),
         "WorkingPoint = 'Tigth' .*accepted: Loose, Medium, .*Tight"),
        ("btagging.json.gz", "deepJet_shape",
         lambda c, ev: btag_shape_weights(c, ev.Jet, ["hff"]),
         "systematic = 'up_hff' .*accepted: central, .*up_hf,"),
    ],
)  # fmt: skip
def test_wrong_year_working_point_or_systematic_lists_what_the_payload_has(
    real, payload, name, call, message
):
    correction = load(real["base"] / payload, name)
    with pytest.raises(CorrectionError, match=message):
        call(correction, real[True])  # fails while the graph is built, before any data is read


def test_a_loaded_correction_is_tokenized_by_its_payload_not_pickled(real, monkeypatch):
    """dask names a lazy operation by tokenizing its arguments; a correctionlib object pickled
    for that re-parsed its whole payload (~4 s a b-tag payload, twice a graph: half of an
    analyze job on real NanoAOD, issue 30). A loaded correction's token is its payload file and
    name: distinct per correction, the same for the same one, and never a pickle."""
    import dask.base

    def refuse(self):
        raise AssertionError("a correction was pickled to be tokenized")

    monkeypatch.setattr(correctionlib.highlevel.Correction, "__getstate__", refuse)
    btag = real["base"] / "btagging.json.gz"
    shape, wp = load(btag, "deepJet_shape"), load(btag, "deepJet_wp")
    assert dask.base.tokenize(shape) == dask.base.tokenize(load(btag, "deepJet_shape"))
    assert len({dask.base.tokenize(c) for c in (shape, wp, real["pu"], real["muon"])}) == 4
    weights = btag_shape_weights(shape, _jets(real[True]), ["hf"])  # tokenizes it
    assert set(weights) == {"nominal", "hfUp", "hfDown"}
