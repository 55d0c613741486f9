"""The demo's toy detector: efficiencies, pT smearing, identification and isolation, fake
leptons, ISR and pileup jets, b-tag discriminant, MET from neutrinos plus resolution, the
``HLT_IsoMu24`` decision, applied to the parton-level events of :mod:`.events`; as NanoAOD
branches (names and types)."""

from __future__ import annotations

import awkward as ak
import numpy as np

from brewflow.demo.events import M_E, M_MU, Model, Truth
from brewflow.demo.payloads import (
    JEC_L1_OFFSET,
    JER_SF,
    PILEUP_DATA_SCALE,
    PILEUP_MC_SCALE,
    demo_jec,
    demo_muon_sf,
)

__all__ = ["nanoaod"]


def _random_particles(
    rng: np.random.Generator, counts: np.ndarray, pt0: float, slope: float, eta_max: float
) -> dict[str, np.ndarray]:
    total = int(counts.sum())
    return {
        "pt": pt0 + rng.exponential(slope, total),
        "eta": rng.uniform(-eta_max, eta_max, total),
        "phi": rng.uniform(-np.pi, np.pi, total),
    }


def _sorted_by_pt(collection: ak.Array) -> ak.Array:
    return collection[ak.argsort(collection.pt, axis=1, ascending=False)]


def _leptons(rng: np.random.Generator, truth: Truth, flavour: int, is_data: bool) -> ak.Array:
    """Reconstructed muons (13) or electrons (11): prompt ones with efficiency, plus fakes.

    In data the prompt-muon efficiency is the MC one times the demo scale factor."""
    is_mu = flavour == 13
    eta_max, eff, resolution = (2.4, 0.98, 0.015) if is_mu else (2.5, 0.95, 0.025)
    prompt = truth.leptons[truth.leptons.flavour == flavour]
    flat = ak.flatten(prompt)
    pt = ak.to_numpy(flat.pt) * rng.normal(1.0, resolution, len(flat))
    keep = (pt > (3 if is_mu else 5)) & (np.abs(ak.to_numpy(flat.eta)) < eta_max)
    efficiency = np.full(len(flat), eff)
    if is_mu and is_data:
        efficiency *= demo_muon_sf(np.abs(ak.to_numpy(flat.eta)), pt)
    keep &= rng.random(len(flat)) < efficiency
    counts = ak.to_numpy(ak.num(prompt))
    parts = {
        "pt": pt,
        "eta": ak.to_numpy(flat.eta),
        "phi": ak.to_numpy(flat.phi),
        "charge": ak.to_numpy(flat.charge),
        "iso": rng.exponential(0.03, len(flat)),
        "quality": rng.random(len(flat)) < (0.97 if is_mu else 0.80),
    }
    prompt_reco = ak.unflatten(ak.zip(parts), counts)[ak.unflatten(keep, counts)]

    n_fake = rng.poisson(0.15 if is_mu else 0.25, len(counts))
    fake = _random_particles(rng, n_fake, 3.0 if is_mu else 5.0, 8.0, eta_max)
    nf = len(fake["pt"])
    fake.update(
        charge=rng.choice([-1.0, 1.0], nf),
        iso=0.05 + rng.exponential(0.4, nf),
        quality=rng.random(nf) < (0.6 if is_mu else 0.1),
    )
    fakes = ak.unflatten(ak.zip(fake), n_fake)
    reco = _sorted_by_pt(ak.concatenate([prompt_reco, fakes], axis=1))
    mass = M_MU if is_mu else M_E
    out = {
        "pt": ak.values_astype(reco.pt, np.float32),
        "eta": ak.values_astype(reco.eta, np.float32),
        "phi": ak.values_astype(reco.phi, np.float32),
        "mass": ak.values_astype(ak.full_like(reco.pt, mass), np.float32),
        "charge": ak.values_astype(reco.charge, np.int32),
    }
    if is_mu:
        out["tightId"] = ak.values_astype(reco.quality, bool)
        out["pfRelIso04_all"] = ak.values_astype(reco.iso, np.float32)
    else:
        flat_q = ak.to_numpy(ak.flatten(reco.quality))
        cut_based = np.where(flat_q, 4, rng.choice([1, 2, 3], len(flat_q), p=[0.4, 0.35, 0.25]))
        out["cutBased"] = ak.unflatten(cut_based.astype(np.int32), ak.num(reco))
        out["pfRelIso03_all"] = ak.values_astype(reco.iso, np.float32)
        # supercluster eta - eta: a deterministic few 0.01 (draws no random number, so every
        # other generated value stays as it was)
        out["deltaEtaSC"] = ak.values_astype(0.03 * np.sin(7.0 * reco.phi), np.float32)
    return ak.zip(out)


def _gen_index(flat_pt: np.ndarray, event: np.ndarray, is_gen: np.ndarray, n: int):
    """GenJets (the ``is_gen`` truth jets, pT-ordered per event) and, for every truth jet,
    its index among them (-1 if not a GenJet)."""
    chosen = np.nonzero(is_gen)[0]
    order = chosen[np.lexsort((-flat_pt[chosen], event[chosen]))]
    counts = np.bincount(event[order], minlength=n)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    index = np.full(len(flat_pt), -1, dtype=np.int64)
    index[order] = np.arange(len(order)) - starts[event[order]]
    return order, counts, index


def _jets(
    rng: np.random.Generator, truth: Truth, n_isr_mean: float, rho: np.ndarray, is_data: bool
) -> tuple[ak.Array, ak.Array, np.ndarray]:
    """Jets from b quarks, ISR (light, some c and b) and pileup; pT > 15 GeV, |eta| < 4.7.

    Also the GenJets (quark and ISR jets with true pT > 10 GeV) with ``Jet_genJetIdx``, and
    ``rawFactor``/``area`` consistent with the demo JEC (data: resolution x JER SF, residual).
    """
    n = len(truth.nu_px)
    quarks = truth.quarks
    qflat = ak.flatten(quarks)
    n_isr = rng.poisson(n_isr_mean, n)
    isr = _random_particles(rng, n_isr, 20.0, 25.0, 3.5)
    isr["flavour"] = rng.choice([0, 4, 5], len(isr["pt"]), p=[0.89, 0.08, 0.03])
    n_pu = rng.poisson(0.5, n)
    pu = _random_particles(rng, n_pu, 15.0, 6.0, 4.7)
    pu["flavour"] = np.zeros(len(pu["pt"]), dtype=np.int64)
    pu["pileup"] = np.ones(len(pu["pt"]), dtype=bool)
    isr["pileup"] = np.zeros(len(isr["pt"]), dtype=bool)
    parts = [
        ak.unflatten(
            ak.zip(
                {
                    "pt": ak.to_numpy(qflat.pt),
                    "eta": ak.to_numpy(qflat.eta),
                    "phi": ak.to_numpy(qflat.phi),
                    "flavour": ak.to_numpy(qflat.flavour).astype(np.int64),
                    "pileup": np.zeros(len(qflat), dtype=bool),
                }
            ),
            ak.num(quarks),
        ),
        ak.unflatten(ak.zip(isr), n_isr),
        ak.unflatten(ak.zip(pu), n_pu),
    ]
    jets = ak.concatenate(parts, axis=1)
    flat = ak.flatten(jets)
    total = len(flat)
    counts = ak.to_numpy(ak.num(jets))
    event = np.repeat(np.arange(n), counts)
    true_pt, true_eta = ak.to_numpy(flat.pt), ak.to_numpy(flat.eta)
    gen_order, gen_counts, gen_index = _gen_index(
        true_pt, event, ~ak.to_numpy(flat.pileup) & (true_pt > 10), n
    )
    resolution = 0.12 * (JER_SF["nom"] if is_data else 1.0)
    pt = true_pt * rng.normal(1.0, resolution, total)
    eta = true_eta + rng.normal(0, 0.02, total)
    flavour = ak.to_numpy(flat.flavour)
    btag = np.where(
        flavour == 5,
        rng.beta(5.0, 1.2, total),
        np.where(flavour == 4, rng.beta(1.5, 3.0, total), rng.beta(0.6, 8.0, total)),
    )
    area = rng.normal(0.5, 0.03, total)
    raw = pt / demo_jec(eta, is_data) + JEC_L1_OFFSET * area * np.repeat(rho, counts)
    reco = ak.unflatten(
        ak.zip(
            {
                "pt": pt,
                "eta": eta,
                "phi": ak.to_numpy(flat.phi),
                "mass": pt * rng.uniform(0.05, 0.2, total),
                "btagDeepFlavB": btag,
                "jetId": np.where(rng.random(total) < 0.97, 6, 2),
                "rawFactor": 1.0 - raw / pt,
                "area": area,
                "genJetIdx": gen_index,
                "hadronFlavour": flavour,
            }
        ),
        counts,
    )
    reco = _sorted_by_pt(reco[(reco.pt > 15) & (np.abs(reco.eta) < 4.7)])
    types = {
        "pt": np.float32,
        "eta": np.float32,
        "phi": np.float32,
        "mass": np.float32,
        "btagDeepFlavB": np.float32,
        "jetId": np.int32,
        "rawFactor": np.float32,
        "area": np.float32,
        "genJetIdx": np.int32,
        "hadronFlavour": np.int32,
    }
    gen = {
        "pt": true_pt[gen_order],
        "eta": true_eta[gen_order],
        "phi": ak.to_numpy(flat.phi)[gen_order],
        "mass": true_pt[gen_order] * 0.1,
    }
    genjets = ak.unflatten(ak.zip({k: v.astype(np.float32) for k, v in gen.items()}), gen_counts)
    return ak.zip({k: ak.values_astype(reco[k], t) for k, t in types.items()}), genjets, n_isr


def nanoaod(
    rng: np.random.Generator, model: Model, n: int, *, is_data: bool,
    pileup: float = PILEUP_DATA_SCALE["nominal"],
) -> dict:  # fmt: skip
    """One block of n events of one model as NanoAOD branches (without run/lumi/event); data
    with a true-interaction profile of scale ``pileup`` (Gamma, shape 8)."""
    truth = model.sample(rng, n)
    muons = _leptons(rng, truth, 13, is_data)
    electrons = _leptons(rng, truth, 11, is_data)
    n_true_int = rng.gamma(8.0, pileup if is_data else PILEUP_MC_SCALE, n)
    rho = np.maximum(0.5 * n_true_int + rng.normal(0.0, 1.5, n), 0.0)
    jets, genjets, n_isr = _jets(rng, truth, model.isr_jets, rho, is_data)
    met_x = truth.nu_px + rng.normal(0, 10.0, n)
    met_y = truth.nu_py + rng.normal(0, 10.0, n)
    mc_only = ("hadronFlavour", "genJetIdx")
    trig_mu = (muons.pt > 24) & (np.abs(muons.eta) < 2.4) & (muons.pfRelIso04_all < 0.15)
    trigger = ak.to_numpy(ak.any(trig_mu & muons.tightId, axis=1)) & (rng.random(n) < 0.93)
    branches: dict = {
        "Muon": muons,
        "Electron": electrons,
        "Jet": jets if not is_data else jets[[f for f in jets.fields if f not in mc_only]],
        "MET_pt": np.hypot(met_x, met_y).astype(np.float32),
        "MET_phi": np.arctan2(met_y, met_x).astype(np.float32),
        "MET_MetUnclustEnUpDeltaX": rng.normal(0.0, 3.0, n).astype(np.float32),
        "MET_MetUnclustEnUpDeltaY": rng.normal(0.0, 3.0, n).astype(np.float32),
        "fixedGridRhoFastjetAll": rho.astype(np.float32),
        "HLT_IsoMu24": trigger,
    }
    if not is_data:
        sign = np.where(rng.random(n) < model.negative_fraction, -1.0, 1.0)
        branches["genWeight"] = (sign * model.weight_scale * rng.lognormal(0.0, 0.05, n)).astype(
            np.float32
        )
        branches["Pileup_nTrueInt"] = n_true_int.astype(np.float32)
        branches["GenJet"] = genjets
        lead = ak.to_numpy(ak.fill_none(ak.max(truth.leptons.pt, axis=1), 40.0))
        isr_up = np.clip(1.0 + 0.06 * (n_isr - 0.8) + rng.normal(0, 0.02, n), 0.5, 2.0)
        fsr_up = np.clip(1.0 - 0.002 * (lead - 40.0) + rng.normal(0, 0.03, n), 0.5, 2.0)
        ps = np.stack([isr_up, fsr_up, 2.0 - isr_up, 2.0 - fsr_up], axis=1).astype(np.float32)
        branches["PSWeight"] = ak.unflatten(ps.ravel(), np.full(n, 4))
    return branches
