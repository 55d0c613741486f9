"""Corrections against correctionlib called directly on the same (flattened) values."""

from __future__ import annotations

import awkward as ak
import correctionlib
import numpy as np
import pytest

from brewflow.corrections import CorrectionError, load, muon_sf_weights, pileup_weights
from brewflow.nanoevents import eager_events, lazy_events

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
