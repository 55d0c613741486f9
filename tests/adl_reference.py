"""ADL queries Q1-Q8 as explicit per-event Python loops (float64), independent of brewflow."""

from __future__ import annotations

import itertools
import math

import numpy as np
import uproot

from brewflow.adl import BINNING

BRANCHES = ["MET_pt", "MET_phi", "Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass", "Jet_btagDeepFlavB"]
for _c in ("Muon", "Electron"):
    BRANCHES += [f"{_c}_{f}" for f in ("pt", "eta", "phi", "mass", "charge")]


def _p4(pt, eta, phi, mass):
    pt, eta, phi, mass = float(pt), float(eta), float(phi), float(mass)
    px, py, pz = pt * math.cos(phi), pt * math.sin(phi), pt * math.sinh(eta)
    return [px, py, pz, math.sqrt(px * px + py * py + pz * pz + mass * mass)]


def _mass(*vectors):
    s = [sum(v[i] for v in vectors) for i in range(4)]
    return math.sqrt(max(s[3] ** 2 - s[0] ** 2 - s[1] ** 2 - s[2] ** 2, 0.0))


def _pt(*vectors):
    return math.hypot(sum(v[0] for v in vectors), sum(v[1] for v in vectors))


def _delta_r(eta1, phi1, eta2, phi2):
    dphi = (float(phi1) - float(phi2) + math.pi) % (2 * math.pi) - math.pi
    return math.hypot(float(eta1) - float(eta2), dphi)


def values(paths: list[str]) -> dict[str, list[float]]:
    """Every query's filled values, event by event."""
    out: dict[str, list[float]] = {name: [] for name in BINNING}
    for path in paths:
        a = uproot.open(path)["Events"].arrays(BRANCHES, library="np")
        for i in range(len(a["MET_pt"])):
            _event(a, i, out)
    return out


def _event(a, i, out):
    met, met_phi = float(a["MET_pt"][i]), float(a["MET_phi"][i])
    jets = [
        (float(a["Jet_pt"][i][k]), float(a["Jet_eta"][i][k]), float(a["Jet_phi"][i][k]),
         float(a["Jet_mass"][i][k]), float(a["Jet_btagDeepFlavB"][i][k]))
        for k in range(len(a["Jet_pt"][i]))
    ]  # fmt: skip
    out["q1"].append(met)
    out["q2"] += [j[0] for j in jets]
    out["q3"] += [j[0] for j in jets if abs(j[1]) < 1]
    if sum(1 for j in jets if j[0] > 40) >= 2:
        out["q4"].append(met)
    muons = [
        (_p4(a["Muon_pt"][i][k], a["Muon_eta"][i][k], a["Muon_phi"][i][k], a["Muon_mass"][i][k]),
         int(a["Muon_charge"][i][k]))
        for k in range(len(a["Muon_pt"][i]))
    ]  # fmt: skip
    if any(
        m1[1] != m2[1] and 60 < _mass(m1[0], m2[0]) < 120
        for m1, m2 in itertools.combinations(muons, 2)
    ):
        out["q5"].append(met)
    if len(jets) >= 3:
        best, best_distance = None, math.inf
        for trio in itertools.combinations(jets, 3):
            distance = abs(_mass(*[_p4(*j[:4]) for j in trio]) - 172.5)
            if distance < best_distance:  # first minimum wins, like argmin
                best, best_distance = trio, distance
        out["q6_pt"].append(_pt(*[_p4(*j[:4]) for j in best]))
        out["q6_btag"].append(max(j[4] for j in best))
    leptons = []
    for collection, flavour in (("Electron", 11), ("Muon", 13)):
        for k in range(len(a[f"{collection}_pt"][i])):
            values_ = [a[f"{collection}_{f}"][i][k] for f in ("pt", "eta", "phi", "mass")]
            leptons.append({
                "pt": float(values_[0]), "eta": float(values_[1]), "phi": float(values_[2]),
                "p4": _p4(*values_), "charge": int(a[f"{collection}_charge"][i][k]),
                "flavour": flavour,
            })  # fmt: skip
    light = [lep for lep in leptons if lep["pt"] > 10]
    out["q7"].append(
        sum(
            j[0] for j in jets
            if j[0] > 30 and all(_delta_r(j[1], j[2], x["eta"], x["phi"]) >= 0.4 for x in light)
        )
    )  # fmt: skip
    if len(leptons) >= 3:
        best, best_distance = None, math.inf
        for x, y in itertools.combinations(range(len(leptons)), 2):
            l1, l2 = leptons[x], leptons[y]
            if l1["flavour"] == l2["flavour"] and l1["charge"] != l2["charge"]:
                distance = abs(_mass(l1["p4"], l2["p4"]) - 91.2)
                if distance < best_distance:
                    best, best_distance = (x, y), distance
        if best is not None:
            others = [lep for k, lep in enumerate(leptons) if k not in best]
            lead = others[int(np.argmax([lep["pt"] for lep in others]))]
            dphi = lead["phi"] - met_phi
            out["q8"].append(math.sqrt(2 * lead["pt"] * met * (1 - math.cos(dphi))))


def histograms(paths: list[str]) -> dict[str, list[int]]:
    """Counts per bin with underflow first and overflow last, like ``values(flow=True)``."""
    filled = values(paths)
    out = {}
    for name, (bins, lo, hi) in BINNING.items():
        counts = [0] * (bins + 2)
        for x in filled[name]:
            if x < lo:
                counts[0] += 1
            elif x >= hi:
                counts[-1] += 1
            else:
                counts[1 + min(math.floor((x - lo) / (hi - lo) * bins), bins - 1)] += 1
        out[name] = counts
    return out
