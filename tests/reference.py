"""An independent, explicit per-event implementation of the demo analysis, for tests.

Plain Python loops over arrays read with uproot (library="np"); no awkward, vector, hist or
brewflow code. Slow, so only for small inputs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import correctionlib
import numpy as np
import uproot

from tests import jet_reference

BRANCHES = [
    "Muon_pt",
    "Muon_eta",
    "Muon_phi",
    "Muon_mass",
    "Muon_charge",
    "Muon_tightId",
    "Muon_pfRelIso04_all",
    "Electron_pt",
    "Electron_eta",
    "Electron_phi",
    "Electron_mass",
    "Electron_charge",
    "Electron_cutBased",
    "Electron_pfRelIso03_all",
    "Electron_deltaEtaSC",
    "Jet_pt",
    "Jet_eta",
    "Jet_phi",
    "Jet_jetId",
    "Jet_btagDeepFlavB",
    "MET_pt",
    "HLT_IsoMu24",
]
MC_BRANCHES = ["genWeight", "PSWeight", "Pileup_nTrueInt", "Jet_hadronFlavour"]


def _p4(pt: float, eta: float, phi: float, mass: float) -> tuple[float, float, float, float]:
    px, py, pz = pt * math.cos(phi), pt * math.sin(phi), pt * math.sinh(eta)
    return px, py, pz, math.sqrt(px * px + py * py + pz * pz + mass * mass)


def _delta_r(eta1: float, phi1: float, eta2: float, phi2: float) -> float:
    dphi = (phi1 - phi2 + math.pi) % (2 * math.pi) - math.pi
    return math.hypot(eta1 - eta2, dphi)


def _certified(path: str | None) -> Callable[[int, int], bool]:
    if path is None:
        return lambda run, lumi: True
    ranges = json.loads(Path(path).read_text())
    return lambda run, lumi: any(a <= lumi <= b for a, b in ranges.get(str(run), []))


def events(
    paths: Sequence[str],
    is_data: bool,
    corrections: Mapping[str, Mapping] | None = None,
    *,
    jets: Mapping | None = None,
    shapes: Mapping[str, tuple[str, str, str]] | None = None,
    lumi_mask: str | None = None,
    btag_systematics: Sequence[str] = (),
) -> list[dict]:
    """Per-event dicts of the demo analysis's quantities (None where undefined).

    ``corrections`` is the config's ``corrections`` section; payloads are read with correctionlib.
    ``jets`` is the config's ``jets`` block (jets and MET corrected jet by jet, see
    jet_reference.py); ``shapes`` maps object-variation names (e.g. ``jesUp``) to
    ``(type, source, direction)``: each event then has ``variants[name]``, the whole event
    recomputed on varied jets. ``lumi_mask``: only events in this golden JSON are kept.
    """
    loaded = {
        key: correctionlib.CorrectionSet.from_file(spec["file"])[spec["name"]]
        for key, spec in (corrections or {}).items()
    }
    certified = _certified(lumi_mask)
    names = BRANCHES + ([] if is_data else MC_BRANCHES) + ["run", "luminosityBlock"]
    if jets:
        names += jet_reference.branches(jets, is_data)
    out = []
    for path in paths:
        tree = uproot.open(path)["Events"]
        a = tree.arrays(sorted(set(names)), library="np")
        for i in range(tree.num_entries):
            if not certified(int(a["run"][i]), int(a["luminosityBlock"][i])):
                continue
            variants = {None: None}
            if jets:
                variants = {None: jet_reference.corrected(a, i, jets, is_data=is_data)}
                for name, variation in (shapes or {}).items():
                    variants[name] = jet_reference.corrected(
                        a, i, jets, is_data=is_data, variation=variation
                    )
            event = _event(a, i, is_data, loaded, variants[None], btag_systematics)
            event["variants"] = {
                name: _event(a, i, is_data, loaded, corr, btag_systematics,
                             btag_jes=_btag_jes((shapes or {})[name]))
                for name, corr in variants.items()
                if name is not None
            }  # fmt: skip
            out.append(event)
    return out


def _btag_jes(variation: tuple[str, str, str]) -> str | None:
    """The b-tag shape payload's JES-correlated SF of a JES variation: up_jes, down_jesX."""
    kind, source, direction = variation
    if kind != "jes":
        return None
    return f"{direction.lower()}_jes{'' if source == 'Total' else source}"


def _product(objects, factor) -> float:
    out = 1.0
    for obj in objects:
        out *= factor(obj)
    return out


def _weights(
    a, i, corrections, muons, electrons, jets, btag_systematics, btag_jes=None
) -> dict[str, float]:
    """Every weight variation of one MC event: factors with nominal/Up/Down, one replaced."""
    ps = [float(x) for x in a["PSWeight"][i]]
    factors = {"genWeight": {"nominal": float(a["genWeight"][i])}}
    factors["ps_isr"] = {"nominal": 1.0, "Up": ps[0], "Down": ps[2]}
    factors["ps_fsr"] = {"nominal": 1.0, "Up": ps[1], "Down": ps[3]}
    directions = {"nominal": "nominal", "Up": "up", "Down": "down"}
    if "pileup" in corrections:
        n_true = float(a["Pileup_nTrueInt"][i])
        factors["pileup"] = {
            k: corrections["pileup"].evaluate(n_true, v) for k, v in directions.items()
        }
    if "muon_id" in corrections:
        valtypes = {"nominal": "sf", "Up": "systup", "Down": "systdown"}
        factors["muon_id"] = {
            k: _product(
                muons,
                lambda m, v=v: corrections["muon_id"].evaluate(
                    "2018_UL", abs(float(m[1])), float(m[0]), v
                ),
            )
            for k, v in valtypes.items()
        }
    if "electron_id" in corrections:
        valtypes = {"nominal": "sf", "Up": "sfup", "Down": "sfdown"}
        factors["electron_id"] = {
            k: _product(
                electrons,
                lambda e, v=v: corrections["electron_id"].evaluate(
                    "2018", v, "Tight", float(e[5]), float(e[0])
                ),
            )
            for k, v in valtypes.items()
        }
    variations = {}
    if "btag" in corrections:

        def sf(jet, systematic):
            return corrections["btag"].evaluate(
                systematic, jet[3], abs(float(jet[2])), float(jet[0]), float(jet[1])
            )

        def nominal(jet):  # on JES-varied jets, b and light jets take up_jes/down_jes
            return sf(jet, btag_jes if btag_jes and jet[3] != 4 else "central")

        factors["btag"] = {"nominal": _product(jets, nominal)}
        for name in btag_systematics:
            c_only = name.startswith("cferr")
            for d in ("Up", "Down"):
                syst = f"{d.lower()}_{name}"
                applies = lambda j, c=c_only: (j[3] == 4) == c  # noqa: E731
                value = _product(jets, lambda j, s=syst, f=applies: sf(j, s if f(j) else "central"))
                variations[f"btag_{name}{d}"] = ("btag", value)
    for name, values in factors.items():
        for d in ("Up", "Down"):
            if d in values:
                variations[f"{name}{d}"] = (name, values[d])
    nominal = _product(factors.values(), lambda f: f["nominal"])
    out = {"nominal": nominal, "lumiUp": nominal * 1.025, "lumiDown": nominal * 0.975}
    for variation, (factor, value) in variations.items():
        out[variation] = _product(
            factors, lambda n, f=factor, v=value: v if n == f else factors[n]["nominal"]
        )
    return out


def _event(
    a: dict,
    i: int,
    is_data: bool,
    corrections: dict,
    jets: dict | None,
    btag_systematics: Sequence[str] = (),
    btag_wp: float = 0.2783,
    btag_jes: str | None = None,
) -> dict:
    muons = [
        (
            a["Muon_pt"][i][k],
            a["Muon_eta"][i][k],
            a["Muon_phi"][i][k],
            a["Muon_mass"][i][k],
            a["Muon_charge"][i][k],
        )
        for k in range(len(a["Muon_pt"][i]))
        if a["Muon_tightId"][i][k]
        and a["Muon_pt"][i][k] > 15
        and abs(a["Muon_eta"][i][k]) < 2.4
        and a["Muon_pfRelIso04_all"][i][k] < 0.15
    ]
    electrons = [
        (
            a["Electron_pt"][i][k],
            a["Electron_eta"][i][k],
            a["Electron_phi"][i][k],
            a["Electron_mass"][i][k],
            a["Electron_charge"][i][k],
            a["Electron_eta"][i][k] + a["Electron_deltaEtaSC"][i][k],  # supercluster eta
        )
        for k in range(len(a["Electron_pt"][i]))
        if a["Electron_cutBased"][i][k] >= 4
        and a["Electron_pt"][i][k] > 15
        and abs(a["Electron_eta"][i][k]) < 2.5
        and a["Electron_pfRelIso03_all"][i][k] < 0.15
    ]
    leptons = sorted(muons + electrons, key=lambda lep: -lep[0])
    jet_pt = a["Jet_pt"][i] if jets is None else jets["pt"]
    met = float(a["MET_pt"][i]) if jets is None else jets["met"]
    jets = []
    for k in range(len(jet_pt)):
        pt, eta, phi = jet_pt[k], a["Jet_eta"][i][k], a["Jet_phi"][i][k]
        if (
            pt > 30
            and abs(eta) < 2.4
            and (a["Jet_jetId"][i][k] & 2)
            and all(_delta_r(eta, phi, lep[1], lep[2]) > 0.4 for lep in leptons)
        ):
            flavour = None if is_data else int(a["Jet_hadronFlavour"][i][k])
            jets.append((pt, a["Jet_btagDeepFlavB"][i][k], eta, flavour))
    n_b = sum(1 for jet in jets if jet[1] > btag_wp)
    mll = ptll = None
    opposite = False
    if len(leptons) >= 2:
        p = [sum(c) for c in zip(_p4(*leptons[0][:4]), _p4(*leptons[1][:4]), strict=True)]
        mll = math.sqrt(max(p[3] ** 2 - p[0] ** 2 - p[1] ** 2 - p[2] ** 2, 0.0))
        ptll = math.hypot(p[0], p[1])
        opposite = leptons[0][4] * leptons[1][4] < 0
    cuts = {
        "trigger": bool(a["HLT_IsoMu24"][i]),
        "lead_muon": bool(muons) and muons[0][0] > 26,
        "two_muons": len(muons) == 2 and not electrons,
        "emu": len(muons) == 1 and len(electrons) == 1,
        "opposite_charge": opposite,
        "z_window": mll is not None and abs(mll - 91.1876) < 10,
        "two_jets": len(jets) >= 2,
        "one_btag": n_b >= 1,
        "no_btag": n_b == 0,
        "high_mass": mll is not None and mll > 100,
    }
    event = {
        "cuts": cuts,
        "mll": mll,
        "ptll": ptll,
        "lead_muon_pt": muons[0][0] if muons else None,
        "lead_muon_eta": muons[0][1] if muons else None,
        "njets": len(jets),
        "nbjets": n_b,
        "met": met,
        "jet_pt": [jet[0] for jet in jets],
        "lead_lepton_pt": leptons[0][0] if leptons else None,
        "sublead_lepton_pt": leptons[1][0] if len(leptons) > 1 else None,
        "weight": {"nominal": 1.0},
    }
    if not is_data:
        event["genWeight"] = float(a["genWeight"][i])
        event["weight"] = _weights(
            a, i, corrections, muons, electrons, jets, btag_systematics, btag_jes
        )
    return event


def variant(event: dict, systematic: str) -> tuple[dict, float]:
    """The event as seen by ``systematic`` (varied objects if any) and its weight."""
    if systematic in event["variants"]:
        varied = event["variants"][systematic]
        return varied, varied["weight"]["nominal"]
    return event, event["weight"][systematic]


def dataset_events(config: Mapping, dataset: str, base: Path | str = "") -> list[dict]:
    """:func:`events` for a dataset of a (validated or raw) config; paths relative to ``base``."""
    spec = config["datasets"][dataset]
    is_data = spec.get("is_data", False)
    at = lambda f: str(Path(base) / f)  # noqa: E731
    shapes = {}
    for name, syst in config.get("systematics", {}).items():
        applies = dataset in syst.get("datasets", config["datasets"])
        if syst["type"] in ("jes", "jer", "unclustered") and applies and not is_data:
            for d in ("Up", "Down"):
                shapes[f"{name}{d}"] = (syst["type"], syst.get("source", "Total"), d)
    jets = {**config["jets"], "file": at(config["jets"]["file"])} if "jets" in config else None
    evts = events(
        [at(f) for f in spec["files"]],
        is_data,
        {k: {**c, "file": at(c["file"])} for k, c in config.get("corrections", {}).items()},
        jets=jets,
        shapes=shapes,
        lumi_mask=at(spec["lumi_mask"]) if spec.get("lumi_mask", "all") != "all" else None,
        btag_systematics=config["analysis"].get("options", {}).get("btag_systematics", []),
    )
    model = config.get("models", {}).get("bdt")
    if model:
        _bdt_scores(evts, at(model))
    return evts


BDT_FEATURES = ("ptll", "met", "njets", "nbjets", "lead_lepton_pt", "sublead_lepton_pt")


def _bdt_scores(evts: list[dict], model: str) -> None:
    """Each event's (and varied event's) ``bdt``: the xgboost model's direct prediction on its
    features (absent leptons: 0), one row per event, float32 as the model sees them."""
    import xgboost

    booster = xgboost.Booster(model_file=model)
    seen = [e for event in evts for e in [event, *event.get("variants", {}).values()]]
    rows = [[0.0 if e[f] is None else e[f] for f in BDT_FEATURES] for e in seen]
    predicted = booster.predict(xgboost.DMatrix(np.asarray(rows, dtype=np.float32)))
    for e, score in zip(seen, predicted.astype(np.float32), strict=True):
        e["bdt"] = float(score)


def histogram(
    evts: list[dict], variable: str, cuts: Sequence[str], edges: np.ndarray, systematic: str
) -> tuple[np.ndarray, np.ndarray]:
    """Sum of weights and of squared weights per bin (no flow) of events passing ``cuts``."""
    values, variances = np.zeros(len(edges) - 1), np.zeros(len(edges) - 1)
    for event in evts:
        event, w = variant(event, systematic)
        if not all(event["cuts"][c] for c in cuts):
            continue
        xs = event[variable] if isinstance(event[variable], list) else [event[variable]]
        for x in xs:
            if x is None or not edges[0] <= x < edges[-1]:
                continue
            b = int(np.searchsorted(edges, x, side="right")) - 1
            values[b] += w
            variances[b] += w * w
    return values, variances


def cutflow(evts: list[dict], cuts: Sequence[str], systematic: str) -> tuple[list, list]:
    """Events and sum of weights passing initial + each cut in sequence."""
    counts, sumw = [], []
    seen = [variant(e, systematic) for e in evts]
    for k in range(len(cuts) + 1):
        passing = [(e, w) for e, w in seen if all(e["cuts"][c] for c in cuts[:k])]
        counts.append(len(passing))
        sumw.append(sum(w for _, w in passing))
    return counts, sumw
