"""Shared fixtures: a small generated demo set, and the real NanoAOD samples in ../shared."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from brewflow import histograms as H
from brewflow.demo import train_demo_bdt
from brewflow.demo_payloads import write_demo_corrections
from brewflow.generate import generate_data, generate_mc
from brewflow.results import Result, load
from brewflow.workflow import snakemake_command

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
DEMO_CONFIG = ROOT / "config" / "config.yaml"

SMALL_EVENTS = 1500
SMALL_LUMI = 0.5  # pb^-1 -> about 2000 data events


@pytest.fixture(autouse=True)
def _environment():
    """Each test starts from the session's environment: a dask LocalCluster of processes sets
    OMP_NUM_THREADS=1 (and other thread limits) in os.environ, which later subprocesses (e.g.
    Slurm started by tests/test_cluster.py) would otherwise inherit."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(autouse=True)
def _preprocess_cache(tmp_path_factory, monkeypatch) -> None:
    """Tests keep preprocessing's per-file cache in a temporary folder, not the checkout."""
    from brewflow import preprocess

    monkeypatch.setattr(preprocess, "CACHE", tmp_path_factory.getbasetemp() / "preprocess-cache")


def snakemake(
    workdir: Path, *args: str, cores: int = 2, env: dict | None = None, **kwargs
) -> subprocess.CompletedProcess:
    """Run this repository's workflow on ``workdir/config.yaml`` (brewflow's bin dir on PATH)."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(
        snakemake_command(workdir, workdir / "config.yaml", cores, *args),
        capture_output=True, text=True, env={**os.environ, "PATH": path, **(env or {})},
        check=False, **kwargs,
    )  # fmt: skip


def tiny_workflow_config(directory: Path) -> dict:
    """A small, fast workflow: 3 datasets, 2 systematics, 1 histogram, all variations of a
    dataset in one job, chunk groups of 700 events (2 per dataset)."""
    config = small_config(directory)
    config["datasets"] = {k: config["datasets"][k] for k in ("data", "dy", "ttbar")}
    config["systematics"] = {k: config["systematics"][k] for k in ("lumi", "jes")}
    config["histograms"] = {"mll": config["histograms"]["mll"]}
    config["shapes"]["histograms"] = ["mll"]
    config["plots"]["formats"] = ["png"]
    config["fuse_systematics"] = True
    config["events_per_job"] = 700
    return config


def assert_same_results(first: Path, second: Path, datasets) -> None:
    """Every merged histogram of two workflow runs is bin-identical (values and variances)."""
    for dataset in datasets:
        a = load(first / "results" / "merge" / f"{dataset}.json")
        b = load(second / "results" / "merge" / f"{dataset}.json")
        assert a.systematics == b.systematics
        assert a.meta["events"] == b.meta["events"]
        for name, h in a.histograms.items():
            assert np.array_equal(h.view(flow=True), b.histograms[name].view(flow=True)), (
                f"{dataset} {name}"
            )


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real CMS samples and payloads (skipped where ../shared is absent)."""
    if not (SHARED / "nanoaod" / "nano_dy.root").is_file():
        pytest.skip(f"real NanoAOD samples not found at {SHARED} (only CI and developers have it)")
    return SHARED


def small_config(directory: Path) -> dict:
    """The demo config, shrunk: fewer events, files under ``directory``."""
    config = yaml.safe_load(DEMO_CONFIG.read_text())
    config = copy.deepcopy(config)
    config["luminosity"] = SMALL_LUMI
    config["step_size"] = 700
    payload = str(directory / "corrections" / "demo.json.gz")
    bdt = str(directory / "bdt.ubj")
    config["generate"] = {"events": SMALL_EVENTS, "seed": 7, "corrections": payload, "bdt": bdt}
    config["models"] = {"bdt": bdt}
    config.pop("skims")  # tests that skim say how (tests/test_skims.py)
    for spec in [*config["corrections"].values(), config["jets"]]:
        spec["file"] = payload
    for name, dataset in config["datasets"].items():
        n = 2
        dataset["files"] = [str(directory / name / f"{name}_{i}.root") for i in range(n)]
        if "lumi_mask" in dataset:
            dataset["lumi_mask"] = str(directory / "golden.json")
    return config


@pytest.fixture(scope="session")
def demo_set(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A small generated demo dataset and its config (files written once per session)."""
    directory = tmp_path_factory.mktemp("demo")
    config = small_config(directory)
    write_demo_corrections(config["generate"]["corrections"])
    for dataset in config["datasets"].values():
        model = dataset["generator"]
        if model == "data":
            generate_data(dataset["files"], SMALL_LUMI, seed=7, lumi_mask=dataset["lumi_mask"])
        else:
            generate_mc(model, dataset["files"], SMALL_EVENTS, seed=7)
    train_demo_bdt(config, seed=7)
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return {"config": config, "path": path, "directory": directory}


DEFS = {"x": {"variable": "x", "bins": 3, "start": 0.0, "stop": 3.0}}
REGIONS = {"r": ["c1"]}


def make_result(dataset: str, systematic: str, x, w, *, process="p", is_data=False) -> Result:
    """A small result with one histogram x (3 bins on [0, 3]) and one cut (x > 1)."""
    hists = H.book(DEFS, ["r"], [systematic], lazy=False)
    hists.update(H.book_cutflow(REGIONS, [systematic], lazy=False))
    x, w = np.asarray(x, float), np.asarray(w, float)
    hists["x"].fill(region="r", systematic=systematic, x=x, weight=w)
    passed = (x > 1).astype(int)
    hists[H.CUTFLOW].fill(region="r", systematic=systematic, passed=passed, weight=w)
    hists[H.CUTFLOW_EVENTS].fill(region="r", systematic=systematic, passed=passed)
    return Result(dataset, process, is_data, hists, {"r": ["c1"]}, {"events": len(x)})
