"""Rochester corrections (brewflow.rochester) with the real RoccoR2018UL file (tests/data/payloads)
on real 2018 data (SingleMuon) and Drell-Yan MC, against RoccoR's functions written out muon by
muon in plain Python from the file's lines (its bin loops, its 3.14159), the uniform numbers of
an independent SplitMix64; lazy and eager."""

from __future__ import annotations

import gzip
import math

import awkward as ak
import numpy as np
import pytest
import uproot

from brewflow.corrections import CorrectionError
from brewflow.muonscale import crystal_ball_quantile
from brewflow.nanoevents.reader import eager_events, lazy_events
from brewflow.rochester import RochesterCorrector
from tests import jet_reference
from tests.helpers import ROOT, computed

FILE = str(ROOT / "tests" / "data" / "payloads" / "MUO" / "2018_UL" / "RoccoR2018UL.txt.gz")


class Reference:
    """RoccoR's numbers for set s, member m, from the file's lines, one value at a time."""

    def __init__(self, path: str) -> None:
        self.lines: dict[tuple, list[float]] = {}
        with gzip.open(path, "rt") as handle:
            for line in handle:
                w = line.split()
                if not w:
                    continue
                if w[0] == "NMEM":
                    self.nmem = [int(x) for x in w[1:]]
                elif w[0] == "CETA":
                    self.etabin = [float(x) for x in w[2:]]
                elif w[0] == "CPHI":
                    self.nphi = int(w[1])
                elif w[0] == "RETA":
                    self.beta = [float(x) for x in w[2:]]
                elif w[0] == "RMIN":
                    self.nmin = int(w[1])
                elif len(w) < 3 or w[2] not in ("C", "R", "F"):
                    continue
                else:
                    s, m, tag = int(w[0]), int(w[1]), w[2]
                    head = {"C": 3, "R": 2, "F": 1}[tag]
                    key = (s, m, tag, *(int(x) for x in w[3 : 3 + head]))
                    self.lines[key] = [float(x) for x in w[3 + head :]]

    def eta_bin(self, eta: float) -> int:
        for i in range(len(self.etabin) - 2):
            if eta < self.etabin[i + 1]:
                return i
        return len(self.etabin) - 2

    def res_bin(self, eta: float) -> int:
        for i in range(len(self.beta) - 2):
            if abs(eta) < self.beta[i + 1]:
                return i
        return len(self.beta) - 2

    def phi_bin(self, phi: float) -> int:
        b = int((phi + 3.14159) / (2 * 3.14159 / self.nphi))
        return min(max(b, 0), self.nphi - 1)

    def k(self, s, m, kind, q, pt, eta, phi) -> float:
        h, f = self.eta_bin(eta), self.phi_bin(phi)
        big_m = 1 + self.lines[(s, m, "C", kind, 0, h)][f] / 100
        big_a = self.lines[(s, m, "C", kind, 1, h)][f] / 100
        return 1 / (big_m + q * big_a * pt)

    def correction(self, s, m, is_data, q, pt, eta, phi, gen_pt, layers, u) -> float:
        if is_data:
            return self.k(s, m, 1, q, pt, eta, phi)
        k = self.k(s, m, 0, q, pt, eta, phi)
        h = self.res_bin(eta)
        k_mc, k_data = (self.lines[(s, m, "F", t)][h] for t in (0, 1))
        if gen_pt is not None:
            x = gen_pt / (k * pt)
            return k * x / (1 + (x - 1) * k_data / k_mc)
        f = layers - self.nmin if layers > self.nmin else 0
        r = [self.lines[(s, m, "R", v, h)][f] for v in range(6)]
        dpt = k * pt - 45
        sigma = r[0] + r[1] * dpt + r[2] / 100 * dpt * dpt
        c = float(crystal_ball_quantile(np.array([u]), 0.0, r[3], r[5], r[4])[0])
        x = math.sqrt(k_data**2 - k_mc**2) * sigma * c if k_data > k_mc else 0.0
        return k * (1.0 if x <= -1 else 1 / (1 + x))


@pytest.fixture(scope="module")
def reference() -> Reference:
    return Reference(FILE)


def _muons(path: str) -> list[list[dict]]:
    fields = ("pt", "eta", "phi", "charge", "nTrackerLayers", "genPartIdx")
    with uproot.open(path) as f:
        tree = f["Events"]
        names = [f"Muon_{x}" for x in fields if f"Muon_{x}" in tree]
        gen = ["GenPart_pt"] if "GenPart_pt" in tree else []
        a = tree.arrays([*names, "run", "luminosityBlock", "event", *gen], library="np")
    out = []
    for i in range(len(a["run"])):
        event = []
        for j in range(len(a["Muon_pt"][i])):
            mu = {x: a[f"Muon_{x}"][i][j].item() for x in fields if f"Muon_{x}" in a}
            g = mu.get("genPartIdx", -1)
            mu["gen_pt"] = float(a["GenPart_pt"][i][g]) if 0 <= g < len(
                a.get("GenPart_pt", [[]] * (i + 1))[i]) else None  # fmt: skip
            mu["u"] = jet_reference.uniform(int(a["run"][i]), int(a["luminosityBlock"][i]),
                                            int(a["event"][i]), j, 0x4D)  # fmt: skip
            event.append(mu)
        out.append(event)
    return out


def _pts(muons) -> list[float]:
    return ak.to_list(ak.flatten(computed(muons).pt))


@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize(("sample", "is_data"), [("nano_dimuon.root", True),
                                                 ("nano_dy.root", False)])  # fmt: skip
def test_nominal_muon_by_muon_as_roccor(shared_data, reference, sample, is_data, lazy):
    path = str(shared_data / "nanoaod" / sample)
    events = lazy_events([path], step_size=15) if lazy else eager_events(path)
    found = _pts(RochesterCorrector(is_data, FILE).muons(events))
    expected = [mu["pt"] * reference.correction(0, 0, is_data, mu["charge"], mu["pt"], mu["eta"],
                                                mu["phi"], mu["gen_pt"], mu["nTrackerLayers"],
                                                mu["u"])
                for event in _muons(path) for mu in event]  # fmt: skip
    np.testing.assert_allclose(found, expected, rtol=1e-9)
    if not is_data:  # both MC branches: spread (generator muon) and smear (none)
        kinds = [mu["gen_pt"] is None for event in _muons(path) for mu in event]
        assert 0 < sum(kinds) < len(kinds)


def test_the_uncertainty_over_every_set_and_member(shared_data, reference):
    """muon_scale Up/Down: k +- sqrt(sum_s sum_m (k(s, m) - k(0, 0))^2 / nmem(s)), MC."""
    path = str(shared_data / "nanoaod" / "nano_dy.root")
    corrector = RochesterCorrector(False, FILE)
    up = _pts(corrector.muons(eager_events(path), ("muon_scale", "", "Up")))
    down = _pts(corrector.muons(eager_events(path), ("muon_scale", "", "Down")))
    muons = [mu for event in _muons(path) for mu in event]
    for mu, u, d in zip(muons[:6], up, down, strict=False):
        args = (mu["charge"], mu["pt"], mu["eta"], mu["phi"], mu["gen_pt"], mu["nTrackerLayers"],
                mu["u"])  # fmt: skip
        nominal = reference.correction(0, 0, False, *args)
        error = math.sqrt(sum((reference.correction(s, m, False, *args) - nominal) ** 2 / n
                              for s, n in enumerate(reference.nmem) for m in range(n)
                              if s or m))  # fmt: skip
        assert u == pytest.approx(mu["pt"] * (nominal + error), rel=1e-9)
        assert d == pytest.approx(mu["pt"] * (nominal - error), rel=1e-9)
        assert error > 0
    with pytest.raises(CorrectionError, match="one uncertainty"):
        corrector.muons(eager_events(path), ("muon_resolution", "", "Up"))


def test_a_truncated_file_is_refused(tmp_path):
    """Regression (review): a file cut after 300 lines was read, its missing members left at
    defaults (data numbers changed silently, every MC muon NaN)."""
    from brewflow.rochester import read_rochester

    with gzip.open(FILE, "rt") as handle:
        lines = handle.readlines()
    cut = tmp_path / "RoccoR_cut.txt"
    cut.write_text("".join(lines[:300]))
    with pytest.raises(CorrectionError, match=r"is incomplete: set \d+ member \d+ has no"):
        read_rochester(cut)
