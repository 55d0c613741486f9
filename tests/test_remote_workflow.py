"""The workflow on remote data, against real XRootD servers: the real-data example read over
``root://`` (logical file names through two redirectors, the first one down) and over
``http://`` writes the local run's histograms, byte for byte; the URLs carry credentials (user
info, an ``authz`` token: the servers ignore them), which no file of the run holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from brewflow.results.model import load
from brewflow.secrets import ENV
from tests.helpers import LFNS, ROOT, assert_same_results, snakemake

pytestmark = pytest.mark.slow

DATASETS = {"DYJetsToLL_M50": "nano_dy.root", "SingleMuon_2018": "nano_dimuon.root"}
SECRET = "SECRETTOKEN"


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
    user = f"root://cms:{SECRET}@"
    config["datasets"]["DYJetsToLL_M50"].update(files=[dy], redirectors=[
        xrootd.redirector(s).replace("root://", user) for s in ("dead", "a")])  # fmt: skip
    config["datasets"]["SingleMuon_2018"]["files"] = [
        xrootd.url(data, "b").replace("root://", user)]  # fmt: skip
    over_root = _run(tmp_path / "root", config)

    config["datasets"]["DYJetsToLL_M50"].pop("redirectors")
    config["datasets"]["DYJetsToLL_M50"]["files"] = [
        xrootd.url(dy, "a", "http") + f"?authz={SECRET}"]  # fmt: skip
    config["datasets"]["SingleMuon_2018"]["files"] = [
        xrootd.url(data, "b", "http") + f"?authz={SECRET}"]  # fmt: skip
    over_http = _run(tmp_path / "http", config)

    for remote in (over_root, over_http):
        assert_same_results(local, remote, DATASETS)
        for process in ("dy", "SingleMuon_2018"):
            a = (local / "results" / "stack" / f"{process}.json").read_text()
            b = (remote / "results" / "stack" / f"{process}.json").read_text()
            assert load(local / "results" / "stack" / f"{process}.json").histograms.keys()
            assert _histograms(a) == _histograms(b), process
        _assert_no_secret(remote)
    # the dead redirector is met by the first job reading DY (preprocess); the jobs after it
    # start at the redirector that answered (issue 29: replica health shared by the run)
    dead = xrootd.redirector("dead").removeprefix("root://").rstrip("/")
    tried = sorted(str(p.relative_to(over_root)) for p in (over_root / "logs").rglob("*.log")
                   if dead in p.read_text())  # fmt: skip
    assert tried == ["logs/preprocess/DYJetsToLL_M50.log"], tried
    (health,) = (over_root / ".brewflow" / "health").iterdir()
    assert f"root://{dead}" == json.loads(health.read_text())["server"]
    merged = load(over_root / "results" / "merge" / "DYJetsToLL_M50.json")
    replicas = {c["replica"] for c in merged.meta["ledger"]["replicas"]}
    assert replicas == {xrootd.url(dy, "a").replace("root://", "root://***@")}
    ledger = (over_root / "results" / "summary" / "ledger.html").read_text()
    assert f"{xrootd.redirector('a').rstrip('/')}: 3 chunk(s)".replace("//", "//***@") in ledger
    merged = load(over_http / "results" / "merge" / "SingleMuon_2018.json")
    assert merged.meta["files"] == [xrootd.url(data, "b", "http") + "?authz=***"]


def _assert_no_secret(run: Path) -> None:
    """No file of the run (results, logs, brewflow's and Snakemake's state, the tree metadata
    cache) holds the credential; the run's resolved config says where the jobs read it."""
    import os

    cache = Path(os.environ["BREWFLOW_CACHE"])
    files = [p for top in (run / "results", run / "logs", run / ".brewflow",
                           run / ".snakemake" / "log", cache)
             for p in top.rglob("*") if p.is_file()]  # fmt: skip
    assert len(files) > 50
    assert [p for p in files if SECRET.encode() in p.read_bytes()] == []
    resolved = (run / ".brewflow" / "config.json").read_text()
    config = (run / "config.yaml").resolve()
    assert f'"credentials_from": [\n  "{config}"\n ]' in resolved
    assert ENV not in os.environ  # the jobs were not given the credential by the test


def _histograms(text: str) -> str:
    """The histograms of a result document (its metadata names the files, which differ)."""
    import json

    return json.dumps(json.loads(text)["histograms"], sort_keys=True)


def test_chunks_skipped_while_a_server_is_down_are_filled_in_later(xrootd, shared_data, tmp_path):
    """Issue 29: a run with ``on_bad_file: skip`` while the server of DY's file is down
    analyzes and merges DY with its events skipped (and refuses to normalise it); the next
    ``snakemake``, with the server back, reruns DY's analyze job alone, reads what was
    skipped, and gives the results of a run that never missed them, bit for bit; a run after
    that has nothing to do."""
    config = _example(shared_data)
    xrootd.start("flaky", xrootd.folders["a"])
    dy = xrootd.url(LFNS[DATASETS["DYJetsToLL_M50"]], "flaky")
    config["datasets"]["DYJetsToLL_M50"]["files"] = [dy]
    config["datasets"]["SingleMuon_2018"]["files"] = [
        str(shared_data / "nanoaod" / DATASETS["SingleMuon_2018"])]  # fmt: skip
    config["on_bad_file"] = "skip"
    complete = _run(tmp_path / "complete", config)  # the server never down

    workdir = tmp_path / "flaky"
    workdir.mkdir()
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    first = snakemake(workdir, "--until", "preprocess")
    assert first.returncode == 0, first.stderr[-4000:]
    xrootd.halt("flaky")
    try:
        down = snakemake(workdir, "--keep-going")
    finally:
        xrootd.start("flaky", xrootd.folders["flaky"], xrootd.ports["flaky"])
    assert down.returncode != 0  # DY incomplete: not normalised (no allow_partial)
    log = (workdir / "logs" / "scale" / "DYJetsToLL_M50.log").read_text()
    assert "the next `snakemake` reads the skipped chunks again" in log, log
    merged = load(workdir / "results" / "merge" / "DYJetsToLL_M50.json")
    assert not merged.meta["ledger"]["complete"]  # the server was down: DY's chunks skipped
    assert merged.meta["ledger"]["events"]["read"] == 0
    assert (workdir / ".brewflow" / "incomplete" / "analyze" / "DYJetsToLL_M50").is_dir()

    back = snakemake(workdir)
    assert back.returncode == 0, back.stderr[-4000:]
    analyzed = [line for line in back.stderr.splitlines()
                if line.startswith(("rule analyze", "localrule analyze"))]  # fmt: skip
    assert len(analyzed) == 1, analyzed  # DY's job alone (data's is up to date)
    assert_same_results(complete, workdir, DATASETS)
    for process in ("dy", "SingleMuon_2018"):
        a = (complete / "results" / "stack" / f"{process}.json").read_text()
        b = (workdir / "results" / "stack" / f"{process}.json").read_text()
        assert _histograms(a) == _histograms(b), process
    merged = load(workdir / "results" / "merge" / "DYJetsToLL_M50.json")
    assert merged.meta["ledger"]["complete"]
    assert not list((workdir / ".brewflow" / "incomplete" / "analyze").rglob("*.json"))

    quiet = snakemake(workdir, "-n")
    assert quiet.returncode == 0, quiet.stderr[-4000:]
    assert "Nothing to be done" in quiet.stdout + quiet.stderr
