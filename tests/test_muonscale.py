"""Muon momentum scale and resolution (brewflow.muonscale) on the real Run 3 ttbar with the
MUO scale-and-resolution payload (tests/data/payloads; schema V2, which lacks the scale's
``rho_stat``: a copy written here adds it), against the recipe written out muon by muon with
correctionlib called per muon and the uniform numbers of an independent pure-Python SplitMix64;
the Crystal Ball quantile against the numerically integrated density."""

from __future__ import annotations

import gzip
import json
import math

import awkward as ak
import correctionlib
import numpy as np
import pytest
import uproot
from scipy import integrate

from brewflow.corrections import CorrectionError
from brewflow.muonscale import MuonCorrector, crystal_ball_quantile
from brewflow.nanoevents.reader import eager_events, lazy_events
from tests import jet_reference
from tests.helpers import ROOT, computed

PAYLOAD = ROOT / "tests" / "data" / "payloads" / "MUO" / "2022_Summer22"
PAYLOAD = PAYLOAD / "muon_scalesmearing_schemaV2.json.gz"
RHO = 0.3  # the rho_stat the written copy adds


@pytest.fixture
def ttbar(shared_data) -> str:
    return str(shared_data / "nanoaod" / "nano_tt_v12.root")


@pytest.fixture
def with_rho(tmp_path) -> str:
    """The payload with m_mc's categories given a 'rho_stat' (the POG's newer layout)."""
    with gzip.open(PAYLOAD, "rt") as handle:
        document = json.load(handle)

    def add(node):
        if isinstance(node, dict):
            if node.get("nodetype") == "category" and node.get("input") == "variation":
                node["content"].append({"key": "rho_stat", "value": RHO})
            for value in node.values():
                add(value)
        elif isinstance(node, list):
            for value in node:
                add(value)

    for correction in document["corrections"]:
        if correction["name"] == "m_mc":
            add(correction["data"])
    path = tmp_path / "muon_scalesmearing.json"
    path.write_text(json.dumps(document))
    return str(path)


def test_the_crystal_ball_quantile_inverts_the_integrated_density():
    mean, sigma, n, alpha = 0.1, 1.3, 2.5, 1.2
    a = abs(alpha)
    big_a, big_b = (n / a) ** n * math.exp(-a * a / 2), n / a - a

    def density(x: float) -> float:
        t = (x - mean) / sigma
        return math.exp(-t * t / 2) if abs(t) <= a else big_a * (big_b + abs(t)) ** -n

    total = integrate.quad(density, -np.inf, np.inf, limit=200)[0]
    for u in (0.001, 0.02, 0.2, 0.5, 0.7, 0.97, 0.9995):
        x = float(crystal_ball_quantile(np.array([u]), mean, sigma, n, alpha)[0])
        assert integrate.quad(density, -np.inf, x, limit=200)[0] / total == pytest.approx(
            u, rel=1e-6
        )


def _valid(reference: float, corrected: float, before: float) -> bool:
    """MuonScaRe's guards: the reference pT in 26-200 GeV, the correction a number changing
    the pT by less than x 2 and more than x 0.1."""
    return (26 <= reference <= 200 and not math.isnan(corrected)
            and 0.1 < corrected / before < 2)  # fmt: skip


def _loop(path: str, payload: str, *, is_data: bool, variation=None) -> list[list[float]]:
    c = correctionlib.CorrectionSet.from_file(payload)
    fields = ("pt", "eta", "phi", "charge", "nTrackerLayers")
    with uproot.open(path) as f:
        a = f["Events"].arrays(["run", "luminosityBlock", "event",
                                *(f"Muon_{x}" for x in fields)], library="np")  # fmt: skip
    kind, _, direction = variation or ("", "", "")
    sign = 1 if direction == "Up" else -1
    out = []
    for i in range(len(a["run"])):
        pts = []
        for j in range(len(a["Muon_pt"][i])):
            pt, eta, phi = (float(a[f"Muon_{x}"][i][j]) for x in ("pt", "eta", "phi"))
            q, layers = int(a["Muon_charge"][i][j]), float(a["Muon_nTrackerLayers"][i][j])
            tag = "data" if is_data else "mc"
            scaled = 1 / (c[f"m_{tag}"].evaluate(eta, phi, "nom") / pt
                          + q * c[f"a_{tag}"].evaluate(eta, phi, "nom"))  # fmt: skip
            scaled = scaled if _valid(pt, scaled, pt) else pt
            value = scaled
            if not is_data:
                width = max(0.0, sum(c["poly_params"].evaluate(abs(eta), layers, k) * scaled**k
                                     for k in range(3)))  # fmt: skip
                k_data = c["k_data"].evaluate(abs(eta), "nom")
                k_mc = c["k_mc"].evaluate(abs(eta), "nom")
                k = math.sqrt(k_data**2 - k_mc**2) if k_mc < k_data else 0.0
                mean, sigma, n, alpha = (c["cb_params"].evaluate(abs(eta), layers, p)
                                         for p in range(4))  # fmt: skip
                u = jet_reference.uniform(int(a["run"][i]), int(a["luminosityBlock"][i]),
                                          int(a["event"][i]), j, 0x3C)  # fmt: skip
                draw = float(crystal_ball_quantile(np.array([u]), mean, sigma, n, alpha)[0])
                smear = k * width * draw
                if kind == "muon_resolution" and k_mc > 0:
                    smear *= 1 + sign * c["k_mc"].evaluate(abs(eta), "stat") / k_mc
                smeared = scaled * (1 + smear)
                value = smeared if _valid(scaled, smeared, scaled) else scaled
                if kind == "muon_scale":  # every muon
                    dm, da = (c[x].evaluate(eta, phi, "stat") for x in ("m_mc", "a_mc"))
                    value += (
                        sign
                        * value**2
                        * math.sqrt(dm**2 / value**2 + da**2 + 2 * q * RHO * dm * da / value)
                    )
            pts.append(value)
        out.append(pts)
    return out


def _pts(muons) -> list[float]:
    return ak.to_list(ak.flatten(computed(muons).pt))


@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize(
    ("is_data", "variation"),
    [(True, None), (False, None), (False, ("muon_resolution", "", "Up")),
     (False, ("muon_resolution", "", "Down")), (False, ("muon_scale", "", "Up")),
     (False, ("muon_scale", "", "Down"))],
    ids=["data", "mc", "resolutionUp", "resolutionDown", "scaleUp", "scaleDown"],
)  # fmt: skip
def test_muon_by_muon_as_the_recipe(ttbar, with_rho, is_data, variation, lazy):
    corrector = MuonCorrector.from_config({"file": with_rho}, is_data=is_data)
    events = lazy_events([ttbar], step_size=70) if lazy else eager_events(ttbar)
    found = _pts(corrector.muons(events, variation))
    expected = [p for e in _loop(ttbar, with_rho, is_data=is_data, variation=variation) for p in e]
    np.testing.assert_allclose(found, expected, rtol=1e-9)
    raw = ak.to_list(ak.flatten(eager_events(ttbar).Muon.pt))
    assert sum(abs(f - r) > 1e-4 * r for f, r in zip(found, raw, strict=True)) > 30


def test_the_scale_variation_needs_rho_stat(ttbar):
    corrector = MuonCorrector.from_config({"file": str(PAYLOAD)}, is_data=False)
    with pytest.raises(CorrectionError, match="needs m_mc's 'rho_stat' values"):
        corrector.muons(eager_events(ttbar), ("muon_scale", "", "Up"))


def test_edges_of_the_recipe(with_rho):
    """Regressions (review), synthetic muons: in a bin whose Crystal Ball is empty the scaled pT
    stays (not the raw one); just below 200 GeV a muon scaled above it is not smeared (the range
    is the scaled pT's); the scale variation moves every muon."""
    events = ak.Array([{"run": 1, "luminosityBlock": 1, "event": 7, "Muon": [
        {"pt": 50.0, "eta": 2.08, "phi": 0.3, "charge": 1, "nTrackerLayers": 5, "mass": 0.1},
        {"pt": 199.9, "eta": 0.2, "phi": 0.3, "charge": 1, "nTrackerLayers": 12, "mass": 0.1},
        {"pt": 20.0, "eta": 0.5, "phi": 0.3, "charge": -1, "nTrackerLayers": 12, "mass": 0.1},
    ]}])  # fmt: skip
    c = correctionlib.CorrectionSet.from_file(with_rho)
    scaled = [1 / (c["m_mc"].evaluate(m["eta"], m["phi"], "nom") / m["pt"]
                   + m["charge"] * c["a_mc"].evaluate(m["eta"], m["phi"], "nom"))
              for m in events.Muon[0].tolist()]  # fmt: skip
    corrector = MuonCorrector.from_config({"file": with_rho}, is_data=False)
    found = ak.to_list(corrector.muons(events).pt[0])
    assert found[0] == pytest.approx(scaled[0], rel=1e-12)  # the empty bin: scaled, not smeared
    assert scaled[1] > 200
    assert found[1] == pytest.approx(scaled[1], rel=1e-12)  # scaled above 200: not smeared
    assert found[2] == 20.0  # below 26 GeV: untouched
    up = ak.to_list(corrector.muons(events, ("muon_scale", "", "Up")).pt[0])
    assert up[2] > 20.0  # the variation moves it too
