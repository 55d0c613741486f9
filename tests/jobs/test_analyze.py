"""The analysis runner against the independent per-event reference (tests/reference.py)."""

from __future__ import annotations

import dask_awkward as dak
import numpy as np
import pytest

from brewflow.config import ConfigError, object_variation, systematics_for, validate
from brewflow.jobs import preprocess
from brewflow.jobs.analyze import run
from brewflow.jobs.build import build
from brewflow.jobs.preprocess import InputError
from brewflow.nanoevents.reader import lazy_events
from brewflow.results.arithmetic import split_systematics
from brewflow.results.inventory import group_chunks
from tests import reference
from tests.helpers import check_result


@pytest.fixture(scope="module")
def config(demo_set) -> dict:
    return validate(demo_set["config"])


@pytest.fixture(scope="module")
def inventories(config) -> dict:
    return {name: preprocess.preprocess(config, name) for name in config["datasets"]}


@pytest.fixture(scope="module")
def expected(config) -> dict:
    return {name: reference.dataset_events(config, name) for name in config["datasets"]}


def _same(a, b) -> None:
    """Same histograms; weighted sums may differ only by float summation order (partitions)."""
    for name, h in a.histograms.items():
        x, y = h.view(flow=True), b.histograms[name].view(flow=True)
        if x.dtype.names:
            np.testing.assert_allclose(x["value"], y["value"], rtol=1e-12, err_msg=name)
            np.testing.assert_allclose(x["variance"], y["variance"], rtol=1e-12, err_msg=name)
        else:
            np.testing.assert_array_equal(x, y, err_msg=name)


@pytest.mark.parametrize("dataset", ["data", "dy", "ttbar", "ww"])
def test_nominal_lazy_and_eager_equal_the_reference(config, inventories, expected, dataset):
    files = inventories[dataset]["files"]
    lazy = run(config, dataset, "nominal", files, scheduler="sync")
    eager = run(config, dataset, "nominal", files, lazy=False)
    check_result(lazy, config, expected[dataset], "nominal")
    _same(lazy, eager)
    if dataset == "data":  # the golden JSON leaves out every tenth lumi block
        assert lazy.meta["events_certified"] == len(expected[dataset])
        assert 0.8 * lazy.meta["events"] < len(expected[dataset]) < lazy.meta["events"]
    else:
        assert lazy.meta["events"] == len(expected[dataset])
        assert lazy.meta["sumw"] == pytest.approx(
            sum(e["genWeight"] for e in expected[dataset]), rel=1e-9
        )


@pytest.mark.parametrize(
    "systematic",
    [
        *("ps_isrUp", "ps_fsrDown", "lumiUp", "pileupDown", "muon_idUp", "electron_idDown"),
        *("btag_hfUp", "btag_lfDown", "btag_cferr1Up"),
        *("jesUp", "jesDown", "jerUp", "met_unclusteredDown"),
    ],
)
def test_systematic_variations_equal_the_reference(config, inventories, expected, systematic):
    result = run(
        config, "ttbar", systematic, inventories["ttbar"]["files"], scheduler="threads", workers=2
    )
    assert result.systematics == [systematic]
    check_result(result, config, expected["ttbar"], systematic)


def test_fan_out_per_dataset(config):
    assert systematics_for(config, "data") == ["nominal"]
    assert systematics_for(config, "dy") == [
        "nominal",
        *("lumiUp", "lumiDown", "ps_isrUp", "ps_isrDown"),
        *("pileupUp", "pileupDown", "muon_idUp", "muon_idDown"),
        *("electron_idUp", "electron_idDown", "btag_hfUp", "btag_hfDown"),
        *("btag_lfUp", "btag_lfDown", "btag_cferr1Up", "btag_cferr1Down"),
        *("jesUp", "jesDown", "jerUp", "jerDown", "met_unclusteredUp", "met_unclusteredDown"),
    ]
    assert len(systematics_for(config, "ttbar")) == 25


@pytest.mark.parametrize("lazy", [True, False])
def test_all_variations_in_one_graph_equal_separate_runs(config, inventories, expected, lazy):
    """fuse_systematics: one graph fills every variation; each equals its own run and the
    reference."""
    files = inventories["ttbar"]["files"]
    systematics = systematics_for(config, "ttbar")
    fused = run(config, "ttbar", systematics, files, scheduler="sync", lazy=lazy)
    assert fused.systematics == systematics
    parts = split_systematics(fused)
    assert list(parts) == systematics
    for systematic in ("nominal", "pileupUp", "jesDown", "jerUp", "met_unclusteredUp"):
        alone = run(config, "ttbar", systematic, files, scheduler="sync")
        _same(parts[systematic], alone)
        check_result(parts[systematic], config, expected["ttbar"], systematic)
    up = fused.project("njets", "ttbar_emu", "jesUp").values()
    assert not np.array_equal(up, fused.project("njets", "ttbar_emu", "jesDown").values())


def test_stacked_object_variations_equal_one_run_each(config, inventories, expected):
    """Lazily, six object variations stacked in one analysis run: each block equals the
    reference and the run per variation; the unclustered deltas (needed by two of the blocks
    only) are read."""
    files = inventories["ttbar"]["files"]
    shapes = [s for s in systematics_for(config, "ttbar") if object_variation(config, s)]
    assert len(shapes) == 6
    stacked = validate({**config, "stack_object_variations": 2})
    events = lazy_events(
        {f["path"]: f["tree"] for f in files}, steps={f["path"]: f["chunks"] for f in files}
    )
    graph = build(stacked, "ttbar", ["nominal", *shapes], events)
    columns = {
        c for cols in dak.necessary_columns(*graph.histograms.values()).values() for c in cols
    }
    assert {"MET_MetUnclustEnUpDeltaX", "MET_MetUnclustEnUpDeltaY"} <= columns
    result = run(stacked, "ttbar", ["nominal", *shapes], files, scheduler="sync")
    parts = split_systematics(result)
    for systematic in shapes:
        check_result(parts[systematic], config, expected["ttbar"], systematic)
        _same(parts[systematic], run(config, "ttbar", systematic, files, scheduler="sync"))


def test_systematic_not_applicable_is_refused(config, inventories):
    with pytest.raises(ConfigError, match="'ps_fsrUp' does not apply to dataset 'dy'"):
        run(config, "dy", "ps_fsrUp", inventories["dy"]["files"])


def test_unknown_cut_and_variable_are_named(config, inventories):
    regions = {**config["regions"], "r": {"cuts": ["trigger", "no_such_cut"]}}
    bad = validate({**config, "regions": regions})
    with pytest.raises(ConfigError, match=r"regions\.r\.cuts.*'no_such_cut'"):
        run(bad, "ww", "nominal", inventories["ww"]["files"])
    histograms = {"h": {"variable": "nope", "bins": 2, "start": 0, "stop": 1}}
    without_shapes = {k: v for k, v in config.items() if k != "shapes"}
    bad = validate({**without_shapes, "histograms": histograms})
    with pytest.raises(ConfigError, match=r"histograms\.h\.variable.*'nope'"):
        run(bad, "ww", "nominal", inventories["ww"]["files"])


def _real_config(config: dict, shared, mc_file: str, **settings) -> dict:
    """The demo config on real NanoAOD: ``mc_file`` as MC and SingleMuon 2018 as data."""
    nanoaod = shared / "nanoaod"
    datasets = {
        "dy": {"files": [str(nanoaod / mc_file)], "xsec": 6077.2},
        "data": {
            "files": [str(nanoaod / "nano_dimuon.root")],
            "is_data": True,
            "lumi_mask": "all",
        },  # its one lumi block (no 2018 golden JSON in ../shared)
    }
    config = {k: v for k, v in config.items() if k != "shapes"}  # its signal is not here
    return validate({**config, "datasets": datasets, "systematics": {}, **settings})


def test_real_nanoaod_runs_and_matches_eager(shared_data, config):
    """The demo analysis on real CMS NanoAOD (Run 2 DY MC and SingleMuon data)."""
    real = _real_config(config, shared_data, "nano_dy.root", step_size=15)
    for dataset in ("dy", "data"):
        files = preprocess.preprocess(real, dataset)["files"]
        lazy = run(real, dataset, "nominal", files, scheduler="sync")
        eager = run(real, dataset, "nominal", files, lazy=False)
        assert lazy.meta["events"] == 40
        _same(lazy, eager)
    flow = lazy.cutflow("zmumu")
    assert flow["events"][0] == 40
    assert flow["events"][1] <= 40


def test_empty_file_gives_empty_results(shared_data, config):
    real = _real_config(config, shared_data, "nano_dy_empty.root")
    record = preprocess.inspect_file(
        str(shared_data / "nanoaod" / "nano_dy_empty.root"), "Events", is_data=False, dataset="dy"
    )
    assert record["entries"] == 0
    result = run(real, "dy", "nominal", [record])
    assert result.cutflow("zmumu")["events"] == [0.0] * 6
    assert result.histograms["mll"].sum().value == 0


def test_example_config_for_real_nanoaod(shared_data, monkeypatch):
    """The README's real-data example (2018 UL payloads: pileup, muon, electron, b-tag shape,
    JEC/JES/JER) runs all variations in one graph and equals the per-event reference."""
    from brewflow.config import load_config
    from tests.helpers import ROOT

    monkeypatch.chdir(ROOT)
    config = load_config(ROOT / "config" / "examples" / "cms_nanoaod.yaml")
    systematics = systematics_for(config, "DYJetsToLL_M50")
    assert {"pileupUp", "muon_idDown", "btag_cferr1Up", "jes_FlavorQCDDown", "jerUp"} <= set(
        systematics
    )
    for dataset in config["datasets"]:
        inventory = preprocess.preprocess(config, dataset)
        result = run(config, dataset, systematics_for(config, dataset), inventory["files"])
        expected = reference.dataset_events(config, dataset)
        for systematic in systematics_for(config, dataset):
            assert result.cutflow("zmumu", systematic)["events"][0] == 40
            check_result(result, config, expected, systematic)
    initial = {s: result.cutflow("zmumu", s)["sumw"][0] for s in ("nominal", "btag_hfUp")}
    assert initial["btag_hfUp"] != initial["nominal"]  # the real b-tag payload is exercised


def test_golden_json_on_real_data_counts_what_it_drops(shared_data, config, tmp_path):
    """A certificate with the 2018 run but not its lumi block (205) drops every event and the
    count says so; one with the block keeps all 40. (The shared 2017 certificate, without the
    run at all, is another era: refused at preprocess, tests/jobs/test_preprocess.py.)"""
    real = _real_config(config, shared_data, "nano_dy.root")
    golden = shared_data / "lumi" / "Cert_294927-306462_13TeV_EOY2017ReReco_Collisions17_JSON.txt"
    (tmp_path / "other_blocks.json").write_text('{"315267": [[1, 204], [206, 300]]}')
    own = tmp_path / "golden.json"
    own.write_text('{"315267": [[200, 210]]}')
    for certificate, kept in ((golden, None), (tmp_path / "other_blocks.json", 0), (own, 40)):
        datasets = {**real["datasets"]}
        datasets["data"] = {**datasets["data"], "lumi_mask": str(certificate)}
        masked = validate({**real, "datasets": datasets})
        if kept is None:
            with pytest.raises(InputError, match=r"run 315267, golden JSON .* certifies runs"):
                preprocess.preprocess(masked, "data")
            continue
        files = preprocess.preprocess(masked, "data")["files"]
        result = run(masked, "data", "nominal", files, scheduler="sync")
        assert result.meta["events"] == 40
        assert result.meta["events_certified"] == kept
        assert result.cutflow("zmumu")["events"][0] == kept


def test_analysis_must_return_analysis_output(config, inventories, monkeypatch):
    import brewflow.demo

    monkeypatch.setattr(brewflow.demo, "analysis", lambda events, context: {"not": "output"})
    with pytest.raises(ConfigError, match=r"returned dict; it must return .*AnalysisOutput"):
        run(config, "ww", "nominal", inventories["ww"]["files"], lazy=False)


def test_missing_input_file_is_named(config, inventories, tmp_path):
    files = [*inventories["ww"]["files"], {**inventories["ww"]["files"][0], "path": "gone.root"}]
    with pytest.raises(InputError, match=r"dataset 'ww', file 'gone\.root': does not exist"):
        run(config, "ww", "nominal", files)


@pytest.mark.parametrize("dataset", ["data", "ttbar"])
def test_chunk_groups_add_up_to_the_reference(config, inventories, expected, dataset):
    from brewflow.results.ledger import add_chunks, check_complete

    files = inventories[dataset]["files"]
    whole = run(config, dataset, ["nominal", "jesUp"][: 1 + (dataset != "data")], files)
    parts = []
    for i, group in enumerate(group_chunks(files, 1)):  # one chunk per job
        lazy = i % 2 == 0  # eager and lazy jobs add up alike
        parts.append(run(config, dataset, whole.systematics, group, lazy=lazy))
    assert len(parts) == sum(len(f["chunks"]) for f in files) > 2
    total = add_chunks(parts)
    check_complete(total, inventories[dataset])
    assert total.meta["events"] == whole.meta["events"] == inventories[dataset]["entries"]
    assert total.meta.get("events_certified") == whole.meta.get("events_certified")
    _same(total, whole)  # counts exact; sums of weights up to summation order
    for systematic in whole.systematics:
        check_result(total, config, expected[dataset], systematic)


@pytest.mark.parametrize("lazy", [True, False])
def test_a_blinded_window_leaves_its_data_events_out_of_every_cutflow_row(
    config, inventories, expected, lazy
):
    """Regression (issue 27.1): the data events inside a blinded window were counted in the
    first cutflow row (as failing the first cut), and the review found that any row, against
    another region's or the certified total, counts the window's events: a region with a
    window has no data cutflow; its histograms hold the events outside the window, lazily and
    eagerly."""
    mll = {**config["histograms"]["mll"], "blind": [85.0, 95.0], "regions": ["zmumu"]}
    blinded = validate({**config, "histograms": {**config["histograms"], "mll": mll}})
    cuts = blinded["regions"]["zmumu"]["cuts"]
    kept = [e for e in expected["data"] if e["mll"] is None or not 85 <= e["mll"] < 95]
    assert len(kept) < len(expected["data"])  # the window holds data events
    options = {"scheduler": "sync"} if lazy else {"lazy": False}
    result = run(blinded, "data", "nominal", inventories["data"]["files"], **options)
    assert not any(result.cutflow("zmumu")["events"])  # no row
    passing = [e for e in kept if all(e["cuts"][c] for c in cuts)]
    assert result.project("met", "zmumu").values(flow=True).sum() == len(passing)
    assert result.project("mll", "zmumu").values(flow=True).sum() == len(passing)
    other = result.cutflow("ttbar_emu")  # mll is not filled there: nothing left out
    assert other["events"][0] == len(expected["data"])


@pytest.mark.parametrize("lazy", [True, False])
def test_a_region_showing_another_regions_window_events_is_refused(
    config, inventories, expected, lazy
):
    """Regression (issue 28 review): the demo's Z window (|m_ll - 91.2| < 15) reached into the
    search's blinded window [105, 145) of another region: zmumu's plots showed its data
    events. A region whose selected data hold events of another region's blinded window phase
    space (its cuts and its window) is refused, naming both, not how many."""
    dimuon = ["trigger", "lead_muon", "two_muons", "opposite_charge", "high_mass"]
    regions = {
        **config["regions"],
        "dimuon": {"cuts": dimuon},
        "dimuon_pre": {"cuts": dimuon[:4]},
    }  # a preselection holding the window
    search = {"variable": "mll", "edges": [100.0, 150.0], "blind": [100.0, 150.0],
              "regions": ["dimuon"]}  # fmt: skip
    blinded = validate({**config, "regions": regions,
                        "histograms": {**config["histograms"], "mll_search": search}})  # fmt: skip
    inside = [e for e in expected["data"] if all(e["cuts"][c] for c in dimuon)
              and 100 <= e["mll"] < 150]  # fmt: skip
    assert inside  # the window holds data events, which dimuon_pre selects
    options = {"scheduler": "sync"} if lazy else {"lazy": False}
    with pytest.raises(ConfigError, match=r"regions\.dimuon_pre.*blinded window of region "
                       r"'dimuon' \(mll in \[100, 150\)\)") as err:  # fmt: skip
        run(blinded, "data", "nominal", inventories["data"]["files"], **options)
    assert str(len(inside)) not in str(err.value)
    # disjoint regions (the preselection without the search's phase space) are fine
    regions["dimuon_pre"] = {"cuts": [*dimuon[:4], "z_window"]}
    narrow = {**search, "blind": [107.0, 150.0]}  # above the Z window's reach
    fine = validate({**config, "regions": regions,
                     "histograms": {**config["histograms"], "mll_search": narrow}})  # fmt: skip
    run(fine, "data", "nominal", inventories["data"]["files"], **options)


def test_a_file_rewritten_in_place_with_its_mtime_set_back_is_refused(config, tmp_path):
    """Regression (issue 27 review): a local file replaced after preprocessing by another with
    as many entries, its mtime set back, was read silently (Snakemake saw no change; the
    provenance kept the old UUID). Every read checks the inventory's ROOT UUID."""
    import os
    import shutil

    original = config["datasets"]["dy"]["files"]
    copies = [tmp_path / "a.root", tmp_path / "b.root"]
    for source, copy in zip(original, copies, strict=True):
        shutil.copy2(source, copy)
    dataset = {**config["datasets"]["dy"], "files": [str(c) for c in copies]}
    moved = validate({**config, "datasets": {**config["datasets"], "dy": dataset}})
    files = preprocess.preprocess(moved, "dy")["files"]
    assert files[0]["entries"] == files[1]["entries"]  # the same number of entries
    run(moved, "dy", "nominal", files, scheduler="sync", progress_interval=None)
    times = os.stat(copies[0])
    shutil.copyfile(copies[1], copies[0])  # other events, same size class, same entries
    os.utime(copies[0], ns=(times.st_atime_ns, times.st_mtime_ns))
    for lazy in (True, False):
        with pytest.raises(InputError, match=r"a\.root.*UUID"):
            run(moved, "dy", "nominal", files, lazy=lazy, scheduler="sync",
                progress_interval=None)  # fmt: skip
