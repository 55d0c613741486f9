from __future__ import annotations

import pytest
import uproot

from brewflow import adl
from brewflow.cli import main
from brewflow.config import validate
from brewflow.jobs import inspection as inspect
from brewflow.nanoevents.reader import NanoReader


@pytest.fixture
def no_event_data(monkeypatch):
    """Any attempt to read branch data fails."""

    def refuse(*args, **kwargs):
        raise AssertionError("event data was read")

    monkeypatch.setattr(NanoReader, "__call__", refuse)
    monkeypatch.setattr(uproot.behaviors.TBranch.HasBranches, "arrays", refuse)
    monkeypatch.setattr(uproot.behaviors.TBranch.TBranch, "array", refuse)


def test_dataset_columns_and_layers_without_reading(demo_set, no_event_data):
    config = validate(demo_set["config"])
    mc = inspect.inspect_dataset(config, "dy")
    data = inspect.inspect_dataset(config, "data")
    assert mc["files"] == 2
    assert "genWeight" in mc["columns"]
    assert "genWeight" not in data["columns"]
    assert {"nMuon", "Muon_pt", "HLT_IsoMu24", "Jet_btagDeepFlavB"} <= set(mc["columns"])
    assert "Jet_rawFactor" in mc["columns"]  # the JEC is re-applied: it scales pt and mass
    plain = validate(
        {k: v for k, v in demo_set["config"].items() if k != "jets"}
        | {"systematics": {k: v for k, v in config["systematics"].items() if v["type"] == "weight"}}
    )
    assert "Jet_mass" not in inspect.inspect_dataset(plain, "dy")["columns"]  # demo: no masses
    assert mc["input_layers"] == 1
    assert mc["layers_after"] < mc["layers_before"]


def test_adl_q8_columns(demo_set, no_event_data):
    path = demo_set["config"]["datasets"]["ww"]["files"][0]
    report = adl.inspect([path], queries=["q8"])
    assert set(report["columns"]) == {
        f"{c}_{f}" for c in ("Muon", "Electron") for f in ("pt", "eta", "phi", "mass", "charge")
    } | {"nMuon", "nElectron", "MET_pt", "MET_phi"}
    assert report["layers_after"] < report["layers_before"]


def test_cli(demo_set, capsys, no_event_data):
    assert main(["inspect", str(demo_set["path"]), "--dataset", "ttbar"]) == 0
    out = capsys.readouterr().out
    assert "ttbar" in out
    assert "Muon_tightId" in out
    assert main(["inspect"]) == 2


@pytest.mark.parametrize("dataset", ["data", "dy"])
def test_columns_are_exactly_what_analyze_reads(demo_set, monkeypatch, dataset):
    """Regression (issue 27.1): for data with a golden JSON, inspect left out run and
    luminosityBlock, which the lumi mask reads. The prediction is what a job reads."""
    from brewflow.jobs import preprocess
    from brewflow.jobs.analyze import run
    from brewflow.nanoevents import trees

    config = validate(demo_set["config"])
    predicted = set(inspect.inspect_dataset(config, dataset)["columns"])
    read: set[str] = set()
    original = trees.read

    def recording(ttree, branches, start, stop):
        read.update(branches)
        return original(ttree, branches, start, stop)

    monkeypatch.setattr(trees, "read", recording)
    files = preprocess.preprocess(config, dataset)["files"]
    run(config, dataset, "nominal", files, scheduler="sync", progress_interval=None)
    assert read == predicted
    if dataset == "data":
        assert {"run", "luminosityBlock"} <= predicted
