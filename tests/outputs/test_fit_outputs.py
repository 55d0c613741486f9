"""The fit's outputs as cabinetry and combine users expect them (issue 28): the likelihood scan
and its crossings (against the analytic curve of one Poisson bin and pyhf's own fits), the
CLs scan (against pyhf.infer.hypotest), the yields with their pre- and post-fit uncertainties
(against the covariance propagated by hand), the correlation matrix pruned as cabinetry
prunes it, the data of a blinded bin shown nowhere, no "-0" in fit.md/fit.tex, the words on
why the observed and expected limits differ, and the figures (pytest-mpl baselines)."""

from __future__ import annotations

import copy
import json
import re

import matplotlib.pyplot as plt
import numpy as np
import pyhf
import pytest
from scipy import optimize, stats

from brewflow.outputs import fit, fit_plots, fit_text, likelihood, limits, mle, scan
from brewflow.outputs.scan import likelihood_scan
from tests.outputs.fit_workspaces import SPEC, one_bin, sensible_spec


@pytest.fixture(scope="module")
def spec_fit():
    """The fit of SPEC (observed data, two channels, two systematics): (table, shapes)."""
    return likelihood.fit_workspace(copy.deepcopy(SPEC), top=2)


def _pyhf(spec: dict, optimizer=None):
    """pyhf's own model and data of ``spec``, its backend set to ``optimizer`` (default:
    MIGRAD with pyhf's defaults)."""
    pyhf.set_backend("numpy", optimizer or pyhf.optimize.minuit_optimizer())
    workspace = pyhf.Workspace(copy.deepcopy(spec))
    model = workspace.model()
    return model, np.asarray(workspace.data(model), dtype=float)


def test_likelihood_scan_of_one_poisson_bin_is_the_analytic_curve():
    n, b, s = 50.0, 20.0, 20.0

    def twice_delta(mu: float) -> float:  # -2 ln [Pois(n | mu s + b) / Pois(n | n)]
        lam = mu * s + b
        return 2 * (lam - n - n * np.log(lam / n))

    workspace, model = mle.load(one_bin(n, b, s))
    data = np.asarray(workspace.data(model), dtype=float)
    best = mle.maximum_likelihood(model, data)
    assert best["mu"][0] == pytest.approx((n - b) / s, abs=1e-6)
    scan = likelihood_scan(model, data, best)
    for mu, value in zip(scan["mu"], scan["twice_delta_nll"], strict=True):
        assert value == pytest.approx(twice_delta(mu), abs=1e-5), mu
    for interval in scan["intervals"]:
        t = stats.chi2.ppf(interval["level"], 1)
        low = optimize.brentq(lambda mu, t=t: twice_delta(mu) - t, 0.0, 1.5)
        high = optimize.brentq(lambda mu, t=t: twice_delta(mu) - t, 1.5, 5.0)
        assert interval["low"] == pytest.approx(low, abs=1e-4)
        assert interval["high"] == pytest.approx(high, abs=1e-4)
    assert [i["threshold"] for i in scan["intervals"]] == pytest.approx([1.0, 3.841459])


def test_likelihood_scan_equals_pyhf_fixed_poi_fits(spec_fit):
    table, _ = spec_fit
    scan = table["likelihood_scan"]
    model, data = _pyhf(SPEC, pyhf.optimize.minuit_optimizer(tolerance=1e-6, strategy=2))
    _, best = pyhf.infer.mle.fit(data, model, return_fitted_val=True)

    def twice_delta(mu: float) -> float:
        _, value = pyhf.infer.mle.fixed_poi_fit(mu, data, model, return_fitted_val=True)
        return float(value - best)

    for interval in scan["intervals"]:  # the crossings: where pyhf's curve is at 1 and 3.84
        for end in (interval["low"], interval["high"]):
            assert twice_delta(end) == pytest.approx(interval["threshold"], abs=2e-3)
    for i in (0, len(scan["mu"]) // 2, len(scan["mu"]) - 1):
        mu = scan["mu"][i]
        assert scan["twice_delta_nll"][i] == pytest.approx(twice_delta(mu), abs=1e-3), mu
    assert scan["mu"][0] == pytest.approx(0.0)  # 1.25 x the 95% interval, cut at mu's bound


def test_cls_scan_equals_pyhf_hypotest(spec_fit):
    table, _ = spec_fit
    cls = table["cls_scan"]
    model, data = _pyhf(SPEC)
    for i in (0, len(cls["mu"]) // 2, len(cls["mu"]) - 1):
        mu = cls["mu"][i]
        observed, expected = pyhf.infer.hypotest(mu, data, model, test_stat="qtilde",
                                                 return_expected_set=True)  # fmt: skip
        assert cls["observed"][i] == pytest.approx(float(observed), abs=2e-3), mu
        ours = [cls["expected"][band][i] for band in ("-2", "-1", "0", "+1", "+2")]
        np.testing.assert_allclose(ours, np.ravel(expected), atol=2e-3)


def test_cls_scan_crosses_the_level_at_the_tables_limits(spec_fit):
    table, _ = spec_fit
    cls, limit = table["cls_scan"], table["upper_limit"]
    mus = np.asarray(cls["mu"])
    # where the scan's curves cross 0.05 (log CLs interpolated between points)
    crossing = {
        name: float(np.interp(np.log(0.05), np.log(values)[::-1], mus[::-1]))
        for name, values in (("observed", cls["observed"]), ("median", cls["expected"]["0"]))
    }
    assert crossing["observed"] == pytest.approx(limit["observed"], rel=1e-3)
    assert crossing["median"] == pytest.approx(limit["expected"][0], rel=1e-3)
    model, data = _pyhf(SPEC)  # and pyhf's CLs at the table's limits is the level
    observed, _ = pyhf.infer.hypotest(limit["observed"], data, model, test_stat="qtilde",
                                      return_expected_set=True)  # fmt: skip
    _, expected = pyhf.infer.hypotest(limit["expected"][0], data, model, test_stat="qtilde",
                                      return_expected_set=True)  # fmt: skip
    assert float(observed) == pytest.approx(0.05, rel=2e-3)
    assert float(np.ravel(expected)[2]) == pytest.approx(0.05, rel=2e-3)


def test_a_scan_point_whose_fits_fail_is_left_out_and_named(spec_fit, monkeypatch):
    """The demo's CLs scan (issue 28) had a point whose conditional fit never converged: the
    scan is a picture around results that do not need that point (the limit, the
    intervals), so the point is left out, named in the table and warned about."""
    table, _ = spec_fit
    last = {"likelihood": table["likelihood_scan"]["mu"][-1], "cls": table["cls_scan"]["mu"][-1]}
    scan_fit, limits_fit = scan.maximum_likelihood, limits.maximum_likelihood

    def failing(real, at: float):
        def fit(*args, what: str = "", **kwargs):
            if f"(fit at mu = {at:g})" in what:
                raise mle.FitFailed(what, "no fit converged in 6 attempts (6x test)")
            return real(*args, what=what, **kwargs)

        return fit

    monkeypatch.setattr(scan, "maximum_likelihood", failing(scan_fit, last["likelihood"]))
    monkeypatch.setattr(limits, "maximum_likelihood", failing(limits_fit, last["cls"]))
    failed, _ = likelihood.fit_workspace(copy.deepcopy(SPEC), top=2)
    for name, key in (("likelihood", "likelihood_scan"), ("cls", "cls_scan")):
        assert [p["mu"] for p in failed[key]["failed_points"]] == [last[name]]
        assert failed[key]["mu"] == table[key]["mu"][:-1]
    assert failed["cls_scan"]["observed"] == table["cls_scan"]["observed"][:-1]
    assert failed["upper_limit"] == table["upper_limit"]  # the results stand
    assert failed["likelihood_scan"]["intervals"] == table["likelihood_scan"]["intervals"]
    assert len(failed["warnings"]) == 2
    assert failed["warnings"][1].startswith(f"CLs scan: no point at mu = {last['cls']:.6g} (left")
    plt.close(fit_plots.cls_figure(failed))


# One channel, two bins: a signal scaled by mu, a background with a symmetric (linear) shape
# systematic, both with the bins' MC statistical uncertainty (one gamma per bin).
YIELDS = {
    "channels": [{"name": "c", "samples": [
        {"name": "sig", "data": [4.0, 8.0], "modifiers": [
            {"name": "mu", "type": "normfactor", "data": None},
            {"name": "staterror_c", "type": "staterror", "data": [1.0, 1.5]}]},
        {"name": "bkg", "data": [40.0, 30.0], "modifiers": [
            {"name": "shape", "type": "histosys",
             "data": {"hi_data": [42.0, 33.0], "lo_data": [38.0, 27.0]}},
            {"name": "staterror_c", "type": "staterror", "data": [3.0, 2.0]}]}]}],
    "observations": [{"name": "c", "data": [47.0, 41.0]}],
    "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}],
    "version": "1.0.0",
}  # fmt: skip


def test_yields_and_their_uncertainties_are_the_covariance_propagated_by_hand():
    table, _ = likelihood.fit_workspace(copy.deepcopy(YIELDS), top=0)
    assert table["signal"] == ["sig"]
    model, data = _pyhf(YIELDS, pyhf.optimize.minuit_optimizer(tolerance=1e-8, strategy=2))
    fitted, corr = pyhf.infer.mle.fit(data, model, return_uncertainties=True,
                                      return_correlations=True)  # fmt: skip
    s, b, delta = np.array([4.0, 8.0]), np.array([40.0, 30.0]), np.array([2.0, 3.0])
    widths = np.sqrt(np.array([1.0, 2.25]) + np.array([9.0, 4.0])) / (s + b)  # pyhf staterror
    i_mu, i_shape = model.config.par_slice("mu").start, model.config.par_slice("shape").start
    i_gamma = range(*model.config.par_slice("staterror_c").indices(len(fitted)))
    stages = {
        "prefit": (np.asarray(model.config.suggested_init(), dtype=float),
                   np.diag([0.0 if i == i_mu else 1.0 if i == i_shape else
                            widths[list(i_gamma).index(i)] ** 2 for i in range(len(fitted))])),
        "postfit": (fitted[:, 0], np.asarray(corr) * np.outer(fitted[:, 1], fitted[:, 1])),
    }  # fmt: skip
    for stage, (pars, covariance) in stages.items():
        mu, theta, gamma = pars[i_mu], pars[i_shape], pars[list(i_gamma)]
        # derivatives of each sample's yield per bin by each parameter (parameters x bins)
        d_sig, d_bkg = np.zeros((len(pars), 2)), np.zeros((len(pars), 2))
        d_sig[i_mu] = s * gamma
        d_bkg[i_shape] = delta * gamma
        for k, i in enumerate(i_gamma):
            d_sig[i, k], d_bkg[i, k] = mu * s[k], b[k] + theta * delta[k]
        rows = table["yields"]["c"][stage]
        for name, values, derivatives in (
            ("sig", mu * s * gamma, d_sig),
            ("bkg", (b + theta * delta) * gamma, d_bkg),
            ("background", (b + theta * delta) * gamma, d_bkg),
            ("total", (mu * s + b + theta * delta) * gamma, d_sig + d_bkg),
        ):
            errors = np.sqrt(np.einsum("ib,ij,jb->b", derivatives, covariance, derivatives))
            summed = derivatives.sum(1)
            np.testing.assert_allclose(rows[name]["bins"], values, rtol=1e-6)
            np.testing.assert_allclose(rows[name]["bin_errors"], errors, rtol=2e-3)
            assert rows[name]["sum"] == pytest.approx(values.sum(), rel=1e-6)
            assert rows[name]["error"] == pytest.approx(np.sqrt(summed @ covariance @ summed),
                                                        rel=2e-3), (stage, name)  # fmt: skip


@pytest.fixture
def no_figures(monkeypatch):
    """fit_job without drawing (the figures have tests of their own): its table and text."""
    monkeypatch.setattr(fit, "save_figure", lambda figure, outputs, stamp: None)
    for name in fit_plots.__all__:
        if name.endswith("_figure"):
            monkeypatch.setattr(fit_plots, name, lambda *args, **kwargs: None)


def _config(blind_region: bool = False, formats: tuple[str, ...] = ("png",)) -> dict:
    """The fit of histogram x in regions sr and cr, a window over x's bin 1 (and cr blinded
    whole)."""
    return {
        "regions": {"sr": {"cuts": ["a"]}, "cr": {"cuts": ["b"], "blind": blind_region}},
        "histograms": {"x": {"variable": "x", "edges": [0, 1, 2, 3], "blind": [1.0, 2.0]}},
        "datasets": {"s": {"process": "sig", "label": "Signal", "is_data": False},
                     "d": {"process": "data", "is_data": True}},
        "fit": {"histograms": ["x"], "impacts": 2, "cls": 0.05},
        "plots": {"formats": list(formats), "label": "Test"},
        "luminosity": 1000.0,
    }  # fmt: skip


def _three_bins(spec: dict) -> dict:
    """``spec`` with its two-bin channel (cr) given a third bin, as the histogram x has."""
    spec = copy.deepcopy(spec)
    for sample in spec["channels"][1]["samples"]:
        sample["data"] = [*sample["data"], 1.0]
        for modifier in sample["modifiers"]:
            if modifier["type"] == "histosys":
                modifier["data"] = {k: [*v, 1.0] for k, v in modifier["data"].items()}
    spec["observations"][1]["data"] = [*spec["observations"][1]["data"], 2.0]
    return spec


def test_a_blinded_bin_or_channel_shows_no_data_in_the_yields(tmp_path, no_figures):
    workspace = tmp_path / "x.pyhf.json"
    workspace.write_text(json.dumps(_three_bins(SPEC)))
    table = fit.fit_job(_config(blind_region=True), "x", workspace, tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "fit.json").read_text())
    assert saved["yields"]["sr"]["data"] == {"blinded": [1], "sum": None,
                                             "bins": [60.0, None, 33.0]}  # fmt: skip
    assert saved["yields"]["cr"]["data"] == {"blinded": "channel", "bins": None, "sum": None}
    assert table["blinded_channels"] == ["cr"]
    markdown = (tmp_path / "out" / "fit.md").read_text()
    section = markdown.split("### sr")[1].split("##")[0]
    assert re.search(r"\| data +\| blinded \(bin 1\) +\| blinded \(bin 1\) +\|", section)
    assert re.search(r"\| data +\| blinded +\| blinded +\|", markdown.split("### cr")[1])
    for counts in ("145", "52", "187"):  # sr's sum with and without bin 1, cr's sum
        assert f"| {counts} " not in markdown
    latex = (tmp_path / "out" / "fit.tex").read_text()
    assert r"data & blinded (bin 1) & blinded (bin 1) \\" in latex
    assert r"data & blinded & blinded \\" in latex
    # the totals beside the data are the fit's (pyhf's yields at the best fit)
    sr = saved["yields"]["sr"]["postfit"]["total"]
    assert sr["sum"] == pytest.approx(sum(sr["bins"]), rel=1e-12)


def test_yields_of_unblinded_data_are_the_observations(tmp_path, no_figures):
    config = _config()
    del config["histograms"]["x"]["blind"]
    workspace = tmp_path / "x.pyhf.json"
    workspace.write_text(json.dumps(_three_bins(SPEC)))
    fit.fit_job(config, "x", workspace, tmp_path)
    saved = json.loads((tmp_path / "fit.json").read_text())
    assert saved["yields"]["cr"]["data"] == {"blinded": None, "bins": [99.0, 85.0, 2.0],
                                             "sum": 186.0}  # fmt: skip
    rows = (tmp_path / "fit.md").read_text().split("### cr")[1].split("###")[0]
    assert re.search(r"\| data +\| 186 +\| 186 +\|", rows)
    assert re.search(r"\| sig \(signal\) +\| 4\.00 ± 0 +\|", rows)  # mu held: no error


NEGATIVE_ZERO = re.compile(r"(?<![\w.])[-−]0(?:\.0+)?(?![\d.])")


def test_no_number_is_printed_as_minus_zero(tmp_path, no_figures):
    spec = _three_bins(SPEC)  # a nuisance with almost no effect: impacts of about -1e-6
    for sample in spec["channels"][1]["samples"][1:]:
        sample["modifiers"].append({"name": "tiny", "type": "normsys",
                                    "data": {"hi": 1.00001, "lo": 0.99999}})  # fmt: skip
    workspace = tmp_path / "x.pyhf.json"
    workspace.write_text(json.dumps(spec))
    config = _config()
    config["fit"]["impacts"] = 3
    table = fit.fit_job(config, "x", workspace, tmp_path)
    tiny = next(r for r in table["impacts"] if r["name"] == "tiny")
    shifts = [tiny[k] for k in ("postfit_up", "postfit_down", "prefit_up", "prefit_down")]
    assert any(-5e-5 < x < 0 for x in shifts)  # "-0.0000" before
    for name in ("fit.md", "fit.tex"):
        text = (tmp_path / name).read_text()
        assert not NEGATIVE_ZERO.findall(text), name
    assert fit_text.number(-1e-7, "+.4f") == "0.0000"
    assert fit_text.number(-0.0, ".0f") == "0"
    assert fit_text.number(-0.00051, ".3f") == "-0.001"


def _band(table: dict) -> str:
    """Where the observed limit lies in the expected band, worked out here."""
    limit = table["upper_limit"]
    median, m2, m1, p1, p2 = limit["expected"]
    if limit["observed"] > p2:
        return f"above the expected band's +2σ edge ({p2:.3f})"
    if limit["observed"] < m2:
        return f"below the expected band's −2σ edge ({m2:.3f})"
    n = np.interp(limit["observed"], [m2, m1, median, p1, p2], [-2, -1, 0, 1, 2])
    return ("inside the ±1σ" if abs(n) <= 1 else "between the 1 and 2σ") + " band"


def _observing(spec: dict, background_factor: float, mu: float) -> dict:
    """``spec`` observing its nominal prediction with the backgrounds scaled by
    ``background_factor`` and the signal by ``mu``."""
    spec = copy.deepcopy(spec)
    spec["observations"] = [
        {"name": c["name"], "data": np.sum([np.asarray(s["data"]) * (
            mu if s["name"] in ("sig", "top") else background_factor) for s in c["samples"]],
            axis=0).tolist()}
        for c in spec["channels"]
    ]  # fmt: skip
    return spec


@pytest.mark.parametrize(
    ("case", "spec"),
    [
        ("excess", sensible_spec()),
        ("background", _observing(SPEC, 1.0, 0.0)),
        ("deficit", _observing(SPEC, 0.85, 0.0)),
    ],
)
def test_why_the_limits_differ_is_said_from_this_fits_numbers(case, spec):
    table, _ = likelihood.fit_workspace(spec, top=0)
    text = fit_text.limit_explanation(table)
    limit = table["upper_limit"]
    median, m2, m1, p1, p2 = limit["expected"]
    assert f"The expected limit, {median:.3f}," in text
    assert f"in [{m1:.3f}, {p1:.3f}], 95% in [{m2:.3f}, {p2:.3f}]" in text
    assert f"The observed limit, {limit['observed']:.3f}, is computed on the data" in text
    assert f"It is {limit['observed'] / median:.2f} times the expected median" in text
    assert _band(table) in text
    measured = f"μ̂ = {fit_text.number(table['mu'], '.3f')} ± {table['mu_error']:.3f}"
    assert measured in text
    if case == "excess":  # mu = 1.5 +- 0.5 injected: the limit follows mu-hat
        assert limit["observed"] > p2
        assert "The reason is the signal the data hold" in text
        approx = table["mu"] + stats.norm.isf(0.05) * table["mu_error"]
        assert f"μ̂ + 1.64 σ(μ̂) ≈ {approx:.3f}" in text
        assert abs(approx - limit["observed"]) < 0.1 * limit["observed"]  # the words hold
    elif case == "background":  # data = the background: the limit is the median
        assert limit["observed"] == pytest.approx(median, rel=2e-3)
        assert "inside the ±1σ band of the expected limit (0.0σ" in text
        assert "agree with the background-only hypothesis" in text
    else:  # fewer events than the background: mu-hat at its bound 0, the limit below
        assert limit["observed"] < m1
        assert table["mu"] == pytest.approx(0.0, abs=1e-6)
        assert "The reason is a deficit" in text
    assert not NEGATIVE_ZERO.findall(text)


def test_correlations_are_pruned_as_cabinetry_prunes_them(spec_fit):
    table, _ = spec_fit
    corr = table["correlations"]
    model, data = _pyhf(SPEC, pyhf.optimize.minuit_optimizer(tolerance=1e-8, strategy=2))
    _, matrix = pyhf.infer.mle.fit(data, model, return_uncertainties=True,
                                   return_correlations=True)  # fmt: skip
    matrix = np.asarray(matrix)
    # cabinetry.visualize.correlation_matrix: drop a parameter whose correlations with every
    # other one are below the threshold, or that is fixed (all correlations 0)
    below = np.abs(matrix) < corr["threshold"]
    np.fill_diagonal(below, True)
    drop = np.all(below, axis=0) | np.all(matrix == 0.0, axis=0)
    names = [n for n, d in zip(model.config.par_names, drop, strict=True) if not d]
    assert sorted(corr["names"]) == sorted(names)
    assert "mu" in corr["names"]
    assert corr["pruned"] == len(model.config.par_names) - len(names)
    index = [model.config.par_names.index(n) for n in corr["names"]]
    np.testing.assert_allclose(corr["matrix"], matrix[np.ix_(index, index)], atol=2e-3)


def test_pulls_are_sorted_and_defined_against_the_prior(spec_fit):
    table, _ = spec_fit
    pulls = table["pulls"]
    assert [abs(p["pull"]) for p in pulls] == sorted((abs(p["pull"]) for p in pulls),
                                                     reverse=True)  # fmt: skip
    model, data = _pyhf(SPEC, pyhf.optimize.minuit_optimizer(tolerance=1e-8, strategy=2))
    fitted = pyhf.infer.mle.fit(data, model, return_uncertainties=True)
    for p in pulls:  # histosys and normsys: theta_0 = 0, sigma_0 = 1
        value, error = fitted[model.config.par_slice(p["name"])][0]
        assert p["pull"] == pytest.approx(value, abs=1e-4)
        assert p["constraint"] == pytest.approx(error, rel=1e-3)


@pytest.mark.mpl_image_compare
def test_pull_figure(spec_fit):
    return fit_plots.pull_figure(spec_fit[0], "Test", "1 fb$^{-1}$ (13 TeV)")


@pytest.mark.mpl_image_compare
def test_impact_figure(spec_fit):
    return fit_plots.impact_figure(spec_fit[0], "Test")


@pytest.mark.mpl_image_compare
def test_correlation_figure(spec_fit):
    return fit_plots.correlation_figure(spec_fit[0], "Test")


@pytest.mark.mpl_image_compare
def test_scan_figure(spec_fit):
    return fit_plots.scan_figure(spec_fit[0], "Test", "1 fb$^{-1}$ (13 TeV)")


@pytest.mark.mpl_image_compare
def test_cls_figure(spec_fit):
    return fit_plots.cls_figure(spec_fit[0], "Test", "1 fb$^{-1}$ (13 TeV)")


def _postfit(spec_fit, hidden):
    _, shapes = spec_fit
    channel = next(iter(shapes))
    edges = np.arange(len(shapes[channel]["data"]) + 1, dtype=float)
    return fit_plots.channel_figure(
        shapes[channel], "postfit", edges, styles={}, title="sr", xlabel="x [GeV]",
        rlabel="1 fb$^{-1}$ (13 TeV)", label="Test", hidden=hidden,
    )  # fmt: skip


@pytest.mark.mpl_image_compare
def test_postfit_channel_figure(spec_fit):
    """The post-fit plot is drawn as the data/MC plots: Garwood errors, legend and text over
    nothing drawn, the y title with the unit."""
    from brewflow.outputs.points import garwood
    from tests.outputs.overlap import overlaps

    _, shapes = spec_fit
    data = np.asarray(next(iter(shapes.values()))["data"], dtype=float)
    fig = _postfit(spec_fit, np.zeros(len(data), dtype=bool))
    ax = fig.axes[0]
    assert not overlaps(ax)
    assert ax.get_ylabel() == "Events / 1 GeV"
    low, high = garwood(data)
    bars = next(c for c in ax.containers if c.__class__.__name__ == "ErrorbarContainer")
    segments = bars.lines[2][0].get_segments()
    np.testing.assert_allclose([s[:, 1].min() for s in segments], low, rtol=1e-9)
    np.testing.assert_allclose([s[:, 1].max() for s in segments], high, rtol=1e-9)
    return fig


def test_a_blinded_channel_figure_has_no_data_and_no_ratio_panel(spec_fit):
    fig = _postfit(spec_fit, None)
    assert len(fig.axes) == 1
    assert not [c for c in fig.axes[0].containers if c.__class__.__name__ == "ErrorbarContainer"]
