"""Shared fixtures: a small generated demo set, and the real NanoAOD samples in ../shared."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from brewflow.generate import generate_data, generate_mc

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
DEMO_CONFIG = ROOT / "config" / "config.yaml"

SMALL_EVENTS = 1500
SMALL_LUMI = 0.5  # pb^-1 -> about 2000 data events


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
    config["generate"] = {"events": SMALL_EVENTS, "seed": 7}
    for name, dataset in config["datasets"].items():
        n = 2
        dataset["files"] = [str(directory / name / f"{name}_{i}.root") for i in range(n)]
    return config


@pytest.fixture(scope="session")
def demo_set(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A small generated demo dataset and its config (files written once per session)."""
    directory = tmp_path_factory.mktemp("demo")
    config = small_config(directory)
    for dataset in config["datasets"].values():
        model = dataset["generator"]
        if model == "data":
            generate_data(dataset["files"], SMALL_LUMI, seed=7)
        else:
            generate_mc(model, dataset["files"], SMALL_EVENTS, seed=7)
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return {"config": config, "path": path, "directory": directory}
