"""What every job does around its work (brewflow.jobs.guard): a configuration failure is not
repeated with the same spec; a spec rewritten while the job ran leaves its outputs out of date."""

from __future__ import annotations

import copy

import pytest
import yaml

from brewflow.cli import main
from brewflow.config import validate
from brewflow.jobs import analyze, preprocess
from brewflow.results.inventory import write_inventory


def test_a_configuration_error_is_not_repeated(demo_set, tmp_path, monkeypatch, capsys):
    """Regression (issue 27.7): a typo in a region's cut list failed the analyze job after
    reading, and Snakemake retried it; a retry with the same config and code now stops at
    once with the same message, and a fixed config runs."""
    monkeypatch.chdir(tmp_path)
    config = copy.deepcopy(demo_set["config"])
    config["regions"]["zmumu"]["cuts"] = ["trigger", "z_windw"]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    write_inventory(preprocess.preprocess(validate(config), "dy"), tmp_path / "dy.json")
    args = ["analyze", "--config", str(path), "--dataset", "dy", "--preprocess",
            str(tmp_path / "dy.json"), "--output", str(tmp_path / "out.json")]  # fmt: skip
    assert main(args) == 2
    first = capsys.readouterr().err
    assert "config key 'regions.zmumu.cuts': the analysis defines no cut 'z_windw'" in first
    calls = []
    real = analyze.run
    monkeypatch.setattr(analyze, "run", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert main(args) == 2
    again = capsys.readouterr().err
    assert "'z_windw'" in again
    assert "not run again" in again
    assert calls == []  # nothing was built or read
    config["regions"]["zmumu"]["cuts"] = ["trigger", "z_window"]
    path.write_text(yaml.safe_dump(config))
    assert main(args) == 0
    assert calls == [1]
    assert not list((tmp_path / ".brewflow" / "failed" / "analyze").glob("*.json"))


def test_the_workflow_checks_the_analysis_before_any_job(demo_set, tmp_path, monkeypatch):
    """Regression (issue 27.7): `brewflow validate` and the workflow's start run the analysis
    on a typetracer, so a typo in a cut list fails before any job, naming the key."""
    from brewflow.config import ConfigError
    from brewflow.jobs.validation import check_analysis

    monkeypatch.chdir(tmp_path)
    config = copy.deepcopy(demo_set["config"])
    config["regions"]["zmumu"]["cuts"] = ["trigger", "z_windw"]
    with pytest.raises(ConfigError, match=r"regions\.zmumu\.cuts.*'z_windw'"):
        check_analysis(validate(config))
    good = validate(demo_set["config"])
    # one dataset per era, kind and set of systematics (ttbar has ps_fsr) and skims
    assert set(check_analysis(good)) == {"data", "dy", "ttbar"}
    assert check_analysis(good) == []  # recorded: not checked again while unchanged
    config = copy.deepcopy(demo_set["config"])
    config["histograms"]["mll"]["variable"] = "m_ll"
    with pytest.raises(ConfigError, match=r"histograms\.mll\.variable"):
        check_analysis(validate(config))
    config = copy.deepcopy(demo_set["config"])  # regression (issue 27 review): a skim's typo
    config["skims"] = {"z": {"region": "zmumu", "variables": ["m_ll"], "datasets": ["dy"]}}
    with pytest.raises(ConfigError, match=r"skims\.z\.variables': the analysis returns no"):
        check_analysis(validate(config))
    config = copy.deepcopy(demo_set["config"])  # a weight of one dataset (review 2)
    config["systematics"]["ps_fsrr"] = {"type": "weight", "datasets": ["ww"]}
    with pytest.raises(ConfigError, match=r"systematics\.ps_fsrr': the analysis defines no"):
        check_analysis(validate(config))
    (tmp_path / "broken_ana.py").write_text("def analysis(events, context)\n")  # review 2
    config = validate({**demo_set["config"], "analysis": {"callable": "broken_ana:analysis"}})
    with pytest.raises(ConfigError, match=r"'broken_ana' does not compile: .*line 1"):
        check_analysis(config)


def test_outputs_are_up_to_date_only_with_the_spec_they_were_made_from(
    demo_set, tmp_path, monkeypatch
):
    """Regression (issue 27 review): a dry run (or a run refused by the lock) during a run
    rewrote the spec file of a running job, whose output, written later, then looked made
    from that spec: blinded data stayed in the outputs while snakemake said "Nothing to be
    done". A job records the spec its outputs were made from; a DAG build decides by it."""
    import os

    from brewflow.config.specs import job_spec, made_path
    from brewflow.jobs.guard import guarded
    from brewflow.pipeline import spec_file

    monkeypatch.chdir(tmp_path)
    c0 = validate(demo_set["config"])
    c1 = validate({**c0, "regions": {**c0["regions"], "zmumu": {
        **c0["regions"]["zmumu"], "blind": False, "cuts": ["trigger"]}}})  # fmt: skip
    output = tmp_path / "out.json"

    def at(path, t):
        os.utime(path, ns=(t, t))

    def mtime(path):
        return os.stat(path).st_mtime_ns

    def run(config, t):  # a job of the workflow: its output at t, its record at t + 10
        with guarded(job_spec("analyze", config, dataset="data")):
            output.write_text("{}")
        at(output, t)
        at(made_path(plan), t + 10)

    plan = spec_file(c0, "analyze", dataset="data")
    at(plan, 100)
    run(c0, 105)
    assert mtime(spec_file(c0, "analyze", dataset="data")) == 100  # up to date
    at(spec_file(c1, "analyze", dataset="data"), 200)  # a run of c1 planned, its job starts
    assert mtime(spec_file(c0, "analyze", dataset="data")) == 100  # a dry run of c0 meanwhile
    recorded = (tmp_path / plan).read_bytes()  # what Snakemake records as the input's checksum
    run(c1, 300)  # the c1 job ends
    assert mtime(spec_file(c0, "analyze", dataset="data")) > 300  # c0: out of date, and (the
    assert (tmp_path / plan).read_bytes() != recorded  # review's second case) other bytes
    assert mtime(spec_file(c1, "analyze", dataset="data")) < 300  # c1: up to date
    c2 = validate({**c1, "step_size": 999})
    at(spec_file(c2, "analyze", dataset="data"), 400)  # edited, then snakemake --touch:
    at(output, 500)
    assert mtime(spec_file(c2, "analyze", dataset="data")) == 400  # up to date, as touched


def test_an_analysis_that_cannot_be_imported_is_tried_again(demo_set, tmp_path, monkeypatch):
    """Regression (issue 27 review): a module missing where the job ran (an environment
    problem, e.g. on a batch node) was recorded as a configuration error and never run again
    once the module was back. It is named, and not recorded."""
    from brewflow.config.specs import job_spec
    from brewflow.jobs.build import AnalysisImportError, load_analysis
    from brewflow.jobs.guard import guarded

    monkeypatch.chdir(tmp_path)
    (tmp_path / "myana_guard.py").write_text("import helper_guard\nanalysis = None\n")
    config = validate({**demo_set["config"], "analysis": {"callable": "myana_guard:analysis"}})
    spec = job_spec("analyze", config, dataset="dy")
    with (
        pytest.raises(AnalysisImportError, match=r"analysis\.callable.*helper_guard"),
        guarded(spec),
    ):
        load_analysis("myana_guard:analysis")
    (tmp_path / "helper_guard.py").write_text("")
    with guarded(spec):  # not refused as a repeated configuration failure
        load_analysis("myana_guard:analysis")
