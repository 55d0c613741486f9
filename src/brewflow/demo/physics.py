"""The demo analysis: Z -> mumu, WW and ttbar -> e mu, and high-mass dimuon selections on
NanoAOD (also real NanoAOD).

Objects (GeV, pT-ordered as in NanoAOD):
- muons: tight ID, pT > 15, |eta| < 2.4, PF relative isolation (dR 0.4) < 0.15;
- electrons: cut-based tight (``cutBased >= 4``), pT > 15, |eta| < 2.5, relative iso < 0.15;
- jets: pT > 30, |eta| < 2.4, tight jet ID (bit 2), dR > 0.4 from the selected leptons;
- b jets: DeepJet score above ``btag_wp`` (2018 UL medium: 0.2783).

MC weights: ``genWeight`` and, when the config provides them as ``corrections``: ``pileup``
(from ``Pileup_nTrueInt``), ``muon_id`` (product over the selected muons, scenario
``muon_sf_year``), ``electron_id`` (product over the selected electrons, ``electron_sf_year``
and ``electron_wp``), each with up/down; and ``btag`` (b-tag shape scale factors, product over
the selected jets) with one variation ``btag_<name>`` per name in the option
``btag_systematics`` (e.g. ``hf``, ``lf``, ``cferr1``).

Jets and MET arrive already corrected (JEC/JER, and varied for jes/jer/unclustered
systematics) when the config has a ``jets`` block: the runner applies :mod:`brewflow.jetmet`.
The parton-shower weights (``ps_isr``, ``ps_fsr``) and the MET filters are the config's
``theory`` and ``met_filters`` blocks, which the runner adds (:mod:`brewflow.jobs.blocks`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from brewflow.analysis import AnalysisOutput, Context
from brewflow.arrays import lib
from brewflow.corrections import (
    btag_shape_weights,
    pileup_weights,
)
from brewflow.inference import scores
from brewflow.leptonsf import electron_sf_weights, muon_sf_weights
from brewflow.selection import Selection
from brewflow.weights import Weights

__all__ = ["BDT_FEATURES", "analysis", "bdt_features", "train_bdt", "train_demo_bdt"]


def _leptons(muons: Any, electrons: Any) -> Any:
    """Selected muons and electrons as one pT-ordered collection of 4-vectors with charge."""
    ak = lib(muons.pt)
    fields = ("pt", "eta", "phi", "mass", "charge")
    both = ak.concatenate(
        [ak.zip({f: c[f] for f in fields}, with_name="Momentum4D") for c in (muons, electrons)],
        axis=1,
    )
    return both[ak.argsort(both.pt, axis=1, ascending=False)]


BDT_FEATURES = ("ptll", "met", "njets", "nbjets", "lead_lepton_pt", "sublead_lepton_pt")
"""The demo BDT's per-event inputs (missing leptons count as 0 GeV)."""


def bdt_features(variables: dict[str, Any]) -> list[Any]:
    """The :data:`BDT_FEATURES` of each event from the analysis variables, float32."""
    ak = lib(variables["met"])
    return [ak.values_astype(ak.fill_none(variables[n], 0.0), np.float32) for n in BDT_FEATURES]


def analysis(events: Any, context: Context) -> AnalysisOutput:
    """Select Z -> mumu and ttbar -> e mu candidates; define variables and weights."""
    ak = lib(events.MET.pt)
    opts = {
        "btag_wp": 0.2783,
        "lead_muon_pt": 26.0,
        "muon_sf_year": "2018_UL",
        "electron_sf_year": "2018",
        "electron_wp": "Tight",
        "btag_systematics": [],
        "trigger": "IsoMu24",
        **context.options,
    }

    mu = events.Muon
    muons = mu[mu.tightId & (mu.pt > 15) & (np.abs(mu.eta) < 2.4) & (mu.pfRelIso04_all < 0.15)]
    el = events.Electron
    electrons = el[
        (el.cutBased >= 4) & (el.pt > 15) & (np.abs(el.eta) < 2.5) & (el.pfRelIso03_all < 0.15)
    ]
    leptons = _leptons(muons, electrons)
    jet = events.Jet
    jets = jet[(jet.pt > 30) & (np.abs(jet.eta) < 2.4) & ((jet.jetId & 2) > 0)]
    pairs = ak.cartesian([jets, leptons], nested=True)
    jets = jets[ak.all(pairs["0"].delta_r(pairs["1"]) > 0.4, axis=2)]
    jets = context.checkpoint("jets", jets)  # persisted under persist_checkpoints
    bjets = jets[jets.btagDeepFlavB > opts["btag_wp"]]

    n_mu, n_el = ak.num(muons), ak.num(electrons)
    padded = ak.pad_none(leptons, 2)
    l1, l2 = padded[:, 0], padded[:, 1]
    dilepton = l1 + l2
    lead_mu = ak.pad_none(muons, 1)[:, 0]

    selection = Selection()
    trigger = opts["trigger"]  # an HLT path, or None: no trigger requirement (e.g. MC without HLT)
    met = events[context.met]  # MET, or PuppiMET (config: jets.met)
    selection.add("trigger", events.HLT[trigger] if trigger else ak.ones_like(met.pt) > 0)
    selection.add("lead_muon", lead_mu.pt > opts["lead_muon_pt"])
    selection.add("two_muons", (n_mu == 2) & (n_el == 0))
    selection.add("emu", (n_mu == 1) & (n_el == 1))
    selection.add("opposite_charge", l1.charge * l2.charge < 0)
    selection.add("z_window", np.abs(dilepton.mass - 91.1876) < 10)
    selection.add("two_jets", ak.num(jets) >= 2)
    selection.add("one_btag", ak.num(bjets) >= 1)
    selection.add("no_btag", ak.num(bjets) == 0)
    selection.add("high_mass", dilepton.mass > 100)

    variables = {
        "mll": dilepton.mass,
        "ptll": dilepton.pt,
        "lead_muon_pt": lead_mu.pt,
        "lead_muon_eta": lead_mu.eta,
        "njets": ak.num(jets),
        "nbjets": ak.num(bjets),
        "met": met.pt,
        "jet_pt": jets.pt,
        "lead_lepton_pt": l1.pt,
        "sublead_lepton_pt": l2.pt,
    }
    if "bdt" in context.models:  # ttbar vs Drell-Yan/WW score (brewflow.inference)
        variables["bdt"] = scores(context.models["bdt"], bdt_features(variables))

    weights = Weights()
    if not context.is_data:
        weights.add("genWeight", events.genWeight)
        if "pileup" in context.corrections:
            pu = pileup_weights(context.corrections["pileup"], events.Pileup.nTrueInt)
            weights.add("pileup", pu["nominal"], up=pu["up"], down=pu["down"])
        if "muon_id" in context.corrections:
            sf = muon_sf_weights(context.corrections["muon_id"], muons, opts["muon_sf_year"])
            weights.add("muon_id", sf["nominal"], up=sf["up"], down=sf["down"])
        if "electron_id" in context.corrections:
            sf = electron_sf_weights(
                context.corrections["electron_id"],
                electrons,
                opts["electron_sf_year"],
                opts["electron_wp"],
            )
            weights.add("electron_id", sf["nominal"], up=sf["up"], down=sf["down"])
        if "btag" in context.corrections:
            names = list(opts["btag_systematics"]) if context.wants_weight_variations else []
            sf = btag_shape_weights(context.corrections["btag"], jets, names, jes=context.jes)
            weights.add("btag", sf["nominal"])
            for name in names:
                weights.add_variation(f"btag_{name}", "btag", sf[f"{name}Up"], sf[f"{name}Down"])
    objects = {"Muon": muons, "Electron": electrons}  # what lepton_sf blocks weigh
    return AnalysisOutput(selection=selection, variables=variables, weights=weights,
                          objects=objects)  # fmt: skip


def train_bdt(
    signal: list[str], background: list[str], path: str, *, seed: int = 42, rounds: int = 30
) -> int:
    """Train the demo BDT (xgboost, deterministic: one thread, fixed seed) on ``signal`` vs
    ``background`` NanoAOD files, in the region where it is used (one electron and one muon of
    opposite charge: ttbar vs WW and Drell-Yan there); write it to ``path`` (universal binary
    JSON, atomically). Returns the number of training events."""
    from pathlib import Path

    import xgboost

    from brewflow.files import atomic_output
    from brewflow.nanoevents.reader import eager_events

    rows, labels = [], []
    for label, files in ((1, signal), (0, background)):
        for file in files:
            events = eager_events(file)
            output = analysis(events, Context(Path(file).stem, False))
            keep = np.asarray(output.selection.all("emu", "opposite_charge"), dtype=bool)
            columns = bdt_features(output.variables)
            matrix = np.stack([np.asarray(c) for c in columns], axis=1)[keep]
            rows.append(matrix)
            labels.append(np.full(len(matrix), label, dtype=np.float32))
    matrix, target = np.concatenate(rows), np.concatenate(labels)
    params = {"objective": "binary:logistic", "max_depth": 3, "eta": 0.3, "nthread": 1,
              "seed": seed, "tree_method": "exact"}  # fmt: skip
    booster = xgboost.train(params, xgboost.DMatrix(matrix, label=target), rounds)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out) as tmp:
        booster.save_model(str(tmp))
    return len(matrix)


def train_demo_bdt(config: Mapping, *, seed: int = 42) -> int:
    """:func:`train_bdt` on the config's generated MC (ttbar vs the rest), written to
    ``generate.bdt``."""
    files: dict[str, list[str]] = {}
    for dataset in config["datasets"].values():
        if dataset.get("generator") not in (None, "data"):
            files.setdefault(dataset["generator"], []).extend(dataset["files"])
    background = [f for model, paths in files.items() if model != "ttbar" for f in paths]
    if not files.get("ttbar") or not background:
        from brewflow.config import ConfigError

        raise ConfigError(
            "config key 'generate.bdt': the demo BDT is trained on generated MC; it needs a "
            "dataset with generator 'ttbar' and one with 'dy' or 'ww'"
        )
    return train_bdt(files["ttbar"], background, config["generate"]["bdt"], seed=seed)
