"""Skims: a region's events to parquet or ROOT with a ledger; as inputs of a later run they give the
same histograms and the same normalisation as the original files."""

from __future__ import annotations

import numpy as np
import pytest

from brewflow.config import systematics_for, validate
from brewflow.files import temporary_folder
from brewflow.histograms import CUTFLOW, CUTFLOW_EVENTS
from brewflow.jobs import preprocess
from brewflow.jobs.analyze import run
from brewflow.jobs.skims import LEDGER, write_skim
from brewflow.results.documents import read_document
from brewflow.results.ledger import event_ledger


@pytest.fixture(scope="module", params=["parquet", "root"])
def skimmed(demo_set, tmp_path_factory, request):
    """The zmumu skim of the generated dy (and of the data) and a config reading it back."""
    out = tmp_path_factory.mktemp(f"skims-{request.param}")
    skim = {"region": "zmumu", "variables": ["mll"], "format": request.param}
    config = validate({**demo_set["config"], "skims": {"zmumu": skim}})
    ledgers, inventories = {}, {}
    for dataset in ("dy", "data"):
        inventories[dataset] = preprocess.preprocess(config, dataset)
        ledgers[dataset] = write_skim(
            config, "zmumu", dataset, inventories[dataset]["files"], out / dataset,
            progress_interval=None,
        )  # fmt: skip
    datasets = {
        f"{d}_skim": {
            **{k: v for k, v in config["datasets"][d].items() if k != "generator"},
            "files": [str(out / d / p["file"]) for p in ledgers[d]["parts"]],
        }
        for d in ("dy", "data")
    }
    systematics = {
        name: {**spec, "datasets": ["dy_skim"]} if "datasets" in spec else spec
        for name, spec in config["systematics"].items()
    }
    reread = {k: v for k, v in config.items() if k != "shapes"}  # its signal is not re-read
    reread = validate({**reread, "datasets": datasets, "systematics": systematics})
    return {"config": config, "reread": reread, "ledgers": ledgers, "out": out,
            "inventories": inventories}  # fmt: skip


def test_ledger_accounts_for_every_event_and_the_sum_of_weights(skimmed):
    ledger = read_document(skimmed["out"] / "dy" / LEDGER)
    inventory = skimmed["inventories"]["dy"]
    assert ledger == skimmed["ledgers"]["dy"]
    assert ledger["events_read"] == inventory["entries"]
    chunks = [[f["path"], a, b] for f in inventory["files"] for a, b in f["chunks"]]
    assert [p["source"] for p in ledger["parts"]] == chunks  # one part per chunk, in order
    assert sum(p["sumw"] for p in ledger["parts"]) == pytest.approx(inventory["sumw"], rel=1e-12)
    assert 0 < ledger["events"] < ledger["events_read"]
    assert {"Muon", "Jet", "genWeight", "run"} <= set(ledger["columns"])  # what the analysis reads
    assert ledger["provenance"]["inputs"]
    assert all(p["file"].endswith(f".{ledger['file_format']}") for p in ledger["parts"])


def test_root_skims_have_the_nanoaod_layout(skimmed):
    """A ROOT skim is NanoAOD-like: a counter per collection, Collection_field branches, the
    analysis variable as a branch; events as many as the ledger says."""
    import uproot

    ledger = skimmed["ledgers"]["dy"]
    if ledger["file_format"] != "root":
        pytest.skip("parquet skim")
    entries = 0
    for part in ledger["parts"]:
        with uproot.open(skimmed["out"] / "dy" / part["file"]) as f:
            tree = f["Events"]
            assert {"nMuon", "Muon_pt", "Muon_tightId", "nJet", "Jet_pt", "MET_pt", "run",
                    "genWeight", "mll"} <= set(tree.keys())  # fmt: skip
            assert tree.num_entries == part["events"]
            entries += tree.num_entries
            if part["events"]:
                n, pt = tree["nMuon"].array(), tree["Muon_pt"].array()
                assert (np.asarray(n) == np.asarray([len(x) for x in pt])).all()
    assert entries == ledger["events"] > 0


@pytest.mark.parametrize("dataset", ["dy", "data"])
def test_histograms_from_the_skim_equal_the_original(skimmed, dataset):
    """Every histogram of the skimmed region, every systematic (weights and, for MC, the
    jet variations whose selection the skim kept), equals the run on the original files; the
    skim's inventory carries the original sum of genWeight."""
    config, reread = skimmed["config"], skimmed["reread"]
    inventory = preprocess.preprocess(reread, f"{dataset}_skim")
    original_files = skimmed["inventories"][dataset]["files"]
    if dataset == "dy":
        assert inventory["sumw"] == pytest.approx(skimmed["inventories"]["dy"]["sumw"], 1e-12)
    systematics = [s for s in systematics_for(config, dataset) if "jes" not in s and "jer" not in s
                   and "met" not in s]  # fmt: skip
    original = run(config, dataset, systematics, original_files, progress_interval=None)
    again = run(reread, f"{dataset}_skim", systematics, inventory["files"],
                progress_interval=None)  # fmt: skip
    assert again.meta["events"] == skimmed["ledgers"][dataset]["events"]
    book = event_ledger(again, inventory)  # what merge checks (regression, issue 27 review:
    assert book["complete"]  # a skim's original sum of genWeight was taken as a forged one)
    for name, h in original.histograms.items():
        if name in (CUTFLOW, CUTFLOW_EVENTS) or "zmumu" not in h.axes["region"]:
            continue
        for systematic in systematics:
            a = h[{"region": "zmumu", "systematic": systematic}]
            b = again.histograms[name][{"region": "zmumu", "systematic": systematic}]
            x, y = a.view(flow=True), b.view(flow=True)  # the skim's parts are files of
            # their own: sums of weights add per file in another grouping (to rounding)
            np.testing.assert_allclose(x.value, y.value, rtol=1e-12, err_msg=name)
            np.testing.assert_allclose(x.variance, y.variance, rtol=1e-12, err_msg=name)
            assert x.value.sum() > 0


def test_stale_parts_of_a_killed_skim_are_never_mixed_in(skimmed, tmp_path):
    """Regression (issue 16.12): parts a killed skim left in its temporary folder made every
    later run of that skim fail ("7 parquet parts for 6 chunks")."""
    config = skimmed["config"]
    suffix = config["skims"]["zmumu"]["format"]
    stale = temporary_folder(tmp_path / "dy")  # where a killed run of this skim wrote
    (stale / "dy").mkdir(parents=True)
    for i in range(40):  # more parts than chunks, and names the writer uses
        (stale / "dy" / f"part{i}.{suffix}").write_text("half-written")
        (stale / "dy" / f"part-{i}.{suffix}").write_text("half-written")
    files = skimmed["inventories"]["dy"]["files"]
    ledger = write_skim(config, "zmumu", "dy", files, tmp_path / "dy", progress_interval=None)
    expected = skimmed["ledgers"]["dy"]
    assert [p["events"] for p in ledger["parts"]] == [p["events"] for p in expected["parts"]]
    assert not stale.exists()


def _skimmed_events(ledger: dict, folder) -> dict:
    """The columns run, luminosityBlock and mll of every part of a skim, concatenated."""
    import awkward as ak
    import uproot

    columns: dict = {"run": [], "luminosityBlock": [], "mll": []}
    for part in ledger["parts"]:
        path = folder / part["file"]
        if ledger["file_format"] == "root":
            with uproot.open(path) as f:
                arrays = f["Events"].arrays(list(columns), library="np")
        else:
            table = ak.from_parquet(path)
            arrays = {k: ak.to_numpy(table[k]) for k in columns} if len(table) else {}
        for k in columns:
            columns[k].extend(np.asarray(arrays.get(k, [])).tolist())
    return columns


def _reference_zmumu(config: dict, dataset: str) -> list[dict]:
    from tests import reference

    cuts = config["regions"]["zmumu"]["cuts"]
    return [e for e in reference.dataset_events(config, dataset)
            if all(e["cuts"][c] for c in cuts)]  # fmt: skip


def test_a_data_skim_holds_only_certified_events(skimmed):
    """Regression (issue 27.1): a data skim kept the events outside the golden JSON."""
    import json
    from pathlib import Path

    config, ledger = skimmed["config"], skimmed["ledgers"]["data"]
    golden = json.loads(Path(config["datasets"]["data"]["lumi_mask"]).read_text())
    columns = _skimmed_events(ledger, skimmed["out"] / "data")
    pairs = list(zip(columns["run"], columns["luminosityBlock"], strict=True))
    assert pairs
    assert all(any(a <= lumi <= b for a, b in golden.get(str(run), [])) for run, lumi in pairs)
    assert ledger["events"] == len(pairs) == len(_reference_zmumu(config, "data"))
    assert ledger["events_read"] == skimmed["inventories"]["data"]["entries"]
    assert 0 < ledger["events_certified"] < ledger["events_read"]  # every 10th block out


@pytest.mark.parametrize("blinding", ["region", "window"])
def test_a_data_skim_holds_no_blinded_event(skimmed, tmp_path, blinding):
    """Regression (issue 27.1): a skim of a blinded region held its data events; one of a
    region with a blinded window held the events inside the window. MC is never blinded."""
    base = skimmed["config"]
    if blinding == "region":
        regions = {**base["regions"], "zmumu": {**base["regions"]["zmumu"], "blind": True}}
        config = validate({**base, "regions": regions})
    else:
        mll = {**base["histograms"]["mll"], "blind": [85.0, 95.0]}
        config = validate({**base, "histograms": {**base["histograms"], "mll": mll}})
    files = skimmed["inventories"]["data"]["files"]
    ledger = write_skim(config, "zmumu", "data", files, tmp_path / "data", progress_interval=None)
    columns = _skimmed_events(ledger, tmp_path / "data")
    reference = _reference_zmumu(config, "data")
    if blinding == "region":
        assert ledger["blinded"] is True
        assert ledger["events"] == 0 == len(columns["mll"])
    else:
        outside = [e for e in reference if not 85 <= e["mll"] < 95]
        assert 0 < len(outside) < len(reference)  # the window held data events
        assert ledger["events"] == len(outside) == len(columns["mll"])
        assert not any(85 <= m < 95 for m in columns["mll"])
    mc = write_skim(config, "zmumu", "dy", skimmed["inventories"]["dy"]["files"],
                    tmp_path / "dy", progress_interval=None)  # fmt: skip
    assert mc["events"] == skimmed["ledgers"]["dy"]["events"]
    assert "blinded" not in mc
