from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from brewflow.config import ConfigError, load_config
from brewflow.pipeline import (
    analyze_outputs,
    dataset_fingerprint,
    generated_files,
    plot_fingerprint,
    plot_outputs,
    processes,
    shapes_outputs,
    table_outputs,
    write_resolved,
)
from tests.helpers import DEMO_CONFIG, ROOT


@pytest.fixture
def config() -> dict:
    return load_config(DEMO_CONFIG)


def test_targets_fan_out(config):
    outputs = analyze_outputs(config, "{dataset}/{systematic}")
    # data: nominal; dy, ww: nominal + 11 systematics x 2 (lumi, ps_isr, pileup, muon_id,
    # electron_id, btag_hf, btag_lf, btag_cferr1, jes, jer, met_unclustered); ttbar: + ps_fsr
    assert len(outputs) == 1 + 23 + 25 + 23
    assert "data/nominal" in outputs
    assert "ttbar/ps_fsrDown" in outputs
    assert "ww/ps_fsrUp" not in outputs
    assert "dy/pileupUp" in outputs
    assert processes(config) == {
        "data": ["data"],
        "dy": ["dy"],
        "top": ["ttbar"],
        "diboson": ["ww"],
    }
    plots = plot_outputs(config, "{region}/{file}")
    assert "ttbar_emu/jet_pt.pdf" in plots
    assert "ttbar_emu/jet_pt_systematics.pdf" in plots
    assert "zmumu/jet_pt.pdf" not in plots
    assert len(plots) == (7 * 2 + 2) * 3  # 7 in both regions, jet_pt and bdt in e mu; x 3 files
    assert table_outputs(config, "{region}.{ext}")[:3] == ["zmumu.csv", "zmumu.md", "zmumu.tex"]
    assert len(generated_files(config)) == 11 + 3  # + golden JSON, corrections payload, BDT
    assert shapes_outputs(config, "{histogram}.{ext}") == [
        *("mll.root", "mll.txt", "mll.pyhf.json", "njets.root", "njets.txt", "njets.pyhf.json")
    ]


def test_fingerprints_change_only_with_what_a_job_depends_on(config):
    before = {d: dataset_fingerprint(config, d) for d in config["datasets"]}
    changed = copy.deepcopy(config)
    changed["datasets"]["ww"]["files"] = changed["datasets"]["ww"]["files"][:1]
    after = {d: dataset_fingerprint(changed, d) for d in config["datasets"]}
    assert [d for d in before if before[d] != after[d]] == ["ww"]
    relabel = copy.deepcopy(config)
    relabel["datasets"]["ww"]["label"] = "Diboson"
    relabel["datasets"]["ww"]["xsec"] = 13.0
    assert {d: dataset_fingerprint(relabel, d) for d in config["datasets"]} == before
    assert plot_fingerprint(relabel, "mll") != plot_fingerprint(config, "mll")
    fsr = copy.deepcopy(config)
    fsr["systematics"]["ps_fsr"]["description"] = "changed"
    fsr_prints = {d: dataset_fingerprint(fsr, d) for d in config["datasets"]}
    assert [d for d in before if before[d] != fsr_prints[d]] == ["ttbar"]


def test_resolved_config_is_stable(config, tmp_path):
    path = write_resolved(config, tmp_path / "config.json")
    mtime = (tmp_path / "config.json").stat().st_mtime_ns
    assert write_resolved(config, tmp_path / "config.json") == path
    assert (tmp_path / "config.json").stat().st_mtime_ns == mtime  # not rewritten
    assert json.loads((tmp_path / "config.json").read_text())["config"] == config
    assert load_config(path) == config  # taken as validated: no schema check
    altered = json.loads((tmp_path / "config.json").read_text())
    altered["config"]["luminosity"] = -1.0  # edited by hand: validated again, and refused
    (tmp_path / "config.json").write_text(json.dumps(altered))
    with pytest.raises(ConfigError, match="luminosity"):
        load_config(path)


def test_analyze_resources_follow_the_events_a_job_reads(tmp_path, demo_set):
    from brewflow.config import validate
    from brewflow.pipeline import analyze_resources
    from brewflow.results.inventory import write_inventory as save

    inventory = tmp_path / "dy.json"
    save({"entries": 4_000_000, "files": []}, inventory)
    config = validate({**demo_set["config"], "step_size": 100_000})
    # 1500 MB + 1000 MB per thread; 3 x 4M events / (20k/s x 2 threads) = 5 min, + 5 min
    assert analyze_resources(config, inventory, threads=2) == {"mem_mb": 3500, "runtime": 10}
    assert analyze_resources(config, inventory, 2, attempt=2) == {"mem_mb": 7000, "runtime": 20}
    grouped = validate({**config, "events_per_job": 400_000})  # a job reads <= 500k events
    assert analyze_resources(grouped, inventory, threads=1)["runtime"] == 6


def test_config_file_is_read_safely_and_configfile_templates_are_refused(tmp_path):
    """Regression (issue 16.8): a yte template passed to Snakemake ran Python on
    ``snakemake -n``. Through ``--config file=`` (what the README shows) it is plain YAML and
    refused; through ``--configfile`` Snakemake evaluates it before the workflow starts (not
    preventable from a Snakefile) and brewflow then refuses it, naming the way to pass it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.helpers import ROOT

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.yaml"
    evil.write_text(f'__use_yte__: true\nluminosity: ?__import__("pathlib").Path("{marker}")'
                    ".touch() or 1.0\n")  # fmt: skip
    base = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path)]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    run = lambda *a: subprocess.run([*base, "-n", "--cores", "1", *a], capture_output=True,  # noqa: E731
                                    text=True, env=env, check=False)  # fmt: skip
    safe = run("--config", f"file={evil}")
    assert safe.returncode != 0
    output = safe.stdout + safe.stderr
    assert "Additional properties are not allowed ('__use_yte__' was unexpected)" in output
    assert not marker.exists()
    unsafe = run("--configfile", str(evil))
    assert unsafe.returncode != 0
    output = unsafe.stdout + unsafe.stderr
    assert "is a yte template (__use_yte__)" in output
    assert "pass yours with --config file=PATH" in output


def test_fingerprint_files_change_only_with_their_value(tmp_path, monkeypatch):
    """What a job depends on in the config is an input file: first written dated 1970 (a new
    checkout or a removed .brewflow reruns nothing), kept while the value is the same, and
    rewritten (newer than any output) when it changes."""
    import os

    from brewflow.pipeline import fingerprint_file

    monkeypatch.chdir(tmp_path)
    path = fingerprint_file("dataset", "dy", "abc")
    assert os.stat(path).st_mtime == 0
    assert fingerprint_file("dataset", "dy", "abc") == path
    assert os.stat(path).st_mtime == 0  # same value: untouched
    fingerprint_file("dataset", "dy", "abd")
    assert os.stat(path).st_mtime > 1e9
    assert Path(path).read_text() == "abd\n"


def test_rules_have_no_params_for_snakemake_to_compare():
    """Every rule's params are functions of ``input`` (Snakemake does not compare those): with
    one plain param, Snakemake imports pandas in every DAG build to compare it (0.5 s)."""
    import re

    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        text = smk.read_text()
        for block in re.findall(r"\n(\s+)params:\n((?:\1\s+.*\n)+)", text):
            for line in block[1].splitlines():
                name = re.match(r"\s+(\w+)=", line)
                if name:
                    assert "lambda w, input" in line, f"{smk.name}: param {name.group(1)}"
