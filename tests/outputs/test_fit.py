"""The fit (brewflow.outputs.likelihood, .mle and .fit): its numbers equal pyhf called directly
on the same workspace; an Asimov dataset gives back the signal strength it was made with; bands
and impacts follow the model; the review's failing workspaces (issue 27) fit, negative yields
are floored and named, and a fit that fails is marked in every output (only a failed best fit
fails the job, with one line)."""

from __future__ import annotations

import copy
import json
import logging

import matplotlib.pyplot as plt
import numpy as np
import pyhf
import pytest
from scipy import optimize, stats

from brewflow.errors import InputError
from brewflow.outputs import fit, fit_plots, fit_text, likelihood, limits, mle
from brewflow.pipeline import fit_files
from tests.outputs.fit_workspaces import NEGATIVE, SPEC, one_bin, sensible_spec


@pytest.fixture(scope="module")
def result():
    return likelihood.fit_workspace(copy.deepcopy(SPEC), top=2)


def _model():
    workspace = pyhf.Workspace(copy.deepcopy(SPEC))
    model = workspace.model()
    return model, np.asarray(workspace.data(model), dtype=float)


def test_fit_equals_pyhf_called_directly(result):
    table, _ = result
    model, data = _model()
    pyhf.set_backend("numpy", pyhf.optimize.minuit_optimizer(tolerance=1e-8, strategy=2))
    best, _ = pyhf.infer.mle.fit(data, model, return_uncertainties=True, return_correlations=True)
    mu, error = best[model.config.poi_index]
    assert table["mu"] == pytest.approx(mu, rel=1e-9)  # the same minimiser settings
    assert table["mu_error"] == pytest.approx(error, rel=1e-6)
    pyhf.set_backend("numpy", "scipy")  # another minimiser: the same minimum
    assert table["mu"] == pytest.approx(
        float(pyhf.infer.mle.fit(data, model)[model.config.poi_index]), rel=1e-4
    )
    pyhf.set_backend("numpy", pyhf.optimize.minuit_optimizer())  # pyhf's defaults
    p0, p0_expected = pyhf.infer.hypotest(0.0, data, model, test_stat="q0", return_expected=True)
    assert table["significance"]["observed"] == pytest.approx(stats.norm.isf(p0), rel=1e-3)
    assert table["significance"]["expected"] == pytest.approx(stats.norm.isf(p0_expected), rel=1e-3)
    observed, expected = pyhf.infer.intervals.upper_limits.upper_limit(data, model, level=0.05)
    assert table["upper_limit"]["observed"] == pytest.approx(float(observed), rel=2e-3)
    band = [float(x) for x in np.ravel(expected)]  # -2, -1, median, +1, +2 sigma
    ours = table["upper_limit"]["expected"]  # median, -2, -1, +1, +2 sigma
    np.testing.assert_allclose(ours, [band[2], band[0], band[1], band[3], band[4]], rtol=2e-3)
    pulls = {p["name"]: p for p in table["pulls"]}
    assert sorted(pulls) == ["jes", "lumi"]  # the per-bin MC statistics are not nuisances here
    i = model.config.par_order.index("jes")
    jes = best[model.config.par_slice("jes")][0]
    assert pulls["jes"]["pull"] == pytest.approx(jes[0], abs=1e-4), i
    assert pulls["jes"]["constraint"] == pytest.approx(jes[1], rel=1e-3)


@pytest.mark.parametrize("injected", [1.0, 1.7, 0.4])
def test_asimov_fit_returns_the_injected_signal_strength(injected):
    model, _ = _model()
    asimov = likelihood.asimov_data(model, injected)
    best = likelihood.maximum_likelihood(model, asimov)  # starts at mu = 1
    assert abs(best["mu"][0] - injected) < 1e-6
    for name in likelihood.nuisances(model):
        assert abs(best[name][0]) < 1e-4  # the nuisances stay at their nominal values


def test_asimov_significance_is_its_expected_significance():
    model, _ = _model()
    observed, expected = likelihood.significance(model, likelihood.asimov_data(model, 1.0))
    assert observed == pytest.approx(expected, rel=1e-6)
    _, p0_expected = pyhf.infer.hypotest(
        0.0, likelihood.asimov_data(model, 1.0), model, test_stat="q0", return_expected=True
    )
    assert expected == pytest.approx(stats.norm.isf(p0_expected), rel=1e-3)


def test_impacts_are_refits_with_the_nuisance_fixed(result):
    table, _ = result
    model, data = _model()
    best = likelihood.maximum_likelihood(model, data)
    for row in table["impacts"]:
        value, error = best[row["name"]]
        shifted = likelihood.maximum_likelihood(model, data, fixed={row["name"]: value + error})
        assert row["postfit_up"] == pytest.approx(shifted["mu"][0] - best["mu"][0], abs=1e-4)
    ranked = [max(abs(r["postfit_up"]), abs(r["postfit_down"])) for r in table["impacts"]]
    assert ranked == sorted(ranked, reverse=True)


def test_prefit_band_of_one_symmetric_template_is_its_shift():
    spec = {
        "channels": [{"name": "c", "samples": [
            {"name": "sig", "data": [1.0, 1.0], "modifiers": [
                {"name": "mu", "type": "normfactor", "data": None}]},
            {"name": "bkg", "data": [10.0, 20.0], "modifiers": [
                {"name": "s", "type": "histosys",
                 "data": {"hi_data": [11.0, 23.0], "lo_data": [9.0, 17.0]}}]}]}],
        "observations": [{"name": "c", "data": [11.0, 21.0]}],
        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0",
    }  # fmt: skip
    model = pyhf.Workspace(spec).model()
    pars = np.asarray(model.config.suggested_init(), dtype=float)
    band = likelihood.yield_band(model, pars, likelihood.prefit_covariance(model))
    np.testing.assert_allclose(band, [1.0, 3.0], rtol=1e-6)  # |hi - nominal|, mu held


def test_zero_background_leaves_significance_and_limit_undefined():
    spec = copy.deepcopy(SPEC)
    spec["channels"][1]["samples"][1]["data"] = [100.0, 0.0]
    spec["channels"][1]["samples"][1]["modifiers"] = []
    table, _ = likelihood.fit_workspace(spec, top=0)
    assert table["no_background"] == ["cr bin 1"]
    assert table["significance"] == {"observed": None, "expected": None, "failed": None}
    assert table["upper_limit"]["observed"] is None
    model = pyhf.Workspace(spec).model()
    best = likelihood.maximum_likelihood(model, np.asarray(pyhf.Workspace(spec).data(model)))
    assert table["mu"] == pytest.approx(best["mu"][0], rel=1e-9)  # mu is still measured
    assert "undefined" in fit_text.markdown(table)


def test_fit_job_writes_reproducible_outputs(tmp_path):
    config = {
        "regions": {"sr": {"cuts": ["a"]}, "cr": {"cuts": ["b"]}},
        "histograms": {"x": {"variable": "x", "edges": [0, 1, 2, 3], "blind": [1.0, 2.0]}},
        "datasets": {
            "s": {"process": "sig", "label": "Signal", "is_data": False},
            "d": {"process": "data", "is_data": True},
        },
        "fit": {"histograms": ["x"], "impacts": 2, "cls": 0.05},
        "plots": {"formats": ["png", "pdf"], "label": "Test"},
        "luminosity": 1000.0,
    }
    spec = copy.deepcopy(SPEC)
    spec["channels"][1]["samples"] = [
        {**s, "data": [*s["data"], 1.0]} for s in spec["channels"][1]["samples"]
    ]
    for sample in spec["channels"][1]["samples"]:
        for modifier in sample["modifiers"]:
            if modifier["type"] == "histosys":
                modifier["data"] = {k: [*v, 1.0] for k, v in modifier["data"].items()}
    spec["observations"][1]["data"] = [99.0, 85.0, 2.0]
    workspace = tmp_path / "x.pyhf.json"
    workspace.write_text(json.dumps(spec))
    first, second = tmp_path / "a", tmp_path / "b"
    table = fit.fit_job(config, "x", workspace, first)
    fit.fit_job(config, "x", workspace, second)
    names = sorted(p.relative_to(first).as_posix() for p in first.rglob("*") if p.is_file())
    assert "postfit/sr.png" in names
    assert "prefit/cr.pdf" in names
    assert {f"{figure}.{ext}" for figure in fit.FIGURES for ext in ("png", "pdf")} <= set(names)
    assert names == sorted(f.removeprefix("results/fit/x/") for f in fit_files(config, "x"))
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert json.loads((first / "fit.json").read_text())["mu"] == table["mu"]
    assert "signal strength" in (first / "fit.md").read_text()
    # regression (issue 27 review): a window's Asimov bins were not said ("data: observed")
    assert table["blinded_bins"] == {"sr": [1], "cr": [1]}
    assert "Asimov in bin 1 of sr; bin 1 of cr" in (first / "fit.md").read_text()


class _Records(logging.Handler):
    """Every log record that reaches the root logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def sensible():
    """The fit of sensible_spec() and the log records it made (INFO and above)."""
    handler, root = _Records(), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        table, _ = likelihood.fit_workspace(sensible_spec(), top=3)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    return table, handler.records


def _pyhf_mle(spec: dict, **model_options) -> float:
    """The signal strength of pyhf's own fit, minimised by scipy (another minimiser)."""
    workspace = pyhf.Workspace(copy.deepcopy(spec))
    model = workspace.model(**model_options)
    pyhf.set_backend("numpy", "scipy")
    return float(pyhf.infer.mle.fit(workspace.data(model), model)[model.config.poi_index])


def test_asimov_of_a_sensible_model_gives_back_its_signal_strength(sensible):
    table, _ = sensible
    assert table["mu"] == pytest.approx(1.5, abs=1e-6)
    assert table["mu"] == pytest.approx(_pyhf_mle(sensible_spec()), rel=5e-4)
    assert [r["failed"] for r in table["impacts"]] == [None] * 3
    assert table["warnings"] == []
    workspace, model = mle.load(sensible_spec())
    data = np.asarray(workspace.data(model), dtype=float)
    best = likelihood.maximum_likelihood(model, data)
    for row in table["impacts"]:  # each impact is a refit with the nuisance held
        value, error = best[row["name"]]
        held = likelihood.maximum_likelihood(model, data, fixed={row["name"]: value - error})
        assert row["postfit_down"] == pytest.approx(held["mu"][0] - best["mu"][0], abs=2e-3)


def test_statistics_of_a_sensible_model_equal_pyhf(sensible):
    table, _ = sensible
    workspace = pyhf.Workspace(sensible_spec())
    model = workspace.model()
    data = workspace.data(model)
    pyhf.set_backend("numpy", pyhf.optimize.minuit_optimizer())  # pyhf's defaults
    p0, p0_expected = pyhf.infer.hypotest(0.0, data, model, test_stat="q0", return_expected=True)
    assert table["significance"]["observed"] == pytest.approx(stats.norm.isf(p0), rel=5e-4)
    assert table["significance"]["expected"] == pytest.approx(stats.norm.isf(p0_expected),
                                                              rel=5e-4)  # fmt: skip
    observed, expected = pyhf.infer.intervals.upper_limits.upper_limit(data, model, level=0.05)
    assert table["upper_limit"]["observed"] == pytest.approx(float(observed), rel=5e-4)
    band = [float(x) for x in np.ravel(expected)]  # -2, -1, median, +1, +2 sigma
    ours = table["upper_limit"]["expected"]  # median, -2, -1, +1, +2 sigma
    np.testing.assert_allclose(ours, [band[2], band[0], band[1], band[3], band[4]], rtol=5e-4)


def test_retried_fits_log_one_line_each_and_no_pyhf_dump(sensible):
    _, records = sensible
    assert not [r for r in records if r.name.startswith("pyhf") and r.levelno >= logging.WARNING]
    retried = [r.getMessage() for r in records if r.name == "brewflow.outputs.mle"]
    assert retried  # the ladder was needed: MIGRAD's first settings miss some refits
    for line in retried:
        assert "\n" not in line
        assert " converged with " in line
    assert all(r.exc_info is None for r in records)


@pytest.mark.parametrize("asimov", [False, True])
def test_negative_yield_is_floored_named_and_the_fit_completes(asimov):
    table, shapes = likelihood.fit_workspace(copy.deepcopy(NEGATIVE), top=3, asimov=asimov)
    assert [(c["channel"], c["sample"], c["bin"], c["prefit"]) for c in table["clipped"]] == [
        ("zmumu", "dy", 2, -2.716)
    ]
    assert table["warnings"][0].startswith("channel zmumu, sample dy, bin 2: predicted yield")
    assert len(table["warnings"]) == 1  # nothing failed
    assert [r["name"] for r in table["impacts"]] == ["jes"]
    shifts = ("prefit_up", "prefit_down", "postfit_up", "postfit_down")
    assert all(table["impacts"][0][k] is not None for k in shifts)
    if asimov:
        assert table["mu"] == pytest.approx(1.0, abs=1e-6)
    # pyhf's own fit of the model with pyhf's own floor (clip_sample_data)
    spec = copy.deepcopy(NEGATIVE)
    if asimov:
        model = pyhf.Workspace(spec).model(clip_sample_data=1e-9)
        pars = np.asarray(model.config.suggested_init(), dtype=float)
        main = np.asarray(model.expected_data(pars, include_auxdata=False))
        spec["observations"] = [{"name": c, "data": main[model.config.channel_slices[c]].tolist()}
                                for c in model.config.channels]  # fmt: skip
    assert table["mu"] == pytest.approx(_pyhf_mle(spec, clip_sample_data=1e-9), rel=1e-4)
    # the bin's floored yield is what the plots show
    dy = shapes["zmumu"]["samples"].index("dy")
    assert shapes["zmumu"]["prefit"]["yields"][dy, 2] == pytest.approx(1e-9)


def test_a_best_fit_that_never_converges_is_one_named_error(tmp_path):
    spec = copy.deepcopy(NEGATIVE)
    spec["observations"][0]["data"] = [float("nan"), 194.0, 24.0]  # no likelihood anywhere
    workspace, model = mle.load(spec)
    with pytest.raises(likelihood.FitFailed) as failed:
        likelihood.maximum_likelihood(model, workspace.data(model), what="the test")
    assert len(failed.value.attempts) >= 6  # the whole ladder, scipy's last
    assert str(failed.value).startswith("the test: no fit converged in ")
    assert "scipy" in failed.value.attempts[-1].settings
    path = tmp_path / "x.pyhf.json"
    path.write_text(json.dumps(spec))
    config = _fit_config(["zmumu", "emu"])
    named = r"^workspace '.*x\.pyhf\.json': the best fit: no fit"
    with pytest.raises(InputError, match=named) as err:
        fit.fit_job(config, "x", path, tmp_path / "out")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out" / "fit.json").exists()


def _fit_config(regions: list[str]) -> dict:
    return {
        "regions": {r: {"cuts": ["a"]} for r in regions},
        "histograms": {"x": {"variable": "x", "edges": [0, 1, 2, 3]}},
        "datasets": {"s": {"process": "sig", "label": "Signal", "is_data": False}},
        "fit": {"histograms": ["x"], "impacts": 2, "cls": 0.05},
        "plots": {"formats": ["png"], "label": "Test"},
        "luminosity": 1000.0,
    }


def test_failed_impacts_and_floored_bins_are_marked_in_every_output(tmp_path, monkeypatch):
    real = likelihood.maximum_likelihood

    def failing(*args, what: str = "", **kwargs):
        if what.startswith(("the impact of jes (postfit_up)", "the observed limit")):
            raise likelihood.FitFailed(what, "no fit converged in 8 attempts (8x test)")
        return real(*args, what=what, **kwargs)

    for module in (likelihood, limits):
        monkeypatch.setattr(module, "maximum_likelihood", failing)
    workspace = tmp_path / "x.pyhf.json"
    workspace.write_text(json.dumps(NEGATIVE))
    table = fit.fit_job(_fit_config(["zmumu", "emu"]), "x", workspace, tmp_path)
    saved = json.loads((tmp_path / "fit.json").read_text())
    assert saved["impacts"][0]["postfit_up"] is None
    assert saved["impacts"][0]["failed"].startswith("postfit_up: no fit converged")
    assert saved["impacts"][0]["postfit_down"] is not None  # the other refits stand
    assert saved["upper_limit"]["observed"] is None
    assert saved["upper_limit"]["failed"].startswith("the observed limit (free fit): no fit")
    assert saved["significance"]["failed"] is None
    assert saved["significance"]["observed"] > 5
    assert saved["clipped"] == table["clipped"]
    assert len(saved["warnings"]) == 3  # the floored bin, the limit, the impact
    markdown = (tmp_path / "fit.md").read_text().splitlines()
    assert markdown[2].startswith("> **Warning:** channel zmumu, sample dy, bin 2")
    assert sum(line.startswith("> **Warning:**") for line in markdown) == 3
    assert any(line.startswith("| jes ") and "failed" in line for line in markdown)
    assert any("observed CLs upper limit" in line and "failed" in line for line in markdown)
    latex = (tmp_path / "fit.tex").read_text()
    assert latex.count(r"\textbf{Warning:}") == 3
    assert r"impact of jes: postfit\_up: no fit converged" in latex
    assert (tmp_path / "impacts.png").is_file()


def test_a_model_without_nuisances_has_analytic_statistics():
    """Regression (issue 28): a fit with every parameter held (the conditional fits of a model
    whose only parameter is mu) made pyhf's minuit optimizer fail with an AttributeError and
    the job with a traceback. One Poisson bin: q0, qmu~ and its Asimov are analytic."""
    n, b, s = 50.0, 20.0, 20.0
    table, _ = likelihood.fit_workspace(one_bin(n, b, s), top=3)
    assert table["mu"] == pytest.approx((n - b) / s, abs=1e-6)
    assert table["pulls"] == table["impacts"] == []

    def twice_delta(mu: float, observed: float) -> float:  # -2 ln L(mu) + 2 ln L(n)
        lam = mu * s + b
        return 2 * (lam - observed - observed * np.log(lam / observed))

    assert table["significance"]["observed"] == pytest.approx(
        np.sqrt(twice_delta(0.0, n)), rel=1e-5
    )

    def cls(mu: float) -> float:  # Cowan et al., qmu~ asymptotics (pyhf's formulae)
        q = twice_delta(mu, n) if mu > table["mu"] else 0.0
        qa = twice_delta(mu, b)  # the background-only Asimov dataset observes b
        if q <= qa:
            return stats.norm.cdf(-np.sqrt(q)) / stats.norm.cdf(np.sqrt(qa) - np.sqrt(q))
        return stats.norm.cdf(-(q + qa) / (2 * np.sqrt(qa))) / stats.norm.cdf(
            -(q - qa) / (2 * np.sqrt(qa))
        )

    observed = optimize.brentq(lambda mu: cls(mu) - 0.05, table["mu"], 10.0)
    median = optimize.brentq(lambda mu: twice_delta(mu, b) - stats.norm.isf(0.025) ** 2, 0.01, 10)
    assert table["upper_limit"]["observed"] == pytest.approx(observed, rel=1e-3)
    assert table["upper_limit"]["expected"][0] == pytest.approx(median, rel=1e-3)
    for figure in (fit_plots.pull_figure(table), fit_plots.impact_figure(table)):
        plt.close(figure)  # no nuisance: the figures say so


def test_a_free_background_normalisation_is_measured_by_its_control_region():
    """shapes.normfactors: a background's free normalisation, fixed by a control region
    without signal; the table reports it as pyhf's own fit finds it."""
    bkg = {"name": "bkg", "type": "normfactor", "data": None}
    spec = {
        "channels": [
            {"name": "sr", "samples": [
                {"name": "sig", "data": [10.0, 5.0], "modifiers": [
                    {"name": "mu", "type": "normfactor", "data": None}]},
                {"name": "b", "data": [20.0, 30.0], "modifiers": [bkg]}]},
            {"name": "cr", "samples": [
                {"name": "b", "data": [200.0, 300.0], "modifiers": [bkg]}]},
        ],
        "observations": [{"name": "sr", "data": [35.0, 38.0]},
                         {"name": "cr", "data": [230.0, 340.0]}],
        "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
        "version": "1.0.0",
    }  # fmt: skip
    table, _ = likelihood.fit_workspace(spec, top=0)
    workspace = pyhf.Workspace(spec)
    model = workspace.model()
    pyhf.set_backend("numpy", pyhf.optimize.minuit_optimizer(verbose=0))
    try:
        best = pyhf.infer.mle.fit(workspace.data(model), model, return_uncertainties=True)
    finally:
        pyhf.set_backend("numpy", "scipy")
    index = model.config.par_slice("bkg").start
    (found,) = table["normalisations"]
    assert found["name"] == "bkg"
    assert found["value"] == pytest.approx(float(best[index, 0]), rel=1e-4)
    assert found["error"] == pytest.approx(float(best[index, 1]), rel=2e-2)
    assert found["value"] == pytest.approx(570 / 500, rel=0.02)  # the control region's ratio
    assert "free normalisation bkg" in fit_text.markdown(table)
