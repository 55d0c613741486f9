"""ADL Q1-Q8 with coffea, for `run.py` to compare against (run in an interpreter with coffea).

    python benchmarks/coffea_adl.py dask|virtual|virtual-single FILE [FILE ...] --workers 2 \
        --step-size 100000 --binning '{"q1": [100, 0.0, 200.0], ...}' [--float64]

The queries are written the way coffea's own ADL benchmark processors write them: NanoEvents
objects in the file's own float32, their vector methods, ``ak.combinations``,
``argcombinations``, ``metric_table`` (Q8 zips electrons and muons to one record type first,
as current awkward requires). ``--float64`` runs the variant that promotes the kinematics
with ``values_astype`` first (brewflow's arithmetic), reported separately. Same definitions and
binning as ``brewflow.adl`` (``--binning``; run.py compares the histograms bin by bin).
``dask``: ``NanoEventsFactory.from_root(mode="dask")``, one graph, dask's threaded scheduler
with ``--workers`` threads (as brewflow). ``virtual``: coffea's default mode through its
``processor.Runner`` with ``--workers`` processes (``FuturesExecutor``), chunks of
``--step-size`` events; ``virtual-single``: virtual mode in this process, a whole file at a
time. Prints one JSON line: seconds (after imports), imports, events, histograms (counts with
flow bins).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

STARTED = time.perf_counter()

import awkward as ak  # noqa: E402
import hist  # noqa: E402
import numpy as np  # noqa: E402
from coffea.nanoevents import NanoAODSchema, NanoEventsFactory  # noqa: E402
from coffea.nanoevents.methods import vector  # noqa: E402

IMPORTED = time.perf_counter()
NanoAODSchema.warn_missing_crossrefs = False
BINNING: dict[str, list] = {}  # the query binning, given by run.py from brewflow.adl
FLOAT64: list[bool] = [False]  # --float64
warnings.filterwarnings("ignore", module="coffea")


def queries(events) -> dict:
    """Q1-Q8 the way coffea's own ADL benchmark processors write them: NanoEvents objects in
    the file's float32, their vector methods, ``ak.combinations``, ``metric_table``."""
    met = events.MET.pt
    out = {
        "q1": met,
        "q2": ak.flatten(events.Jet.pt),
        "q3": ak.flatten(events.Jet[abs(events.Jet.eta) < 1].pt),
        "q4": events[ak.sum(events.Jet.pt > 40, axis=1) >= 2].MET.pt,
    }

    mupair = ak.combinations(events.Muon, 2, fields=["mu1", "mu2"])
    pairmass = (mupair.mu1 + mupair.mu2).mass
    goodevent = ak.any(
        (pairmass > 60) & (pairmass < 120) & (mupair.mu1.charge == -mupair.mu2.charge), axis=1
    )
    out["q5"] = events[goodevent].MET.pt

    jets = ak.zip(
        {k: getattr(events.Jet, k) for k in ["x", "y", "z", "t"]}
        | {"btag": events.Jet.btagDeepFlavB},
        with_name="LorentzVector",
        behavior=events.Jet.behavior,
    )
    trijet = ak.combinations(jets, 3, fields=["j1", "j2", "j3"])
    trijet["p4"] = trijet.j1 + trijet.j2 + trijet.j3
    trijet = ak.flatten(trijet[ak.singletons(ak.argmin(abs(trijet.p4.mass - 172.5), axis=1))])
    out["q6_pt"] = trijet.p4.pt
    out["q6_btag"] = np.maximum(trijet.j1.btag, np.maximum(trijet.j2.btag, trijet.j3.btag))

    cleanjets = events.Jet[
        ak.all(events.Jet.metric_table(events.Muon[events.Muon.pt > 10]) >= 0.4, axis=2)
        & ak.all(events.Jet.metric_table(events.Electron[events.Electron.pt > 10]) >= 0.4, axis=2)
        & (events.Jet.pt > 30)
    ]
    out["q7"] = ak.sum(cleanjets.pt, axis=1)
    out["q8"] = _q8(events)
    return out


def _as_lepton(collection, pdg: int):
    """Electrons and muons as one record type (concatenating the two NanoEvents collections
    directly gives a union array that current awkward/vector cannot take ``delta_phi`` of)."""
    return ak.zip(
        {f: getattr(collection, f) for f in ("pt", "eta", "phi", "mass", "charge")}
        | {"pdgId": -pdg * collection.charge},
        with_name="PtEtaPhiMLorentzVector",
        behavior=collection.behavior,
    )


def _q8(events):
    """coffea's ADL Q8 processor (argcombinations of lepton indices)."""
    leptons = ak.concatenate([_as_lepton(events.Electron, 11), _as_lepton(events.Muon, 13)], axis=1)
    events = ak.with_field(events, leptons, "leptons")
    events = events[ak.num(events.leptons) >= 3]
    pair = ak.argcombinations(events.leptons, 2, fields=["l1", "l2"])
    pair = pair[(events.leptons[pair.l1].pdgId == -events.leptons[pair.l2].pdgId)]
    with np.errstate(invalid="ignore"):
        pair = pair[
            ak.singletons(
                ak.argmin(
                    abs((events.leptons[pair.l1] + events.leptons[pair.l2]).mass - 91.2), axis=1
                )
            )
        ]
    events = events[ak.num(pair) > 0]
    pair = pair[ak.num(pair) > 0][:, 0]
    l3 = ak.local_index(events.leptons)
    l3 = l3[(l3 != pair.l1) & (l3 != pair.l2)]
    l3 = l3[ak.argmax(events.leptons[l3].pt, axis=1, keepdims=True)]
    l3 = events.leptons[l3][:, 0]
    return np.sqrt(2 * l3.pt * events.MET.pt * (1 - np.cos(events.MET.delta_phi(l3))))


KINEMATICS = ("pt", "eta", "phi", "mass")


def _p4(objects, **extra):
    """float64 PtEtaPhiMLorentzVector (with charge), as brewflow.adl promotes."""
    fields = {f: ak.values_astype(objects[f], np.float64) for f in KINEMATICS}
    return ak.zip(
        {**fields, "charge": objects.charge, **extra},
        with_name="PtEtaPhiMLorentzVector",
        behavior=vector.behavior,
    )


def queries_float64(events) -> dict:
    """The float64 variant (``--float64``): kinematics promoted with ``values_astype`` first,
    the same arithmetic as brewflow.adl; reported separately, not as coffea's own way."""
    met = ak.values_astype(events.MET.pt, np.float64)
    met_phi = ak.values_astype(events.MET.phi, np.float64)
    jets = ak.zip(
        {
            **{f: ak.values_astype(events.Jet[f], np.float64) for f in KINEMATICS},
            "btag": events.Jet.btagDeepFlavB,
        },
        with_name="PtEtaPhiMLorentzVector",
        behavior=vector.behavior,
    )
    out = {
        "q1": met,
        "q2": ak.flatten(jets.pt),
        "q3": ak.flatten(jets.pt[np.abs(jets.eta) < 1]),
        "q4": met[ak.sum(jets.pt > 40, axis=1) >= 2],
    }
    muons = _p4(events.Muon)
    pairs = ak.combinations(muons, 2, fields=["mu1", "mu2"])
    mass = (pairs.mu1 + pairs.mu2).mass
    good = (pairs.mu1.charge != pairs.mu2.charge) & (mass > 60) & (mass < 120)
    out["q5"] = met[ak.any(good, axis=1)]

    trijet = ak.combinations(jets[ak.num(jets) >= 3], 3, fields=["j1", "j2", "j3"])
    trijet["p4"] = trijet.j1 + trijet.j2 + trijet.j3
    best = trijet[ak.argmin(np.abs(trijet.p4.mass - 172.5), axis=1, keepdims=True)]
    out["q6_pt"] = ak.flatten(best.p4.pt)
    out["q6_btag"] = ak.flatten(np.maximum(np.maximum(best.j1.btag, best.j2.btag), best.j3.btag))

    electrons = _p4(events.Electron, flavour=events.Electron.charge * 0 + 11)
    leptons = ak.concatenate([electrons, _p4(events.Muon, flavour=muons.charge * 0 + 13)], axis=1)
    light = leptons[leptons.pt > 10]
    hard = jets[jets.pt > 30]
    isolated = ak.all(hard.metric_table(light) >= 0.4, axis=2)
    out["q7"] = ak.sum(hard.pt[isolated], axis=1)

    leptons = ak.with_field(leptons, ak.local_index(leptons, axis=1), "index")
    pairs = ak.combinations(leptons, 2, fields=["a", "b"])
    pairs = pairs[(pairs.a.flavour == pairs.b.flavour) & (pairs.a.charge != pairs.b.charge)]
    selected = (ak.num(leptons) >= 3) & (ak.num(pairs) > 0)
    pairs, leptons = pairs[selected], leptons[selected]
    met8, met_phi8 = met[selected], met_phi[selected]
    mass = (pairs.a + pairs.b).mass
    best = pairs[ak.argmin(np.abs(mass - 91.2), axis=1, keepdims=True)]
    first, second = ak.firsts(best.a.index), ak.firsts(best.b.index)
    in_pair = (leptons.index == first) | (leptons.index == second)
    others = leptons[~in_pair]
    lead = others[ak.argmax(others.pt, axis=1, keepdims=True)]
    dphi = ak.firsts(lead.phi) - met_phi8
    out["q8"] = np.sqrt(2 * ak.firsts(lead.pt) * met8 * (1 - np.cos(dphi)))
    return out


def histograms(events, cls) -> dict:
    values = (queries_float64 if FLOAT64[0] else queries)(events)
    out = {}
    for name, (bins, lo, hi) in BINNING.items():  # set by main from --binning
        h = cls(hist.axis.Regular(bins, lo, hi, name=name), storage=hist.storage.Double())
        h.fill(values[name])
        out[name] = h
    return out


def run_dask(files: list[str], workers: int, step_size: int) -> tuple[dict, int]:
    import dask
    import hist.dask
    import uproot

    steps = {}  # what coffea's dataset_tools.preprocess gives: every file's chunks
    for f in files:
        entries = uproot.open(f)["Events"].num_entries
        steps[f] = {
            "object_path": "Events",
            "steps": [[a, min(a + step_size, entries)] for a in range(0, entries, step_size)],
        }
    events = NanoEventsFactory.from_root(steps, mode="dask").events()
    hists = histograms(events, hist.dask.Hist)
    hists, n = dask.compute(hists, ak.num(events, axis=0), scheduler="threads", num_workers=workers)
    return hists, int(n)


def run_single(files: list[str], workers: int, step_size: int) -> tuple[dict, int]:
    """Virtual mode in this process, one whole file at a time (no Runner, one core)."""
    total, n = None, 0
    for f in files:
        events = NanoEventsFactory.from_root({f: "Events"}, mode="virtual").events()
        hists = histograms(events, hist.Hist)
        total = hists if total is None else {k: total[k] + hists[k] for k in hists}
        n += len(events)
    return total, n


def run_virtual(files: list[str], workers: int, step_size: int) -> tuple[dict, int]:
    from coffea import processor

    class ADL(processor.ProcessorABC):
        def process(self, events):
            return {"hists": histograms(events, hist.Hist), "events": len(events)}

        def postprocess(self, accumulator):
            return accumulator

    runner = processor.Runner(
        executor=processor.FuturesExecutor(workers=workers, status=False),
        schema=NanoAODSchema,
        chunksize=step_size,
    )
    out = runner({"adl": {"files": files, "treename": "Events"}}, ADL())
    return out["hists"], int(out["events"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["dask", "virtual", "virtual-single"])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--step-size", type=int, default=100_000)
    parser.add_argument(
        "--binning", required=True, help='brewflow.adl.BINNING as JSON: {"q1": [100, 0, 200]}'
    )
    parser.add_argument("--float64", action="store_true", help="promote kinematics first")
    args = parser.parse_args()
    BINNING.update(json.loads(args.binning))
    FLOAT64[0] = args.float64
    begin = time.perf_counter()
    run = {"dask": run_dask, "virtual": run_virtual, "virtual-single": run_single}[args.mode]
    hists, events = run(args.files, args.workers, args.step_size)
    seconds = time.perf_counter() - begin
    print(
        json.dumps(
            {
                "seconds": seconds,
                "imports": IMPORTED - STARTED,
                "events": events,
                "histograms": {k: [int(v) for v in h.values(flow=True)] for k, h in hists.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
