"""RNTuple NanoAOD (CMS's next format): files whose ``Events`` is an RNTuple, written here with
uproot from the shared samples, are read like the TTrees: same column projection, and every
histogram of preprocess + analyze (lazy and eager), the ADL queries, inspect and skims equal
the TTree run bin for bin. Two layouts: flat fields (a TTree's branches as they are) and
CMSSW's (collections of records without counters, singleton records, trigger records of
booleans, a few top-level projections)."""

from __future__ import annotations

import json

import awkward as ak
import numpy as np
import pytest
import uproot

from brewflow.config import load_config, systematics_for, validate
from brewflow.jobs import preprocess
from brewflow.jobs.analyze import run
from brewflow.jobs.inspection import inspect_dataset
from brewflow.nanoevents import grouped, trees
from brewflow.nanoevents.reader import eager_events, lazy_events
from tests.helpers import ROOT

SAMPLES = {"DYJetsToLL_M50": "nano_dy.root", "SingleMuon_2018": "nano_dimuon.root"}


GROUPS = ("HLT", "Flag", "L1")
PROJECTED = ("Muon_pt", "Jet_eta", "HLT_IsoMu24", "MET_pt")  # top-level copies, as CMSSW can add


def write_rntuple(source, target, layout: str = "flat") -> None:
    """``target``: the events of ``source`` (every branch) as an RNTuple ``Events``, with flat
    fields or in CMSSW's layout (:func:`cmssw_fields`)."""
    ttree = uproot.open(source)["Events"]
    arrays = ttree.arrays(how=dict)
    fields = {name: arrays[name] for name in trees.branch_names(ttree)}
    with uproot.recreate(target) as out:
        out.mkrntuple("Events", fields if layout == "flat" else cmssw_fields(fields))


def cmssw_fields(branches: dict) -> dict:
    """A TTree NanoAOD's branches grouped as CMSSW's RNTuple output module writes them (cms-sw
    pull requests 48071, 51832): ``Muon`` a collection of records and no ``nMuon``, ``MET`` a
    record, ``HLT``/``Flag``/``L1`` records of booleans (``HLTriggerFinalPath`` under its own
    name), a list without members (``LHEPdfWeight``) a plain field without its counter, and
    the top-level projections of :data:`PROJECTED`."""
    collections = {n[1:] for n in branches if n.startswith("n") and f"{n[1:]}_" in
                   "|".join(branches)}  # fmt: skip
    collections = {c for c in collections if any(b.startswith(f"{c}_") for b in branches)}
    grouped: dict[str, dict] = {}
    out: dict = {}
    for name, array in branches.items():
        prefix, _, member = name.partition("_")
        group = next((g for g in GROUPS if name.startswith(g) and array.ndim == 1
                      and str(array.type.content) == "bool"), None)  # fmt: skip
        if name.startswith("n") and name[1:] in collections:
            continue  # the collection's offsets count its items
        if prefix in collections and member:
            grouped.setdefault(prefix, {})[member] = array
        elif group is not None:
            key = member if prefix == group and member else name
            grouped.setdefault(group, {})[key] = array
        elif member and array.ndim == 1 and prefix not in branches:
            grouped.setdefault(prefix, {})[member] = array
        else:
            out[name] = array
    for name, members in grouped.items():
        depth = 2 if name in collections else 1
        out[name] = ak.zip(members, depth_limit=depth)
    for name in PROJECTED:
        if name in branches:
            out[name] = branches[name]
    return out


@pytest.fixture(scope="module", params=["flat", "cmssw"])
def rntuples(request, shared_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"rntuple-{request.param}")
    out = {}
    for dataset, name in SAMPLES.items():
        write_rntuple(shared_data / "nanoaod" / name, folder / name, request.param)
        out[dataset] = str(folder / name)
    ntuple = uproot.open(out["DYJetsToLL_M50"])["Events"]
    assert trees.is_rntuple(ntuple)
    if request.param == "cmssw":
        names = {f.name for f in ntuple.fields}
        assert {"Muon", "MET", "HLT", "Flag"} <= names, names
        assert "nMuon" not in names
    return out


def _configs(monkeypatch, rntuples) -> tuple[dict, dict]:
    monkeypatch.chdir(ROOT)
    config = load_config(ROOT / "config" / "examples" / "cms_nanoaod.yaml")
    config["step_size"] = 15
    keep = ("lumi", "pileup", "muon_id", "jes", "jer")  # one of each kind of variation
    config["systematics"] = {k: v for k, v in config["systematics"].items() if k in keep}
    other = json.loads(json.dumps(config))
    for dataset, path in rntuples.items():
        other["datasets"][dataset]["files"] = [path]
    return validate(config), validate(other)


def test_rntuple_form_and_columns_equal_the_ttree(shared_data, rntuples):
    ttree = uproot.open(shared_data / "nanoaod" / "nano_dy.root")["Events"]
    rntuple = uproot.open(rntuples["DYJetsToLL_M50"])["Events"]
    assert sorted(trees.branch_names(rntuple)) == sorted(trees.branch_names(ttree))
    forms = [trees.branch_form(t) for t in (rntuple, ttree)]
    for field in forms[1].fields:  # the same form per branch (uproot writes fields sorted)
        if grouped.layout(rntuple)[field].counter:
            assert forms[0].content(field).to_dict()["primitive"] == "int32"
            continue  # a counter of CMSSW's layout: int32 (Int_t), this 2018 file's uint32
        assert forms[0].content(field).to_dict() == forms[1].content(field).to_dict(), field
    assert trees.cluster_edges(rntuple)[-1] == 40
    lazy = lazy_events([rntuples["DYJetsToLL_M50"]], step_size=15)
    reference = lazy_events([str(shared_data / "nanoaod" / "nano_dy.root")], step_size=15)
    for column in (
        "Muon.pt",
        "Jet.eta",
        "MET.pt",
        "genWeight",
        "HLT.IsoMu24",
        "Flag.goodVertices",
        "LHEPdfWeight",
        "Electron.pt",
    ):
        a, b = lazy, reference
        for field in column.split("."):
            a, b = a[field], b[field]
        assert a.compute(scheduler="sync").to_list() == b.compute(scheduler="sync").to_list()
    eager = eager_events(rntuples["DYJetsToLL_M50"], start=5, stop=25)
    assert eager.Muon.pt.to_list() == reference.Muon.pt.compute()[5:25].to_list()


def test_analysis_on_rntuple_equals_the_ttree_bin_for_bin(monkeypatch, rntuples):
    config, other = _configs(monkeypatch, rntuples)
    for dataset in config["datasets"]:
        systematics = systematics_for(config, dataset)
        expected = preprocess.preprocess(config, dataset)
        inventory = preprocess.preprocess(other, dataset)
        assert inventory["entries"] == expected["entries"] == 40
        assert inventory.get("sumw") == expected.get("sumw")
        assert inventory["files"][0]["chunks"] == expected["files"][0]["chunks"]
        reference = run(config, dataset, systematics, expected["files"], scheduler="sync")
        for lazy in (True, False):
            result = run(other, dataset, systematics, inventory["files"], lazy=lazy,
                         scheduler="sync")  # fmt: skip
            for name, h in reference.histograms.items():
                got = result.histograms[name].view(flow=True)
                assert np.array_equal(got, h.view(flow=True)), (dataset, name, lazy)


def test_inspect_reads_the_same_columns(monkeypatch, rntuples):
    config, other = _configs(monkeypatch, rntuples)
    for dataset in config["datasets"]:
        assert (
            inspect_dataset(other, dataset)["columns"]
            == inspect_dataset(config, dataset)["columns"]
        )


def test_adl_on_rntuple_equals_the_ttree(shared_data, rntuples, tmp_path):
    from brewflow import adl

    a = adl.run_files([rntuples["DYJetsToLL_M50"]], tmp_path / "a.json", progress=False)
    b = adl.run_files([str(shared_data / "nanoaod" / "nano_dy.root")], tmp_path / "b.json",
                      progress=False)  # fmt: skip
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert a["events"] == b["events"] == 40


def test_skim_of_rntuple_equals_the_skim_of_the_ttree(monkeypatch, rntuples, tmp_path):
    from brewflow.jobs.skims import write_skim

    config, other = _configs(monkeypatch, rntuples)
    for spec in (config, other):
        spec["skims"] = {"zmumu": {"region": "zmumu", "format": "parquet"}}
    spec = validate(config), validate(other)
    ledgers = []
    for i, cfg in enumerate(spec):
        files = preprocess.preprocess(cfg, "DYJetsToLL_M50")["files"]
        ledgers.append(write_skim(cfg, "zmumu", "DYJetsToLL_M50", files, tmp_path / str(i),
                                  progress_interval=None))  # fmt: skip
    assert [p["events"] for p in ledgers[0]["parts"]] == [p["events"] for p in ledgers[1]["parts"]]

    a = ak.from_parquet(sorted((tmp_path / "0").rglob("*.parquet")))
    b = ak.from_parquet(sorted((tmp_path / "1").rglob("*.parquet")))
    assert sorted(a.fields) == sorted(b.fields)  # an RNTuple's fields come sorted by name
    for field in a.fields:
        assert ak.to_list(a[field]) == ak.to_list(b[field]), field


def test_cmssw_layout_reads_only_the_members_needed(shared_data, tmp_path, monkeypatch):
    """A member of a collection reads that member's column, a lone counter the collection's
    narrowest member; trigger bits keep NanoAOD's flat names (``HLTriggerFinalPath`` too)."""
    path = tmp_path / "nano_dy.root"
    write_rntuple(shared_data / "nanoaod" / "nano_dy.root", path, "cmssw")
    read: list[set[str]] = []
    arrays = uproot.behaviors.RNTuple.RNTuple.arrays

    def spy(self, *args, **kwargs):
        out = arrays(self, *args, **kwargs)
        members = {f: ak.fields(out[f]) or [""] for f in out.fields}
        read.append({f"{f}.{m}" if m else f for f, names in members.items() for m in names})
        return out

    monkeypatch.setattr(uproot.behaviors.RNTuple.RNTuple, "arrays", spy)
    events = lazy_events([str(path)], step_size=40)
    reference = eager_events(str(shared_data / "nanoaod" / "nano_dy.root"))
    cases = {
        "Muon.pt": (lambda e: e.Muon.pt, {"Muon.pt"}),
        "nMuon": (lambda e: ak.num(e.Muon, axis=1), {"Muon.highPtId"}),  # one byte a muon
        "HLTriggerFinalPath": (lambda e: e.HLTriggerFinalPath, {"HLT.HLTriggerFinalPath"}),
        "L1Reco_step": (lambda e: e.L1Reco.step, {"L1.L1Reco_step"}),
        "Flag": (lambda e: e.Flag.goodVertices, {"Flag.goodVertices"}),
        "LHEPdfWeight": (lambda e: ak.num(e.LHEPdfWeight, axis=1), {"LHEPdfWeight"}),
    }
    for name, (column, expected) in cases.items():
        read.clear()
        got = column(events).compute(scheduler="sync")
        assert got.to_list() == column(reference).to_list(), name
        assert read == [expected], name


def test_plain_list_fields_get_the_counter_a_ttree_has(tmp_path):
    """Regression (issue 29 review): top-level list fields ``Foo_bar``, ``Foo_baz`` without a
    ``Foo`` collection got counters ``nFoo_bar``, ``nFoo_baz``; a TTree has one ``nFoo``."""
    values = ak.Array([[1.0, 2.0], [], [3.0]])
    path = tmp_path / "plain.root"
    with uproot.recreate(path) as out:
        out.mkrntuple("Events", {"Foo_bar": values, "Foo_baz": values * 2, "Weights": values,
                                 "run": np.array([1, 1, 2], np.uint32)})  # fmt: skip
    ntuple = uproot.open(path)["Events"]
    assert sorted(trees.branch_names(ntuple)) == sorted(
        ["Foo_bar", "Foo_baz", "nFoo", "Weights", "nWeights", "run"]
    )
    read = trees.read(ntuple, ["nFoo", "nWeights", "Foo_baz"], 1, 3)
    assert read["nFoo"].to_list() == read["nWeights"].to_list() == [0, 1]
    assert read["Foo_baz"].to_list() == [[], [6.0]]
