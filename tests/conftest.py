"""Shared fixtures: a small generated demo set, and the real NanoAOD samples in ../shared."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from brewflow.demo.generate import generate_data, generate_mc
from brewflow.demo.payloads import write_demo_corrections
from brewflow.demo.physics import train_demo_bdt
from tests.helpers import SHARED, SMALL_EVENTS, SMALL_LUMI, small_config


@pytest.fixture(autouse=True)
def _environment():
    """Each test starts from the session's environment: a dask LocalCluster of processes sets
    OMP_NUM_THREADS=1 (and other thread limits) in os.environ, which later subprocesses (e.g.
    Slurm started by tests/jobs/test_clusters.py) would otherwise inherit."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(autouse=True)
def _preprocess_cache(tmp_path_factory, monkeypatch) -> None:
    """Tests keep preprocessing's per-file cache in a temporary folder, not the checkout."""
    from brewflow.jobs import preprocess

    monkeypatch.setattr(preprocess, "CACHE", tmp_path_factory.getbasetemp() / "preprocess-cache")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real CMS samples and payloads (skipped where ../shared is absent)."""
    if not (SHARED / "nanoaod" / "nano_dy.root").is_file():
        pytest.skip(f"real NanoAOD samples not found at {SHARED} (only CI and developers have it)")
    return SHARED


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
