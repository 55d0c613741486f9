"""The Snakemake workflow end to end on a tiny generated set, checked against tests/reference.py."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
import uproot
import yaml

from brewflow.pipeline import snakemake_command
from brewflow.results.model import load
from tests import reference
from tests.helpers import small_config

pytestmark = pytest.mark.slow


def _snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        snakemake_command(workdir, workdir / "config.yaml", 2, *args),
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def workflow_run(tmp_path_factory) -> dict:
    workdir = tmp_path_factory.mktemp("workflow")
    config = small_config(Path("results/generated"))
    config["histograms"] = {k: config["histograms"][k] for k in ("mll", "njets", "jet_pt")}
    for name in ("mll", "njets"):  # filled in every region (the checks below go through all)
        config["histograms"][name].pop("regions")
    config["shapes"]["histograms"] = ["mll", "njets"]
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    run = _snakemake(workdir)
    assert run.returncode == 0, run.stderr[-3000:]
    return {"workdir": workdir, "config": config, "log": run.stderr}


@pytest.fixture(scope="module")
def expected(workflow_run) -> dict:
    workdir, config = workflow_run["workdir"], workflow_run["config"]
    return {name: reference.dataset_events(config, name, workdir) for name in config["datasets"]}


def _edges(definition: dict) -> np.ndarray:
    return np.linspace(definition["start"], definition["stop"], definition["bins"] + 1)


def _sum_genweight(workdir: Path, files: list[str]) -> float:
    return float(
        sum(
            uproot.open(workdir / f)["Events"]["genWeight"]
            .array(library="np")
            .astype(np.float64)
            .sum()
            for f in files
        )
    )


def test_every_dataset_and_systematic_matches_the_reference(workflow_run, expected):
    workdir, config = workflow_run["workdir"], workflow_run["config"]
    for dataset, spec in config["datasets"].items():
        merged = load(workdir / "results" / "merge" / f"{dataset}.json")
        systematics = merged.systematics
        if spec.get("is_data"):
            assert systematics == ["nominal"]
        else:
            assert "nominal" in systematics
            assert "lumiUp" in systematics
        for systematic in systematics:
            raw = load(workdir / "results" / "analyze" / dataset / f"{systematic}.json")
            assert raw.systematics == [systematic]
            for name, definition in config["histograms"].items():
                for region in definition.get("regions") or config["regions"]:
                    values, variances = reference.histogram(
                        expected[dataset],
                        definition["variable"],
                        config["regions"][region]["cuts"],
                        _edges(definition),
                        systematic,
                    )
                    got = merged.histograms[name][{"region": region, "systematic": systematic}]
                    np.testing.assert_allclose(
                        got.values(),
                        values,
                        rtol=1e-9,
                        atol=1e-9,
                        err_msg=f"{dataset} {systematic} {name} {region}",
                    )
                    np.testing.assert_allclose(got.variances(), variances, rtol=1e-9, atol=1e-9)
            if not spec.get("is_data"):
                sumw = sum(reference.variant(e, systematic)[1] for e in expected[dataset])
                flow = merged.cutflow("zmumu", systematic)
                assert flow["sumw"][0] == pytest.approx(sumw, rel=1e-9)


def test_normalisation_to_cross_section_and_luminosity(workflow_run, expected):
    workdir, config = workflow_run["workdir"], workflow_run["config"]
    lumi = config["luminosity"]
    for dataset, spec in config["datasets"].items():
        scaled = load(workdir / "results" / "scale" / f"{dataset}.json")
        if spec.get("is_data"):
            assert scaled.meta["scale_factor"] == 1.0
            continue
        factor = spec["xsec"] * lumi / _sum_genweight(workdir, spec["files"])
        assert scaled.meta["scale_factor"] == pytest.approx(factor, rel=1e-12)
        # before selection: xsec * L times the mean of the other weights (pileup, muon SF)
        total = sum(e["weight"]["nominal"] for e in expected[dataset])
        assert scaled.cutflow("zmumu")["sumw"][0] == pytest.approx(total * factor, rel=1e-9)
        gen = sum(e["genWeight"] for e in expected[dataset])
        assert gen * factor == pytest.approx(spec["xsec"] * lumi, rel=1e-9)
        values, _ = reference.histogram(
            expected[dataset],
            "mll",
            config["regions"]["zmumu"]["cuts"],
            _edges(config["histograms"]["mll"]),
            "nominal",
        )
        got = scaled.histograms["mll"][{"region": "zmumu", "systematic": "nominal"}].values()
        np.testing.assert_allclose(got, values * factor, rtol=1e-9, atol=1e-12)


def test_stacks_sum_their_datasets(workflow_run):
    workdir = workflow_run["workdir"]
    top = load(workdir / "results" / "stack" / "top.json")
    ttbar = load(workdir / "results" / "scale" / "ttbar.json")
    assert top.meta["datasets"] == ["ttbar"]
    np.testing.assert_allclose(
        top.histograms["mll"].values(flow=True), ttbar.histograms["mll"].values(flow=True)
    )
    assert sorted(p.stem for p in (workdir / "results" / "stack").glob("*.json")) == [
        "data",
        "diboson",
        "dy",
        "top",
    ]


def test_cutflow_tables_match_the_reference(workflow_run, expected):
    workdir, config = workflow_run["workdir"], workflow_run["config"]
    for region, spec in config["regions"].items():
        table = pd.read_csv(workdir / "results" / "cutflow" / f"{region}.csv")
        for dataset, dspec in config["datasets"].items():
            counts, sumw = reference.cutflow(expected[dataset], spec["cuts"], "nominal")
            rows = table[(table.level == "dataset") & (table.name == dataset)]
            assert rows["cut"].tolist() == ["initial", *spec["cuts"]]
            assert rows["events"].tolist() == counts
            factor = (
                1.0
                if dspec.get("is_data")
                else dspec["xsec"]
                * config["luminosity"]
                / (_sum_genweight(workdir, dspec["files"]))
            )
            np.testing.assert_allclose(rows["sumw"], np.asarray(sumw) * factor, rtol=1e-9)
        for suffix in ("md", "tex"):
            assert (workdir / "results" / "cutflow" / f"{region}.{suffix}").stat().st_size > 200


def test_plots_exist_and_are_images(workflow_run):
    workdir, config = workflow_run["workdir"], workflow_run["config"]
    for name, definition in config["histograms"].items():
        for region in definition.get("regions") or config["regions"]:
            png = workdir / "results" / "plots" / region / f"{name}.png"
            image = matplotlib.image.imread(png)
            assert image.ndim == 3
            assert image.std() > 0.01
            pdf = png.with_suffix(".pdf")
            assert pdf.read_bytes()[:5] == b"%PDF-"


def test_rerun_is_a_no_op_and_one_dataset_change_reruns_only_it(workflow_run):
    workdir = workflow_run["workdir"]
    again = _snakemake(workdir, "-n")
    assert "Nothing to be done" in again.stdout + again.stderr
    changed = workdir / "config.yaml"
    original = changed.read_text()
    config = yaml.safe_load(original)
    config["datasets"]["ww"]["xsec"] = 13.0
    changed.write_text(yaml.safe_dump(config))
    dry = _snakemake(workdir, "-n", "--quiet", "rules")
    changed.write_text(original)  # as the run made it, for the tests after
    text = dry.stdout + dry.stderr
    assert dry.returncode == 0, text
    assert "scale" in text
    assert "analyze" not in text
    assert "generate" not in text


def _planned(workdir: Path) -> set[str]:
    """The rules a dry run of the workflow would run (``all`` left out)."""
    dry = _snakemake(workdir, "-n", "--quiet", "rules")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    rows = re.findall(r"^(\w+)\s+\d+$", dry.stdout, re.M)
    return {r for r in rows if r not in ("all", "total")}


def test_an_edit_reruns_only_the_jobs_that_read_it(workflow_run):
    """Regression (issue 27.5): a region's label reran every analyze, merge, scale and stack
    job, and an edit of the analysis module (a user's module in the run's folder, or one it
    imports) reran nothing. Each job's spec is its input: a label reruns the plots that show
    it, the analysis code the jobs that run it (and what is made from them)."""
    workdir = workflow_run["workdir"]
    path = workdir / "config.yaml"
    original = path.read_text()
    try:
        config = yaml.safe_load(original)
        config["regions"]["zmumu"]["label"] = "Z boson region"
        path.write_text(yaml.safe_dump(config))
        assert _planned(workdir) == {"plot"}
        (workdir / "helpers_27.py").write_text("WEIGHT = 1.0\n")
        (workdir / "myana_27.py").write_text(
            "import helpers_27\nfrom brewflow.demo import analysis as demo\n\n\n"
            "def analysis(events, context):\n    return demo(events, context)\n"
        )
        config["analysis"]["callable"] = "myana_27:analysis"
        path.write_text(yaml.safe_dump(config))
        touched = _snakemake(workdir, "--touch")
        assert touched.returncode == 0, touched.stderr[-3000:]
        assert _planned(workdir) == set()
        (workdir / "helpers_27.py").write_text("WEIGHT = 1.0  # edited\n")
        planned = _planned(workdir)
        assert {"analyze", "merge", "scale", "stack", "plot", "cutflow"} <= planned
        assert "preprocess" not in planned
        assert "generate" not in planned
    finally:
        path.write_text(original)


def test_data_agree_with_normalised_mc(workflow_run):
    """Pseudo-data are Poisson draws of the MC sum: yields and shapes agree within errors."""
    workdir, config = workflow_run["workdir"], workflow_run["config"]
    stacks = [load(p) for p in (workdir / "results" / "stack").glob("*.json")]
    data = next(s for s in stacks if s.is_data)
    mc = [s for s in stacks if not s.is_data]
    for region in config["regions"]:
        flow_data = data.cutflow(region)["sumw"][-1]
        flows = [s.cutflow(region) for s in mc]
        expected = sum(f["sumw"][-1] for f in flows)
        variance = sum(f["sumw2"][-1] for f in flows)
        assert abs(flow_data - expected) < 4 * np.sqrt(expected + variance), region
    sel = {"region": "zmumu", "systematic": "nominal"}
    for name in ("mll", "njets"):
        observed = data.histograms[name][sel].values()
        prediction = sum(s.histograms[name][sel].values() for s in mc)
        mc_var = sum(s.histograms[name][sel].variances() for s in mc)
        used = prediction >= 5  # Pearson chi2 needs enough expected events per bin
        chi2 = np.sum((observed[used] - prediction[used]) ** 2 / (prediction + mc_var)[used])
        ndf = int(used.sum())
        assert ndf >= 3, name
        assert chi2 < ndf + 5 * np.sqrt(2 * ndf), f"{name}: chi2 {chi2:.1f} for {ndf} bins"


def test_combine_shapes_match_the_stacks(workflow_run):
    workdir, config = workflow_run["workdir"], workflow_run["config"]
    stacks = {s.process: s for s in map(load, (workdir / "results" / "stack").glob("*.json"))}
    card = (workdir / "results" / "shapes" / "mll.txt").read_text()
    assert "shapes * * mll.root" in card
    with uproot.open(workdir / "results" / "shapes" / "mll.root") as shapes:
        for region in config["regions"]:
            for process in ("dy", "top", "diboson"):
                for systematic in stacks[process].systematics:
                    name = process if systematic == "nominal" else f"{process}_{systematic}"
                    expected = stacks[process].histograms["mll"][
                        {"region": region, "systematic": systematic}
                    ]
                    np.testing.assert_array_equal(
                        shapes[f"{region}/{name}"].values(flow=True), expected.values(flow=True)
                    )
            observed = stacks["data"].histograms["mll"][{"region": region, "systematic": "nominal"}]
            assert shapes[f"{region}/data_obs"].values().sum() == observed.sum().value
            assert f"{region}" in card
    pyhf = pytest.importorskip("pyhf")
    spec = json.loads((workdir / "results" / "shapes" / "mll.pyhf.json").read_text())
    model = pyhf.Workspace(spec).model()
    init = model.config.suggested_init()
    total = np.concatenate(
        [
            sum(
                stacks[p].histograms["mll"][{"region": r, "systematic": "nominal"}].values()
                for p in ("dy", "top", "diboson")
            )
            for r in sorted(config["regions"])
        ]
    )
    # pyhf orders channels by name; at the initial parameters the model is the MC sum
    np.testing.assert_allclose(model.expected_actualdata(init), total, rtol=1e-9, atol=1e-9)


def test_systematics_pdfs_have_a_page_per_systematic(workflow_run):
    workdir, config = workflow_run["workdir"], workflow_run["config"]
    pdf = (workdir / "results" / "plots" / "zmumu" / "mll_systematics.pdf").read_bytes()
    assert pdf[:5] == b"%PDF-"
    n_pages = len(re.findall(rb"/Type /Page\b(?!s)", pdf))
    assert n_pages == len(config["systematics"])


def test_fused_systematics_give_the_same_files(workflow_run, tmp_path):
    """fuse_systematics: one analyze job per dataset writing every variation in one file
    (``all.json``; issue 29: one output a job keeps a big plan small): the same
    per-systematic histograms as one job per systematic, and identical stacks."""
    import re

    split_dir = workflow_run["workdir"]
    fused_dir = tmp_path / "fused"
    fused_dir.mkdir()
    config = {**workflow_run["config"], "fuse_systematics": True}
    (fused_dir / "config.yaml").write_text(yaml.safe_dump(config))
    run = _snakemake(fused_dir)
    assert run.returncode == 0, run.stderr[-3000:]
    jobs = re.findall(r"\(Rule: analyze_fused[,)]", run.stdout + run.stderr)
    assert len(jobs) == len(config["datasets"])
    for dataset in config["datasets"]:
        outputs = sorted((fused_dir / "results" / "analyze" / dataset).iterdir())
        assert [p.name for p in outputs] == ["all.json"]
        fused = load(outputs[0])
        alone = {p.stem: load(p) for p in (split_dir / "results" / "analyze" / dataset).glob("*")}
        assert fused.systematics == [s for s in fused.systematics if s in alone]
        assert sorted(fused.systematics) == sorted(alone)
        for systematic, result in alone.items():
            for name, h in result.histograms.items():
                np.testing.assert_allclose(
                    fused.histograms[name][{"systematic": systematic}].values(flow=True),
                    h[{"systematic": systematic}].values(flow=True),
                    rtol=1e-12,
                    atol=1e-9,
                    err_msg=f"{dataset} {systematic} {name}",
                )
    for process in ("dy", "top"):
        a = load(split_dir / "results" / "stack" / f"{process}.json")
        b = load(fused_dir / "results" / "stack" / f"{process}.json")
        for name, h in a.histograms.items():
            np.testing.assert_allclose(b.histograms[name].values(flow=True),
                                       h.values(flow=True), rtol=1e-12, atol=1e-9)  # fmt: skip


def test_each_analyze_job_records_the_rate_batch_requests_follow(workflow_run):
    """Issue 29: every analyze job keeps the events it read per second and thread, which the
    next plan's runtime requests use (brewflow.config.rates)."""
    import json

    from brewflow.config import rates

    workdir, config = workflow_run["workdir"], workflow_run["config"]
    folder = workdir / rates.RATES
    for dataset in config["datasets"]:
        raw = load(workdir / "results" / "analyze" / dataset / "nominal.json")
        kept = json.loads((folder / f"{dataset}.nominal.json").read_text())
        assert kept["events"] == raw.meta["events"] > 0
        assert rates.measured(dataset, "nominal", folder) == pytest.approx(
            kept["events"] / (kept["seconds"] * kept["threads"])
        )
