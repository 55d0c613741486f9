from __future__ import annotations

import json
from pathlib import Path

import pytest

from brewflow.config import ConfigError, load_config, nuisance_names, validate
from brewflow.config.specs import job_spec
from brewflow.pipeline import (
    analyze_outputs,
    fit_files,
    generated_files,
    plot_outputs,
    processes,
    search_files,
    shapes_outputs,
    stack_files,
    stack_inputs,
    table_outputs,
    write_resolved,
)
from tests.helpers import DEMO_CONFIG, ROOT, flat_demo_config


@pytest.fixture
def config() -> dict:
    """The demo config as one implicit era (no ``eras``)."""
    return validate(flat_demo_config())


def test_eras_fan_out_per_era_and_combined():
    config = load_config(DEMO_CONFIG)  # two eras, 2017 and 2018
    outputs = analyze_outputs(config, "{dataset}/{systematic}")
    # per era: data, then MC with 11 systematics x 2 (+ ps_fsr on ttbar: the process top, both
    # eras): Drell-Yan in two mass bins, ttbar, WW, the search's three Z' hypotheses
    assert len(outputs) == (1 + 25 + 23 * 6) * 2
    assert processes(config)["data"] == ["data", "data_2017"]
    assert processes(config)["dy"] == ["dy", "dy_m100", "dy_2017", "dy_m100_2017"]
    assert stack_files(config, "2017") == [
        f"results/eras/2017/stack/{p}.json"
        for p in ("data", "dy", "top", "diboson", "zprime_m110", "zprime_m125", "zprime_m140")
    ]
    assert stack_inputs(config, "dy") == [
        "results/eras/2017/stack/dy.json", "results/eras/2018/stack/dy.json"
    ]  # fmt: skip
    assert stack_inputs(config, "dy", "2017") == [
        "results/scale/dy_2017.json", "results/scale/dy_m100_2017.json"
    ]  # fmt: skip
    plots = plot_outputs(config, "results/plots/{region}/{file}")
    assert "results/eras/2017/plots/ttbar_emu/jet_pt.png" in plots
    assert "results/eras/2017/plots/ttbar_emu/jet_pt_systematics.pdf" not in plots  # combined
    assert "results/plots/ttbar_emu/jet_pt_systematics.pdf" in plots
    drawn = sum(len(d.get("regions") or config["regions"]) for d in config["histograms"].values())
    assert drawn == 5 + 6 + 7 + 3  # zmumu, ww_emu, ttbar_emu, dimuon
    assert len(plots) == drawn * 3 + 2 * drawn * 2  # combined (+ systematics) + 2 eras x 2 formats
    tables = table_outputs(config, "results/cutflow/{region}.{ext}")
    assert len(tables) == 3 * 4 * 3
    assert "results/eras/2018/cutflow/zmumu.md" in tables
    assert fit_files(config, "njets_fit")[:3] == [
        f"results/fit/njets_fit/fit.{e}" for e in ("json", "md", "tex")
    ]
    assert "results/fit/njets_fit/postfit/ttbar_emu_2017.png" in fit_files(config, "njets_fit")
    assert search_files(config, "zprime")[-3:] == [
        f"results/search/zprime/zprime_m{m}.pyhf.json" for m in (110, 125, 140)
    ]
    assert "results/generated/golden_2017.json" in generated_files(config)
    assert "results/generated/corrections/demo_2017.json.gz" in generated_files(config)


def test_uncorrelated_nuisances_are_named_per_era():
    config = load_config(DEMO_CONFIG)
    names = nuisance_names(config, "dy_2017")
    assert names["lumi"] == "lumi_2017"  # scale: uncorrelated by default
    assert names["jer"] == "jer_2017"
    assert names["pileup"] == "pileup_2017"  # correlated: false in the config
    assert names["jes"] == "jes"  # correlated by default
    assert names["muon_id"] == "muon_id"
    assert nuisance_names(validate(flat_demo_config()), "dy")["lumi"] == "lumi"  # no eras
    before = job_spec("scale", config, dataset="dy_2017").document()
    config["systematics"]["jes"]["correlated"] = False
    assert job_spec("scale", config, dataset="dy_2017").document() != before  # scale reruns


def test_targets_fan_out(config):
    outputs = analyze_outputs(config, "{dataset}/{systematic}")
    # data: nominal; dy (two mass bins), ww: nominal + 11 systematics x 2 (lumi, ps_isr,
    # pileup, muon_id, electron_id, btag_hf, btag_lf, btag_cferr1, jes, jer, met_unclustered);
    # ttbar: + ps_fsr (no search: flat_demo_config)
    assert len(outputs) == 1 + 23 + 23 + 25 + 23
    assert "data/nominal" in outputs
    assert "ttbar/ps_fsrDown" in outputs
    assert "ww/ps_fsrUp" not in outputs
    assert "dy/pileupUp" in outputs
    assert processes(config) == {
        "data": ["data"],
        "dy": ["dy", "dy_m100"],
        "top": ["ttbar"],
        "diboson": ["ww"],
    }
    plots = plot_outputs(config, "{region}/{file}")
    assert "ttbar_emu/jet_pt.pdf" in plots
    assert "ttbar_emu/jet_pt_systematics.pdf" in plots
    assert "zmumu/jet_pt.pdf" not in plots
    drawn = sum(len(d.get("regions") or config["regions"]) for d in config["histograms"].values())
    assert drawn == 5 + 6 + 7 + 3  # zmumu, ww_emu, ttbar_emu, dimuon
    assert len(plots) == drawn * 3  # png, pdf, the systematics' pdf
    assert table_outputs(config, "{region}.{ext}")[:3] == ["zmumu.csv", "zmumu.md", "zmumu.tex"]
    assert len(generated_files(config)) == 11 + 3  # + golden JSON, corrections payload, BDT
    assert shapes_outputs(config, "{histogram}.{ext}") == [
        "njets_fit.root", "njets_fit.txt", "njets_fit.pyhf.json"
    ]  # fmt: skip


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


def test_analyze_resources_follow_the_events_a_job_reads(tmp_path, demo_set, monkeypatch):
    from brewflow.config import validate
    from brewflow.pipeline import analyze_resources
    from brewflow.results.inventory import write_inventory as save

    monkeypatch.chdir(tmp_path)  # no rates measured here

    inventory = tmp_path / "dy.json"
    save({"entries": 4_000_000, "files": []}, inventory)
    config = validate({**demo_set["config"], "step_size": 100_000})
    # 1500 MB + 1000 MB per thread; 3 x 4M events / (20k/s x 2 threads) = 5 min, + 5 min
    assert analyze_resources(config, inventory, threads=2) == {"mem_mb": 3500, "runtime": 10}
    assert analyze_resources(config, inventory, 2, attempt=2) == {"mem_mb": 7000, "runtime": 20}
    grouped = validate({**config, "events_per_job": 400_000})  # a job reads <= 500k events
    assert analyze_resources(grouped, inventory, threads=1)["runtime"] == 6


def test_analyze_runtime_follows_the_rate_the_job_measured_before(tmp_path, monkeypatch):
    """Issue 29: a job's runtime request comes from the events/s its dataset's job measured
    when it last ran (per fused job or systematic), not only from the configured guess."""
    from brewflow.config import rates
    from brewflow.pipeline import analyze_resources
    from brewflow.results.inventory import write_inventory as save

    monkeypatch.chdir(tmp_path)
    inventory = tmp_path / "dy.json"
    save({"entries": 4_000_000, "files": []}, inventory)
    config = validate(flat_demo_config())
    guessed = analyze_resources(config, inventory, threads=2)["runtime"]
    # 1M events in 100 s on 2 threads: 5000 events/s a thread; 3 x 4M / (5000 x 2) = 20 min
    rates.record("dy", "all", 1_000_000, 100.0, 2)
    assert analyze_resources(config, inventory, threads=2)["runtime"] == 20 + 5
    assert analyze_resources(config, inventory, threads=2, systematics="jesUp")["runtime"] == (
        guessed
    )
    rates.record("dy", "jesUp", 2_000_000, 100.0, 1)  # 20k/s: 3 x 4M / 40k = 5 min
    assert analyze_resources(config, inventory, threads=2, systematics="jesUp")["runtime"] == 10
    (rates.RATES / "dy.all.json").write_text('{"events": 5, "seconds": 0, "threads": 1}')
    assert analyze_resources(config, inventory, threads=2)["runtime"] == guessed  # not a rate
    rates.record("dy", "all", 0, 3.0, 1)  # read nothing: kept as it was
    assert rates.measured("dy", "all") is None


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


def test_spec_files_change_only_with_the_spec(tmp_path, monkeypatch, config):
    """A job's spec is an input file: kept while the spec is the same, rewritten (newer than
    any output) when it changes. Regression (issue 27 review): a spec file written for the
    first time was dated 1970, so an edit made while .brewflow was absent reran nothing."""
    import os
    import time

    from brewflow.pipeline import spec_file

    monkeypatch.chdir(tmp_path)
    started = time.time() - 1
    path = spec_file(config, "scale", dataset="dy")
    assert path == ".brewflow/specs/scale/dy.json"
    assert os.stat(path).st_mtime > started  # newer than any output made before
    os.utime(path, (1e9, 1e9))
    assert spec_file(config, "scale", dataset="dy") == path
    assert os.stat(path).st_mtime == 1e9  # same spec: untouched
    spec_file({**config, "datasets": {**config["datasets"],
                                      "dy": {**config["datasets"]["dy"], "xsec": 1.0}}},
              "scale", dataset="dy")  # fmt: skip
    assert os.stat(path).st_mtime > started
    assert json.loads(Path(path).read_text())["config"]["datasets"]["dy"]["xsec"] == 1.0


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


def test_a_bad_config_stops_the_workflow_with_one_line(tmp_path):
    """Regression (issue 27 review): a config error found when the workflow reads its config
    (an MC dataset without xsec) printed a traceback and exited 1; it is one line naming the
    key, exit 2, as every brewflow command."""
    import yaml

    from tests.helpers import snakemake

    config = flat_demo_config()
    del config["datasets"]["dy"]["xsec"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    done = snakemake(tmp_path, "-n")
    assert done.returncode == 2
    assert "config key 'datasets.dy': 'xsec' is a required property" in done.stderr
    assert "Traceback" not in done.stderr
    assert 'File "' not in done.stderr


def test_first_plan_of_many_datasets_finds_every_spec_file(tmp_path):
    """Regression (issue 29): Snakemake lists a folder the first time it checks a file in it
    and takes files written there later as missing; spec files written by input functions
    while the first DAG of a config was built made ``snakemake -n`` of 20 datasets fail with a
    MissingInputException for a spec file. Every spec is written before the DAG is built."""
    import re

    import yaml

    from tests.helpers import snakemake

    config = flat_demo_config()
    dy = config["datasets"]["dy"]
    for i in range(20):
        name = f"dy_{i:02d}"
        config["datasets"][name] = {**dy, "files": [f"results/generated/{name}/{name}_0.root"]}
        config["datasets"][name].pop("label", None)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    targets = [f"results/preprocess/{name}.json" for name in config["datasets"]]
    done = snakemake(tmp_path, "-n", *targets)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    planned = re.search(r"^preprocess\s+(\d+)\s*$", done.stdout, flags=re.M)
    assert planned is not None, done.stdout[-2000:]
    assert int(planned.group(1)) == len(targets)
    assert sorted(p.stem for p in (tmp_path / ".brewflow/specs/analyze").iterdir()) == sorted(
        config["datasets"]
    )


def test_a_config_edited_in_place_gets_a_new_spec(tmp_path, monkeypatch, config):
    """Regression (issue 29 review): specs were computed once per config object, so a config
    edited in place (a notebook, a long-lived process) kept its old spec file; only the config
    a DAG build plans (write_specs) is computed once."""
    import copy

    from brewflow.pipeline import spec_file

    monkeypatch.chdir(tmp_path)
    edited = copy.deepcopy(config)
    path = spec_file(edited, "analyze", dataset="dy")
    before = Path(path).read_text()
    edited["step_size"] = 123
    spec_file(edited, "analyze", dataset="dy")
    assert Path(path).read_text() != before
    assert json.loads(Path(path).read_text().split("\n# rerun")[0])["config"]["step_size"] == 123
