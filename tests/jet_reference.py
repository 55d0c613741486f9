"""Independent per-jet JEC/JER/JES and MET propagation, for tests (see brewflow.jetmet).

correctionlib is called once per jet with Python scalars; the smearing numbers come from a
pure-Python SplitMix64 chain (integers masked to 64 bits) and Box-Muller.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from brewflow.corrections import load

MASK = (1 << 64) - 1


def _splitmix(x: int) -> int:
    z = (x + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def normal(run: int, lumi: int, event: int, index: int, salt: int = 0) -> float:
    key = _splitmix(run ^ salt)
    for value in (lumi, event, index):
        key = _splitmix(key ^ value)
    u1 = ((key >> 11) + 0.5) * 2.0**-53
    u2 = ((_splitmix(key) >> 11) + 0.5) * 2.0**-53
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def uniform(run: int, lumi: int, event: int, index: int, salt: int) -> float:
    """The (0, 1) number of brewflow.draws.object_uniforms, by the same hash chain."""
    key = _splitmix(run ^ salt)
    for value in (lumi, event, index):
        key = _splitmix(key ^ value)
    return ((key >> 11) + 0.5) * 2.0**-53


def branches(spec: Mapping, is_data: bool) -> list[str]:
    """The flat branches :func:`corrected` needs."""
    out = ["run", "luminosityBlock", "event", spec.get("rho", "fixedGridRhoFastjetAll")]
    met = spec.get("met", "MET")
    out += [f"{met}_pt", f"{met}_phi"]
    if met == "PuppiMET":
        out += [f"PuppiMET_{q}Unclustered{d}" for q in ("pt", "phi") for d in ("Up", "Down")]
    else:
        out += [f"{met}_MetUnclustEnUpDeltaX", f"{met}_MetUnclustEnUpDeltaY"]
    if "met_xy" in spec:
        out += ["PV_npvs"]
    out += [f"Jet_{f}" for f in ("pt", "eta", "phi", "mass", "rawFactor", "area")]
    if not is_data:
        out += ["Jet_genJetIdx", "GenJet_pt", "GenJet_eta", "GenJet_phi"]
    return out


def _args(c, **values):
    return [values[i.name] for i in c.inputs]


def corrected(
    a: Mapping, i: int, spec: Mapping, *, is_data: bool, variation=None, jec: str | None = None
) -> dict:
    """Event ``i`` of the arrays ``a``: corrected jet pTs (NanoAOD order) and MET pt/phi.

    ``variation``: None or ``(type, source, "Up"|"Down")`` as in brewflow.jetmet."""
    file = spec["file"]
    rho = float(a[spec.get("rho", "fixedGridRhoFastjetAll")][i])
    jec_c = load(file, jec or spec["jec"]["data" if is_data else "mc"])
    smear = not is_data and "resolution" in spec and "resolution_sf" in spec
    if smear:
        res, sfc = load(file, spec["resolution"]), load(file, spec["resolution_sf"])
    kind, source, direction = variation or (None, None, None)
    met = spec.get("met", "MET")
    met_pt, met_phi = float(a[f"{met}_pt"][i]), float(a[f"{met}_phi"][i])
    met_x, met_y = met_pt * math.cos(met_phi), met_pt * math.sin(met_phi)
    pts = []
    for j, pt_nano in enumerate(a["Jet_pt"][i]):
        pt_nano, eta = float(pt_nano), float(a["Jet_eta"][i][j])
        phi = float(a["Jet_phi"][i][j])
        raw = pt_nano * (1 - float(a["Jet_rawFactor"][i][j]))
        area = float(a["Jet_area"][i][j])
        pt = raw * jec_c.evaluate(*_args(jec_c, JetA=area, JetEta=eta, JetPt=raw, Rho=rho))
        if smear:
            syst = {"Up": "up", "Down": "down"}[direction] if kind == "jer" else "nom"
            values = {"JetEta": eta, "JetPt": pt, "Rho": rho, "systematic": syst}
            sigma = res.evaluate(*_args(res, **values))
            sf = sfc.evaluate(*_args(sfc, **values))
            g = int(a["Jet_genJetIdx"][i][j])
            factor = None
            if 0 <= g < len(a["GenJet_pt"][i]):
                gpt = float(a["GenJet_pt"][i][g])
                dphi = (float(a["GenJet_phi"][i][g]) - phi + math.pi) % (2 * math.pi) - math.pi
                dr = math.hypot(float(a["GenJet_eta"][i][g]) - eta, dphi)
                if dr < 0.2 and abs(pt - gpt) < 3 * sigma * pt:
                    factor = 1 + (sf - 1) * (pt - gpt) / pt
            if factor is None:
                run, lumi, event = (int(a[k][i]) for k in ("run", "luminosityBlock", "event"))
                n = normal(run, lumi, event, j)
                factor = 1 + sigma * n * math.sqrt(max(sf * sf - 1, 0.0))
            pt *= max(factor, 0.0)
        if kind == "jes":
            unc = load(file, spec["uncertainty"].format(source=source))
            u = unc.evaluate(*_args(unc, JetEta=eta, JetPt=pt))
            pt *= 1 + u if direction == "Up" else 1 - u
        if pt > spec.get("met_jet_pt_min", 15.0):
            met_x -= (pt - pt_nano) * math.cos(phi)
            met_y -= (pt - pt_nano) * math.sin(phi)
        pts.append(pt)
    if kind == "unclustered" and met == "PuppiMET":  # the varied PuppiMET's shift
        pt_u = float(a[f"PuppiMET_ptUnclustered{direction}"][i])
        phi_u = float(a[f"PuppiMET_phiUnclustered{direction}"][i])
        met_x += pt_u * math.cos(phi_u) - met_pt * math.cos(met_phi)
        met_y += pt_u * math.sin(phi_u) - met_pt * math.sin(met_phi)
    elif kind == "unclustered":
        sign = 1 if direction == "Up" else -1
        met_x += sign * float(a[f"{met}_MetUnclustEnUpDeltaX"][i])
        met_y += sign * float(a[f"{met}_MetUnclustEnUpDeltaY"][i])
    pt, phi = math.hypot(met_x, met_y), math.atan2(met_y, met_x)
    if "met_xy" in spec:  # the payload's formulas, evaluated one event at a time
        xy, flavour = spec["met_xy"], "puppimet" if met == "PuppiMET" else "pfmet"
        data = "data" if is_data else "mc"
        values = {"met_pt": pt, "met_phi": phi, "npvs": float(a["PV_npvs"][i]),
                  "run": float(a["run"][i])}  # fmt: skip
        pt, phi = (
            (c := load(xy["file"], f"{q}_metphicorr_{flavour}_{data}")).evaluate(
                *_args(c, **values)
            )
            for q in ("pt", "phi")
        )
    return {"pt": pts, "met": pt, "phi": phi}
