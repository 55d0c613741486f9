"""RNTuple NanoAOD (CMS's next format): files whose ``Events`` is an RNTuple, written here with
uproot from the shared samples, are read like the TTrees: same column projection, and every
histogram of preprocess + analyze (lazy and eager), the ADL queries, inspect and skims equal
the TTree run bin for bin."""

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
from brewflow.nanoevents import trees
from brewflow.nanoevents.reader import eager_events, lazy_events
from tests.helpers import ROOT

SAMPLES = {"DYJetsToLL_M50": "nano_dy.root", "SingleMuon_2018": "nano_dimuon.root"}


def write_rntuple(source, target) -> None:
    """``target``: the events of ``source`` (every branch) as an RNTuple ``Events``."""
    ttree = uproot.open(source)["Events"]
    arrays = ttree.arrays(how=dict)
    with uproot.recreate(target) as out:
        out["Events"] = {name: arrays[name] for name in trees.branch_names(ttree)}


@pytest.fixture(scope="module")
def rntuples(shared_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("rntuple")
    out = {}
    for dataset, name in SAMPLES.items():
        write_rntuple(shared_data / "nanoaod" / name, folder / name)
        out[dataset] = str(folder / name)
    assert trees.is_rntuple(uproot.open(out["DYJetsToLL_M50"])["Events"])
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
        assert forms[0].content(field).to_dict() == forms[1].content(field).to_dict(), field
    assert trees.cluster_edges(rntuple)[-1] == 40
    lazy = lazy_events([rntuples["DYJetsToLL_M50"]], step_size=15)
    reference = lazy_events([str(shared_data / "nanoaod" / "nano_dy.root")], step_size=15)
    for column in ("Muon.pt", "Jet.eta", "MET.pt", "genWeight"):
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
