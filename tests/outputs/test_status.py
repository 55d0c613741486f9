"""The event ledger through the workflow: a dataset with an unreadable file under
``on_bad_file: skip`` stops at normalisation until ``allow_partial`` is set, then its outputs
say they are partial; ``brewflow status`` shows what was read and skipped, and why."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import uproot
import yaml

from brewflow.cli import main
from brewflow.results.model import load
from tests.helpers import snakemake, tiny_workflow_config

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("shared_data")]


def _config(workdir: Path, shared: Path, allow_partial: bool) -> Path:
    config = tiny_workflow_config(Path("results/generated"))
    nanoaod = shared / "nanoaod"
    truncated = workdir / "truncated.root"
    data = (nanoaod / "nano_dy.root").read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    config["datasets"] = {
        "data": {
            "files": [str(nanoaod / "nano_dimuon.root")],
            "is_data": True,
            "lumi_mask": "all",
        },
        "dy": {
            "files": [str(nanoaod / "nano_dy.root"), str(truncated)],
            "xsec": 6077.2,
            "on_bad_file": "skip",
            "allow_partial": allow_partial,
        },
    }
    config["events_per_job"] = None
    config.pop("shapes")
    config.pop("models")  # the demo BDT is trained on generated MC, which this run has not
    config["generate"].pop("bdt")
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _status(workdir: Path, capsys, monkeypatch) -> dict[str, dict]:
    monkeypatch.chdir(workdir)
    assert main(["status", "--json"]) == 0
    return {e["dataset"]: e for e in json.loads(capsys.readouterr().out)}


def test_partial_dataset_is_refused_then_normalised_and_labelled(
    shared_data, tmp_path, capsys, monkeypatch
):
    _config(tmp_path, shared_data, allow_partial=False)
    refused = snakemake(tmp_path)
    assert refused.returncode != 0
    log = (tmp_path / "logs" / "scale" / "dy.log").read_text()
    assert "dataset 'dy' is incomplete (1/2 files read, 40/40 events" in log
    assert "allow_partial: true" in log
    assert not (tmp_path / "results" / "scale" / "dy.json").exists()
    status = _status(tmp_path, capsys, monkeypatch)
    assert status["data"]["state"] == "complete"
    assert status["dy"]["state"] == "incomplete: not normalised (allow_partial: false)"
    (skipped,) = status["dy"]["skipped"]
    assert skipped["path"].endswith("truncated.root")
    assert skipped["start"] is None
    assert "not a readable ROOT file" in skipped["reason"]
    assert status["dy"]["files"] == {"expected": 2, "read": 1, "partly_read": 0, "skipped": 1}

    _config(tmp_path, shared_data, allow_partial=True)
    allowed = snakemake(tmp_path)
    assert allowed.returncode == 0, allowed.stderr[-3000:]
    assert "rule analyze" not in allowed.stderr  # only normalisation and what follows rerun
    status = _status(tmp_path, capsys, monkeypatch)
    assert status["dy"]["state"] == "partial, normalised (allow_partial)"
    assert status["dy"]["fraction"] == 0.5
    with uproot.open(shared_data / "nanoaod" / "nano_dy.root") as f:
        sumw = float(np.sum(f["Events"]["genWeight"].array(library="np"), dtype=np.float64))
    scaled = load(tmp_path / "results" / "scale" / "dy.json")
    config = yaml.safe_load((tmp_path / "config.yaml").read_text())
    expected = 6077.2 * config["luminosity"] / sumw  # normalised by the events read
    assert scaled.meta["scale_factor"] == pytest.approx(expected, rel=1e-12)
    assert load(tmp_path / "results" / "stack" / "dy.json").meta["partial"] == {"dy": 0.5}
    table = (tmp_path / "results" / "cutflow" / "zmumu.md").read_text()
    assert "partial input (allow_partial): dy 50.0%" in table
    assert (tmp_path / "results" / "plots" / "zmumu" / "mll.png").is_file()
    assert main(["status", str(tmp_path / "results")]) == 0
    printed = capsys.readouterr().out
    assert "dy: skipped" in printed
    assert "truncated.root" in printed


def test_the_ledger_lists_the_datasets_of_the_run_only(demo_set, tmp_path):
    """Regression (issue 27 review): after a dataset was removed from the config, `brewflow
    status` and the report's ledger still listed it (from its old inventory) as complete."""
    from brewflow.config import validate
    from brewflow.jobs import preprocess
    from brewflow.outputs import status
    from brewflow.pipeline import write_resolved
    from brewflow.results.inventory import write_inventory

    config = validate(demo_set["config"])
    for name in ("dy", "ww"):
        write_inventory(preprocess.preprocess(config, name), tmp_path / "results" / "preprocess"
                        / f"{name}.json")  # fmt: skip
    without = {k: v for k, v in config["datasets"].items() if k != "ww"}
    shapes = {"histograms": config["shapes"]["histograms"], "signal": ["top"]}  # ww was it
    write_resolved(validate({**config, "datasets": without, "shapes": shapes}),
                   tmp_path / ".brewflow" / "config.json")  # fmt: skip
    assert [e["dataset"] for e in status.collect(tmp_path / "results")] == ["dy"]
    assert [e["dataset"] for e in status.collect(tmp_path / "results", ["dy", "ww"])] == [
        "dy", "ww"]  # fmt: skip
