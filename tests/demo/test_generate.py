from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot
import yaml

from brewflow.demo.generate import MODELS, generate_data, generate_mc
from brewflow.lumimask import LumiMask
from tests.helpers import DEMO_CONFIG, SMALL_EVENTS, SMALL_LUMI

NANOAOD_BRANCHES = {
    "run": "uint32",
    "luminosityBlock": "uint32",
    "event": "uint64",
    "nMuon": "int32",
    "Muon_pt": "float32",
    "Muon_eta": "float32",
    "Muon_phi": "float32",
    "Muon_mass": "float32",
    "Muon_charge": "int32",
    "Muon_tightId": "bool",
    "Muon_pfRelIso04_all": "float32",
    "nElectron": "int32",
    "Electron_pt": "float32",
    "Electron_cutBased": "int32",
    "Electron_pfRelIso03_all": "float32",
    "nJet": "int32",
    "Jet_pt": "float32",
    "Jet_btagDeepFlavB": "float32",
    "Jet_hadronFlavour": "int32",
    "Jet_jetId": "int32",
    "MET_pt": "float32",
    "MET_phi": "float32",
    "genWeight": "float32",
    "Pileup_nTrueInt": "float32",
    "HLT_IsoMu24": "bool",
    "PSWeight": "float32",
}


def _dtype(branch) -> str:
    interpretation = branch.interpretation
    inner = getattr(interpretation, "content", interpretation)
    return str(inner.to_dtype.newbyteorder("=")) if hasattr(inner, "to_dtype") else ""


def test_mc_files_have_nanoaod_branches_and_types(demo_set):
    path = demo_set["config"]["datasets"]["ttbar"]["files"][0]
    tree = uproot.open(path)["Events"]
    for name, dtype in NANOAOD_BRANCHES.items():
        assert name in tree, name
        assert _dtype(tree[name]) == dtype, name


def test_data_has_no_generator_branches(demo_set):
    tree = uproot.open(demo_set["config"]["datasets"]["data"]["files"][0])["Events"]
    for name in ("genWeight", "Pileup_nTrueInt", "PSWeight", "Jet_hadronFlavour"):
        assert name not in tree
    assert set(tree["run"].array(library="np")) <= {315257, 315259, 315264, 315265, 315267, 315270}


def test_generation_is_deterministic(tmp_path):
    a, b = tmp_path / "a" / "dy.root", tmp_path / "b" / "dy.root"
    generate_mc("dy", [a], 500, seed=3)
    generate_mc("dy", [b], 500, seed=3)
    ta, tb = uproot.open(a)["Events"], uproot.open(b)["Events"]
    for key in ("Muon_pt", "Jet_pt", "genWeight", "MET_pt", "PSWeight"):
        assert ta[key].array().tolist() == tb[key].array().tolist()
    assert uproot.open(a).file.uuid == uproot.open(b).file.uuid


def test_events_split_over_files_and_event_numbers_unique(tmp_path):
    paths = [tmp_path / f"f{i}.root" for i in range(3)]
    generate_mc("ww", paths, 1000, seed=1)
    counts = [uproot.open(p)["Events"].num_entries for p in paths]
    assert counts == [334, 333, 333]
    numbers = np.concatenate([uproot.open(p)["Events"]["event"].array(library="np") for p in paths])
    assert len(np.unique(numbers)) == 1000


def test_signed_generator_weights(demo_set):
    for name, fraction in (("dy", MODELS["dy"].negative_fraction),):
        weights = np.concatenate(
            [
                uproot.open(f)["Events"]["genWeight"].array(library="np")
                for f in demo_set["config"]["datasets"][name]["files"]
            ]
        )
        assert len(weights) == SMALL_EVENTS
        negative = np.mean(weights < 0)
        sigma = np.sqrt(fraction * (1 - fraction) / len(weights))
        assert abs(negative - fraction) < 5 * sigma
        assert len(np.unique(np.abs(weights))) > len(weights) // 2  # magnitudes vary too


def test_drell_yan_has_a_z_peak(demo_set):
    path = demo_set["config"]["datasets"]["dy"]["files"][0]
    a = uproot.open(path)["Events"].arrays(["Muon_pt", "Muon_eta", "Muon_phi"], library="np")
    masses = []
    for pt, eta, phi in zip(a["Muon_pt"], a["Muon_eta"], a["Muon_phi"], strict=True):
        if len(pt) >= 2 and pt[1] > 20:
            # m^2 = 2 pt1 pt2 (cosh(deta) - cos(dphi)) for massless leptons
            m2 = 2 * pt[0] * pt[1] * (np.cosh(eta[0] - eta[1]) - np.cos(phi[0] - phi[1]))
            masses.append(np.sqrt(m2))
    masses = np.asarray(masses)
    in_peak = masses[(masses > 70) & (masses < 110)]
    assert len(in_peak) > 0.6 * len(masses)
    assert abs(np.median(in_peak) - 91.19) < 1.0


def test_certified_data_yield_is_poisson_of_the_mc_sum(demo_set):
    """The golden JSON leaves out every tenth lumi block; the certified events match L."""
    spec = demo_set["config"]["datasets"]["data"]
    mask = LumiMask(spec["lumi_mask"])
    certified = total = 0
    for f in spec["files"]:
        a = uproot.open(f)["Events"].arrays(["run", "luminosityBlock"], library="np")
        good = mask(a["run"], a["luminosityBlock"])
        assert set(a["luminosityBlock"][~good] % 10) == {0}
        assert set(a["luminosityBlock"][good] % 10) == set(range(1, 10))
        certified, total = certified + int(good.sum()), total + len(good)
    expected = SMALL_LUMI * sum(m.xsec for m in MODELS.values())
    assert abs(certified - expected) < 5 * np.sqrt(expected)
    assert 0.85 < certified / total < 0.95


def test_data_poisson_mean_scales_with_luminosity(tmp_path):
    n = generate_data([tmp_path / "d.root"], 2.0, seed=11)
    expected = 2.0 * sum(m.xsec for m in MODELS.values())
    assert abs(n - expected) < 5 * np.sqrt(expected)


def test_demo_config_cross_sections_are_the_generator_truth():
    from brewflow.demo.events import model

    config = yaml.safe_load(DEMO_CONFIG.read_text())
    generated = {n: d for n, d in config["datasets"].items() if d["generator"] != "data"}
    assert len(generated) == 14
    for name, spec in generated.items():
        assert spec["xsec"] == model(spec["generator"]).xsec, name


def test_demo_payload_is_byte_reproducible_and_matches_the_generator(tmp_path):
    import correctionlib

    from brewflow.demo.payloads import demo_muon_sf, write_demo_corrections

    write_demo_corrections(tmp_path / "a" / "c.json.gz")
    write_demo_corrections(tmp_path / "b.json.gz")
    assert (tmp_path / "a" / "c.json.gz").read_bytes() == (tmp_path / "b.json.gz").read_bytes()
    muon = correctionlib.CorrectionSet.from_file(str(tmp_path / "b.json.gz"))["demo_muon_id"]
    abseta, pt = np.array([0.3, 1.0, 1.5, 2.2, 0.5]), np.array([17.0, 22.0, 35.0, 80.0, 500.0])
    np.testing.assert_allclose(muon.evaluate("2018_UL", abseta, pt, "sf"), demo_muon_sf(abseta, pt))
    np.testing.assert_allclose(
        muon.evaluate("2018_UL", abseta, pt, "systup"), demo_muon_sf(abseta, pt) + 0.005
    )


def _masses(truth) -> np.ndarray:
    import vector

    lead, other = (truth.leptons[:, i] for i in (0, 1))
    pair = vector.zip({k: lead[k] for k in ("pt", "eta", "phi", "mass")}) + vector.zip(
        {k: other[k] for k in ("pt", "eta", "phi", "mass")}
    )
    return ak.to_numpy(pair.mass)


def test_mass_binned_drell_yan_samples_stitch_to_the_inclusive_one():
    """dy_m50to100 + dy_m100to200 are the inclusive Drell-Yan split at 100 GeV: their cross
    sections the inclusive one times the fraction of its events counted in each range, their
    mass spectra the inclusive one's there (no event counted twice, none lost)."""
    from scipy import stats

    from brewflow.demo.events import _dy, model

    inclusive = _masses(_dy(np.random.default_rng(11), 200_000))
    edges = [100, 103, 106, 110, 120, 140, 170, 200]
    total = sum(model(n).xsec for n in ("dy_m50to100", "dy_m100to200"))
    assert total == pytest.approx(MODELS["dy"].xsec, rel=1e-4)
    for name, low, high in (("dy_m50to100", 50, 100), ("dy_m100to200", 100, 200)):
        inside = (inclusive >= low) & (inclusive < high)
        counted, error = inside.mean(), np.sqrt(inside.mean() * (1 - inside.mean()) / inside.size)
        assert model(name).xsec / MODELS["dy"].xsec == pytest.approx(counted, abs=4 * error)
        binned = _masses(model(name).sample(np.random.default_rng(12), 40_000))
        assert binned.min() >= low
        assert binned.max() < high
        if low == 100:
            a = np.histogram(inclusive[inside], edges)[0]
            b = np.histogram(binned, edges)[0]
            table = np.array([a, b])
            assert stats.chi2_contingency(table).pvalue > 1e-3
