"""Job specs (brewflow.config.specs): each job's view of the config is exactly what its
fingerprint hashes, so an edit reruns only the jobs that read it."""

from __future__ import annotations

import copy
import os
import pickle
from collections.abc import Callable

import pytest

from brewflow.config import load_config, skim_targets
from brewflow.config.specs import SpecError, job_spec, spec_path
from brewflow.pipeline import scopes
from tests.helpers import DEMO_CONFIG


@pytest.fixture(scope="module")
def config() -> dict:
    """The demo config: two eras, a skim, the fit."""
    return load_config(DEMO_CONFIG)


def jobs(config: dict) -> list[tuple[str, dict]]:
    """Every job of a run of ``config``: its kind and params."""
    out: list[tuple[str, dict]] = [("generate", {}), ("summary", {})]  # named "all"
    for dataset in config["datasets"]:
        out += [(kind, {"dataset": dataset}) for kind in ("preprocess", "analyze", "scale")]
    out += [("skim", {"skim": s, "dataset": d}) for s, d in skim_targets(config)]
    for era in scopes(config):
        out += [("cutflow", {"region": r, "era": era}) for r in config["regions"]]
    for name, spec in config["histograms"].items():
        out += [("plot", {"region": r, "histogram": name})
                for r in spec.get("regions") or config["regions"]]  # fmt: skip
    out += [("plot", {"region": r, "era": e}) for e in config["eras"] for r in config["regions"]]
    out += [("shapes", {"histogram": h}) for h in config["shapes"]["histograms"]]
    out += [("fit", {"histogram": h}) for h in config["fit"]["histograms"]]
    out += [("search", {"search": s}) for s in config.get("searches", {})]
    return out


def rerun(config: dict, edit: Callable[[dict], None]) -> set[str]:
    """The jobs whose spec changes with ``edit`` of ``config``, as ``kind:param.param``."""
    changed = copy.deepcopy(config)
    edit(changed)
    out = set()
    for kind, params in jobs(config):
        if (
            job_spec(kind, config, **params).document()
            != job_spec(kind, changed, **params).document()
        ):
            out.add(f"{kind}:{spec_path(kind, **params).stem}")
    return out


def test_a_region_label_reruns_only_the_figures_that_show_it(config):
    """Regression (issue 27.5): a region's label reran every analyze, merge, scale and stack
    job; it is shown by the region's plots and the fit's plots of its channels only."""

    def edit(c):
        c["regions"]["ww_emu"]["label"] = "WW region"

    changed = rerun(config, edit)
    assert {j.split(":")[0] for j in changed} == {"plot", "fit"}
    assert all("ww_emu" in j for j in changed if j.startswith("plot"))
    assert "fit:njets_fit" in changed  # its channels include ww_emu
    assert "plot:ww_emu.mll" in changed
    assert "plot:2017.ww_emu" in changed


def test_a_histogram_label_reruns_only_its_plots(config):
    def edit(c):
        c["histograms"]["mll"]["label"] = "m(ll) / GeV"

    regions = ("zmumu", "ww_emu", "ttbar_emu")  # where mll is filled
    assert rerun(config, edit) == {
        *(f"plot:{r}.mll" for r in regions), *(f"plot:{e}.{r}" for e in ("2017", "2018")
                                              for r in regions)
    }  # fmt: skip


def test_physics_edits_rerun_what_reads_them(config):
    def xsec(c):
        c["datasets"]["ww"]["xsec"] = 13.0

    assert rerun(config, xsec) == {"scale:ww"}

    def cut(c):
        c["regions"]["zmumu"]["cuts"] = c["regions"]["zmumu"]["cuts"][:-1]

    changed = rerun(config, cut)
    assert {j.split(":")[0] for j in changed} == {"analyze", "skim"}  # then what follows
    assert len([j for j in changed if j.startswith("analyze")]) == len(config["datasets"])

    def systematic(c):
        c["systematics"]["ps_fsr"]["datasets"] = ["ttbar"]  # the demo's: the process top

    changed = rerun(config, systematic)
    assert "analyze:ttbar_2017" in changed
    assert "scale:ttbar_2017" in changed
    assert not {"analyze:ttbar", "analyze:dy", "scale:dy"} & changed  # unchanged for them

    def description(c):
        c["systematics"]["jes"]["description"] = "JES, total"

    changed = rerun(config, description)
    assert not any(j.startswith(("analyze", "scale", "skim", "shapes")) for j in changed)
    assert "summary:all" in changed

    def threads(c):
        c["threads"] = 4
        c["remote"] = {**c["remote"], "timeout": 5}

    assert rerun(config, threads) == set()  # how a job runs, not what it makes


def test_reading_outside_the_spec_is_an_error(config):
    """The job's view is its spec: a key the spec does not hold cannot be read, even through
    get() or `in`, so a job can never depend on something its fingerprint does not hold."""
    view = job_spec("analyze", config, dataset="dy").config()
    assert view["regions"]["zmumu"]["cuts"] == config["regions"]["zmumu"]["cuts"]
    for read in (lambda: view["regions"]["zmumu"]["label"],
                 lambda: view["regions"]["zmumu"].get("label"),
                 lambda: "label" in view["histograms"]["mll"],
                 lambda: view["plots"],
                 lambda: view["datasets"]["dy"]["xsec"]):  # fmt: skip
        with pytest.raises(SpecError, match="config key"):
            read()
    assert "ttbar" not in view["datasets"]  # another dataset does not exist for dy's job
    assert view["threads"] == config["threads"]  # settings: readable, never hashed
    with pytest.raises(TypeError):
        view["regions"]["zmumu"]["cuts"] = []  # type: ignore[index]
    assert pickle.loads(pickle.dumps(view)) == view
    again = pickle.loads(pickle.dumps(view))
    with pytest.raises(SpecError):
        again["regions"]["zmumu"]["label"]


def test_every_job_spec_of_the_demo_builds(config):
    for kind, params in jobs(config):
        spec = job_spec(kind, config, **params)
        assert spec.fingerprint() == job_spec(kind, config, **params).fingerprint()
        assert spec.code["brewflow"]["version"]


def test_what_no_job_of_a_kind_reads_reruns_none_of_them(config):
    """Regression (issue 27 review, extra reruns): blinding and `correlated` reran MC analyze
    jobs, a systematic edit reran skims, a 2018 label reran 2017's plots, a description reran
    the plots with plots.systematics off, a dataset's files reran the demo's generate."""

    def blind(c):
        c["regions"]["ttbar_emu"]["blind"] = True
        c["histograms"]["mll"]["blind"] = [85, 95]

    changed = rerun(config, blind)
    assert {j for j in changed if j.startswith(("analyze", "skim"))} == {
        "analyze:data", "analyze:data_2017"}  # fmt: skip

    def correlated(c):
        c["systematics"]["jes"]["correlated"] = False

    changed = rerun(config, correlated)
    assert not any(j.startswith(("analyze", "skim")) for j in changed)
    assert "scale:dy" in changed

    def era_label(c):
        c["eras"]["2018"]["label"] = "2018 UL"

    changed = rerun(config, era_label)
    assert not any(j.startswith("plot:2017") for j in changed)
    assert "plot:2018.zmumu" in changed

    def description(c):
        c["systematics"]["jes"]["description"] = "JES"
        c["plots"]["systematics"] = False

    off = copy.deepcopy(config)
    off["plots"]["systematics"] = False
    assert not any(j.startswith("plot") for j in rerun(off, description))

    def own_files(c):
        c["datasets"]["data"]["files"] = c["datasets"]["data"]["files"][:1]
        del c["datasets"]["data"]["generator"]

    assert "generate:all" in rerun(config, own_files)  # it was generated; now it is not
    mine = copy.deepcopy(config)
    del mine["datasets"]["data"]["generator"]

    def files(c):
        c["datasets"]["data"]["files"] = c["datasets"]["data"]["files"][:1]

    assert "generate:all" not in rerun(mine, files)


def test_a_search_reruns_for_what_it_reads_only(config):
    """Regression (issue 28 review): a hypothesis's mass reran the measurement's shapes and
    fit, a Drell-Yan colour or the ratio range reran the search."""

    def mass(c):
        c["searches"]["zprime"]["signals"]["zprime_m110"] = 112

    assert rerun(config, mass) == {"search:zprime"}

    def colour(c):
        c["datasets"]["dy"]["color"] = "#000000"
        c["plots"]["ratio_range"] = [0.8, 1.2]

    assert "search:zprime" not in rerun(config, colour)

    def xsec(c):
        for name in ("zprime_m110", "zprime_m110_2017"):
            c["datasets"][name]["xsec"] = 9.0

    changed = rerun(config, xsec)
    assert "search:zprime" in changed
    assert not {j for j in changed if j.startswith(("shapes", "fit"))}


def test_a_payload_edited_with_its_old_mtime_reruns_its_analyze_jobs(config, tmp_path):
    """A payload's content is in the spec of the jobs that read it (found by the review of
    issue 30: a payload edited with its mtime kept, as cp -p or rsync -t do, left results made
    from the old payload up to date for Snakemake)."""
    payload = tmp_path / "model.json"
    payload.write_text('{"weights": [1.0, 1.1]}')
    config = {**copy.deepcopy(config), "models": {"bdt": str(payload)}}
    dataset = next(iter(config["datasets"]))
    before = job_spec("analyze", config, dataset=dataset).document()
    assert job_spec("analyze", config, dataset=dataset).document() == before  # (hashed once)
    stat = payload.stat()
    payload.write_text('{"weights": [2.0, 1.1]}')
    os.utime(payload, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # its mtime kept
    assert job_spec("analyze", config, dataset=dataset).document() != before
