"""Two eras, a blinded region and the fit, through one Snakemake run: each era normalised with
its own luminosity and corrections, uncorrelated nuisances varying their era only, blinded data
in no output, and the fit recovering the signal strength injected into the pseudo-data."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import uproot
import yaml

from brewflow.config import for_dataset, validate
from brewflow.results.model import load
from tests import reference
from tests.helpers import DEMO_CONFIG, snakemake

pytestmark = pytest.mark.slow

INJECTED = 1.5
EVENTS = 3000
ERAS = {"2017": 3.0, "2018": 4.0}  # luminosities in pb^-1


def era_config() -> dict:
    """The demo config, small: two eras of data, Drell-Yan and ttbar (ttbar scaled by
    INJECTED in the data); region ttbar_emu fitted, its copy ttbar_blind blinded, and a
    blinded m_ll window in zmumu."""
    config = copy.deepcopy(yaml.safe_load(DEMO_CONFIG.read_text()))
    for era, lumi in ERAS.items():
        config["eras"][era]["luminosity"] = lumi
    keep = {"data", "dy", "ttbar", "data_2017", "dy_2017", "ttbar_2017"}
    config["datasets"] = {k: v for k, v in config["datasets"].items() if k in keep}
    for name, spec in config["datasets"].items():
        spec["files"] = [f"results/generated/{name}/{name}_{i}.root" for i in range(2)]
    config["generate"].update(events=EVENTS, inject={"ttbar": INJECTED})
    config["systematics"] = {k: config["systematics"][k] for k in ("lumi", "pileup", "jes")}
    config["regions"]["ttbar_blind"] = {**config["regions"]["ttbar_emu"], "blind": True}
    config["histograms"] = {
        "mll": {**config["histograms"]["mll"], "blind": [85, 95], "regions": ["zmumu"]},
        "met": config["histograms"]["met"],
        "nj": {"variable": "njets", "edges": [1.5, 7.5], "regions": ["ttbar_emu"]},
        "nj_blind": {"variable": "njets", "edges": [1.5, 7.5], "regions": ["ttbar_blind"]},
    }
    config["shapes"] = {"histograms": ["nj", "nj_blind"], "signal": ["top"]}
    config["fit"] = {"histograms": ["nj", "nj_blind"], "impacts": 2}
    config["plots"] = {"formats": ["png"], "label": "Test", "systematics": False}
    config["fuse_systematics"] = True
    config["step_size"] = 4000
    for key in ("skims", "models"):
        config.pop(key)
    config["generate"].pop("bdt")
    return config


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    workdir = tmp_path_factory.mktemp("eras")
    config = era_config()
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    done = snakemake(workdir)
    assert done.returncode == 0, done.stderr[-4000:]
    resolved = json.loads((workdir / ".brewflow" / "config.json").read_text())["config"]
    return {"workdir": workdir, "config": resolved}


def _genweight(workdir: Path, files: list[str]) -> float:
    return float(sum(uproot.open(workdir / f)["Events"]["genWeight"].array(library="np")
                     .astype(np.float64).sum() for f in files))  # fmt: skip


def test_each_era_is_normalised_with_its_luminosity(run):
    workdir, config = run["workdir"], run["config"]
    for name, spec in config["datasets"].items():
        scaled = load(workdir / "results" / "scale" / f"{name}.json")
        assert scaled.meta["era"] == spec["era"]
        if spec["is_data"]:
            continue
        expected = spec["xsec"] * ERAS[spec["era"]] / _genweight(workdir, spec["files"])
        assert scaled.meta["scale_factor"] == pytest.approx(expected, rel=1e-12)


def test_histograms_use_the_era_corrections(run):
    """dy_2017 against an eager computation with 2017's pileup payload (not 2018's)."""
    workdir, config = run["workdir"], run["config"]
    view = for_dataset(config, "dy_2017")
    assert view["corrections"]["pileup"]["file"].endswith("demo_2017.json.gz")
    events = reference.dataset_events(view, "dy_2017", workdir)
    merged = load(workdir / "results" / "merge" / "dy_2017.json")
    cuts = config["regions"]["zmumu"]["cuts"]
    edges = np.linspace(50, 150, 41)
    values, variances = reference.histogram(events, "mll", cuts, edges, "nominal")
    got = merged.project("mll", "zmumu")
    np.testing.assert_allclose(got.values(), values, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got.variances(), variances, rtol=1e-9, atol=1e-9)


def test_combination_sums_eras_and_uncorrelated_nuisances_vary_their_era(run):
    workdir = run["workdir"]
    combined = load(workdir / "results" / "stack" / "dy.json")
    eras = {e: load(workdir / "results" / "eras" / e / "stack" / "dy.json") for e in ERAS}
    assert "lumi_2017Up" in eras["2017"].systematics
    assert "lumi_2018Up" not in eras["2017"].systematics
    assert "jesUp" in eras["2017"].systematics  # correlated: one nuisance
    total = sum(e.project("met", "zmumu").values() for e in eras.values())
    np.testing.assert_allclose(combined.project("met", "zmumu").values(), total, rtol=1e-12)
    for era in ERAS:
        for syst in (f"lumi_{era}Up", f"pileup_{era}Down"):
            shift = combined.project("met", "zmumu", syst).values() - total
            own = eras[era].project("met", "zmumu", syst).values()
            own = own - eras[era].project("met", "zmumu").values()
            np.testing.assert_allclose(shift, own, rtol=1e-9, atol=1e-9)  # the other era: 0
    card = (workdir / "results" / "shapes" / "nj.txt").read_text().splitlines()
    lumi = next(line for line in card if line.startswith("lumi_2017 shape"))
    bins = next(line for line in card if line.startswith("bin ") and "dy" not in line)
    assert bins.split()[1:] == ["ttbar_emu_2017", "ttbar_emu_2018"]
    assert lumi.split()[2:] == ["1", "1", "-", "-"]  # top, dy in 2017; nothing in 2018


def test_blinded_data_reaches_no_output(run):
    workdir, config = run["workdir"], run["config"]
    for name in ("data", "data_2017"):
        merged = load(workdir / "results" / "merge" / f"{name}.json")
        for histogram in ("nj_blind", "_cutflow", "_cutflow_events"):
            h = merged.histograms[histogram][{"region": "ttbar_blind"}]
            assert not np.any(h.values(flow=True)), (name, histogram)  # never filled
        # the m_ll window: no data event inside it in any zmumu output
        events = [e for e in reference.dataset_events(config, name, workdir)
                  if all(e["cuts"][c] for c in config["regions"]["zmumu"]["cuts"])]  # fmt: skip
        outside = [e for e in events if not 85 <= e["mll"] < 95]
        assert len(outside) < len(events)  # the window held data
        flow = merged.cutflow("zmumu")
        assert flow["events"][-1] == len(outside)
        met = merged.project("met", "zmumu").values(flow=True)
        assert met.sum() == len(outside)
    table = (workdir / "results" / "cutflow" / "ttbar_blind.md").read_text()
    assert "data" not in table.split("## Events per dataset")[1]
    assert "Data blinded" not in table  # a table says it in its title
    assert "(data blinded)" in table
    assert "data" in (workdir / "results" / "cutflow" / "ttbar_emu.csv").read_text()
    workspace = json.loads((workdir / "results" / "shapes" / "nj_blind.pyhf.json").read_text())
    for channel, observed in zip(workspace["channels"], workspace["observations"], strict=True):
        mc = np.sum([s["data"] for s in channel["samples"]], axis=0)
        np.testing.assert_allclose(observed["data"], mc, rtol=1e-12)  # the Asimov
    blind_fit = json.loads((workdir / "results" / "fit" / "nj_blind" / "fit.json").read_text())
    assert blind_fit["blinded_channels"] == ["ttbar_blind_2017", "ttbar_blind_2018"]
    assert abs(blind_fit["mu"] - 1.0) < 1e-6
    data_counts = {str(int(load(workdir / "results" / "merge" / f"{n}.json")
                           .project("nj", "ttbar_emu").values().sum()))
                   for n in ("data", "data_2017")}  # fmt: skip
    for page in (workdir / "results" / "summary").glob("*.html"):
        text = page.read_text()
        assert "ttbar_blind" not in text or all(f">{c}<" not in text for c in data_counts)


def test_fit_recovers_the_injected_signal_strength(run):
    workdir = run["workdir"]
    result = json.loads((workdir / "results" / "fit" / "nj" / "fit.json").read_text())
    assert result["data"] == "observed"
    assert result["channels"] == ["ttbar_emu_2017", "ttbar_emu_2018"]
    assert abs(result["mu"] - INJECTED) < 2 * result["mu_error"]
    assert result["mu_error"] < 0.5
    plots = ("pulls.png", "impacts.png", "postfit/ttbar_emu_2017.png", "prefit/ttbar_emu_2018.png")
    for name in plots:
        assert (workdir / "results" / "fit" / "nj" / name).stat().st_size > 1000
    for era in ERAS:
        assert (workdir / "results" / "eras" / era / "plots" / "zmumu" / "mll.png").is_file()
        assert (workdir / "results" / "eras" / era / "cutflow" / "zmumu.md").is_file()


def test_config_is_valid():
    validate(era_config())
