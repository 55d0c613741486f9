"""The fit (brewflow.outputs.likelihood and .fit): its numbers equal pyhf called directly on
the same workspace; an Asimov dataset gives back the signal strength it was made with; bands
and impacts follow the model."""

from __future__ import annotations

import copy
import json

import numpy as np
import pyhf
import pytest
from scipy import stats

from brewflow.outputs import fit, likelihood

SPEC = {
    "channels": [
        {"name": "sr", "samples": [
            {"name": "sig", "data": [5.0, 10.0, 4.0], "modifiers": [
                {"name": "mu", "type": "normfactor", "data": None},
                {"name": "staterror_sr", "type": "staterror", "data": [0.5, 0.8, 0.4]}]},
            {"name": "bkg", "data": [50.0, 40.0, 30.0], "modifiers": [
                {"name": "jes", "type": "histosys",
                 "data": {"hi_data": [52.0, 41.0, 29.0], "lo_data": [48.0, 39.0, 31.0]}},
                {"name": "lumi", "type": "normsys", "data": {"hi": 1.025, "lo": 0.975}},
                {"name": "staterror_sr", "type": "staterror", "data": [2.0, 2.0, 1.5]}]}]},
        {"name": "cr", "samples": [
            {"name": "sig", "data": [1.0, 2.0], "modifiers": [
                {"name": "mu", "type": "normfactor", "data": None}]},
            {"name": "bkg", "data": [100.0, 80.0], "modifiers": [
                {"name": "jes", "type": "histosys",
                 "data": {"hi_data": [104.0, 82.0], "lo_data": [96.0, 78.0]}}]}]},
    ],
    "observations": [{"name": "sr", "data": [60.0, 52.0, 33.0]},
                     {"name": "cr", "data": [99.0, 85.0]}],
    "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
    "version": "1.0.0",
}  # fmt: skip


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
    assert "undefined" in fit._markdown(table)


def test_fit_job_writes_reproducible_outputs(tmp_path):
    config = {
        "regions": {"sr": {"cuts": ["a"]}, "cr": {"cuts": ["b"]}},
        "histograms": {"x": {"variable": "x", "edges": [0, 1, 2, 3]}},
        "datasets": {"s": {"process": "sig", "label": "Signal", "is_data": False}},
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
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert json.loads((first / "fit.json").read_text())["mu"] == table["mu"]
    assert "signal strength" in (first / "fit.md").read_text()
