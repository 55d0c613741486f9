"""The workflow on remote data, against real XRootD servers: the real-data example read over
``root://`` (logical file names through two redirectors, the first one down) and over
``http://`` writes the local run's histograms, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from brewflow.results.model import load
from tests.helpers import LFNS, ROOT, assert_same_results, snakemake

pytestmark = pytest.mark.slow

DATASETS = {"DYJetsToLL_M50": "nano_dy.root", "SingleMuon_2018": "nano_dimuon.root"}


def _example(shared_data: Path) -> dict:
    """The real-data example with absolute payload paths, 15-event chunks, three
    systematics, every dataset's variations in one job."""
    config = yaml.safe_load((ROOT / "config" / "examples" / "cms_nanoaod.yaml").read_text())
    for spec in [*config["corrections"].values(), config["jets"]]:
        spec["file"] = str((ROOT / spec["file"]).resolve())
    config["step_size"] = 15
    config["fuse_systematics"] = True
    config["systematics"] = {k: config["systematics"][k] for k in ("lumi", "pileup", "jes")}
    config["remote"] = {"timeout": 5, "retries": 0}
    config["plots"] = {"formats": ["png"]}
    return config


def _run(workdir: Path, config: dict) -> Path:
    workdir.mkdir()
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    run = snakemake(workdir)
    assert run.returncode == 0, run.stderr[-4000:]
    return workdir


def test_workflow_over_root_and_http_equals_the_local_run(xrootd, shared_data, tmp_path):
    config = _example(shared_data)
    for dataset, name in DATASETS.items():
        config["datasets"][dataset]["files"] = [str(shared_data / "nanoaod" / name)]
    local = _run(tmp_path / "local", config)

    dy, data = LFNS[DATASETS["DYJetsToLL_M50"]], LFNS[DATASETS["SingleMuon_2018"]]
    config["datasets"]["DYJetsToLL_M50"].update(
        files=[dy], redirectors=[xrootd.redirector("dead"), xrootd.redirector("a")]
    )
    config["datasets"]["SingleMuon_2018"]["files"] = [xrootd.url(data, "b")]
    over_root = _run(tmp_path / "root", config)

    config["datasets"]["DYJetsToLL_M50"].pop("redirectors")
    config["datasets"]["DYJetsToLL_M50"]["files"] = [xrootd.url(dy, "a", "http")]
    config["datasets"]["SingleMuon_2018"]["files"] = [xrootd.url(data, "b", "http")]
    over_http = _run(tmp_path / "http", config)

    for remote in (over_root, over_http):
        assert_same_results(local, remote, DATASETS)
        for process in ("dy", "SingleMuon_2018"):
            a = (local / "results" / "stack" / f"{process}.json").read_text()
            b = (remote / "results" / "stack" / f"{process}.json").read_text()
            assert load(local / "results" / "stack" / f"{process}.json").histograms.keys()
            assert _histograms(a) == _histograms(b), process
    merged = load(over_root / "results" / "merge" / "DYJetsToLL_M50.json")
    replicas = {c["replica"] for c in merged.meta["ledger"]["replicas"]}
    assert replicas == {xrootd.url(dy, "a")}
    ledger = (over_root / "results" / "summary" / "ledger.html").read_text()
    assert f"{xrootd.redirector('a').rstrip('/')}: 3 chunk(s)" in ledger


def _histograms(text: str) -> str:
    """The histograms of a result document (its metadata names the files, which differ)."""
    import json

    return json.dumps(json.loads(text)["histograms"], sort_keys=True)
