"""The statistics of the fit: a maximum-likelihood fit of a pyhf workspace (HistFactory;
MIGRAD and HESSE of iminuit), the signal strength with its uncertainty, observed and expected
discovery significances, a CLs upper limit, nuisance pulls and constraints, impacts, and the
pre- and post-fit yields of every channel with their uncertainty bands.

Everything is pyhf's likelihood; this module adds no statistics of its own beyond linear error
propagation of the fitted covariance to the bin yields (the post-fit band) and the impact of a
nuisance (the change of the signal strength when the nuisance is fixed at its value +- its
uncertainty and the rest refitted). :mod:`brewflow.outputs.fit` writes what it finds.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyhf
from numpy.typing import ArrayLike
from scipy import optimize, stats

from brewflow.errors import InputError

__all__ = [
    "Fit",
    "asimov_data",
    "background_free",
    "fit_workspace",
    "impacts",
    "maximum_likelihood",
    "nuisances",
    "prefit_covariance",
    "significance",
    "upper_limit",
    "yield_band",
]

log = logging.getLogger(__name__)

PRECISE = ((1e-8, 2), (1e-3, 1), (0.1, 1))
"""MIGRAD's (tolerance, strategy) for a best fit, tried in turn until one converges: the first
finds the signal strength of an Asimov dataset to ~1e-7 (pyhf's default, 0.1, leaves ~1e-4 of
its error), the others are the fallbacks where numerical gradients cannot get that close."""
QUICK = PRECISE[1:]
"""The same for refits that need the signal strength to ~1e-4 of its error (impacts)."""
TEST_TOLERANCE = 0.1
"""MIGRAD's tolerance in the fits of the test statistics (pyhf's default)."""


def use_minuit(tolerance: float = TEST_TOLERANCE, strategy: int = 1) -> None:
    """pyhf on numpy, minimised by iminuit (MIGRAD, errors from HESSE)."""
    optimizer = pyhf.optimize.minuit_optimizer(tolerance=tolerance, strategy=strategy)
    pyhf.set_backend("numpy", optimizer)


@dataclass(frozen=True)
class Fit:
    """A maximum-likelihood fit: parameter ``names`` (one per scalar parameter), best-fit
    ``values``, their ``errors`` and ``correlations`` (HESSE), and ``twice_nll`` at the best
    fit."""

    names: list[str]
    values: np.ndarray
    errors: np.ndarray
    correlations: np.ndarray
    twice_nll: float

    def __getitem__(self, name: str) -> tuple[float, float]:
        i = self.names.index(name)
        return float(self.values[i]), float(self.errors[i])

    @property
    def covariance(self) -> np.ndarray:
        return self.correlations * np.outer(self.errors, self.errors)


def parameter_names(model: pyhf.pdf.Model) -> list[str]:
    """One name per scalar parameter, in the model's order (``name[i]`` for vectors)."""
    out = []
    for name in model.config.par_order:
        n = model.config.param_set(name).n_parameters
        out += [name] if n == 1 else [f"{name}[{i}]" for i in range(n)]
    return out


def maximum_likelihood(
    model: pyhf.pdf.Model,
    data: ArrayLike,
    fixed: Mapping[str, float] | None = None,
    init: ArrayLike | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    precise: bool = True,
) -> Fit:
    """The maximum-likelihood fit of ``model`` to ``data`` (main and auxiliary), with the
    scalar parameters of ``fixed`` held at their values and those of ``bounds`` in theirs;
    ``precise``: MIGRAD's tolerances of :data:`PRECISE`, else :data:`QUICK`."""
    names = parameter_names(model)
    init_pars = list(np.asarray(init if init is not None else model.config.suggested_init()))
    fixed_params = list(model.config.suggested_fixed())
    par_bounds = list(model.config.suggested_bounds())
    for name, limits in (bounds or {}).items():
        par_bounds[names.index(name)] = limits
    for name, value in (fixed or {}).items():
        i = names.index(name)
        init_pars[i], fixed_params[i] = value, True
    settings = PRECISE if precise else QUICK
    for tolerance, strategy in settings:
        use_minuit(tolerance, strategy)
        try:
            result, correlations, twice_nll = pyhf.infer.mle.fit(
                data, model, init_pars=init_pars, fixed_params=fixed_params,
                par_bounds=par_bounds, return_uncertainties=True, return_correlations=True,
                return_fitted_val=True,
            )  # fmt: skip
            break
        except pyhf.exceptions.FailedMinimization:
            if (tolerance, strategy) == settings[-1]:
                raise
            log.debug("MIGRAD missed tolerance %g (strategy %d); trying the next", tolerance,
                      strategy)  # fmt: skip
    result = np.asarray(result, dtype=float)
    return Fit(names, result[:, 0], result[:, 1], np.asarray(correlations), float(twice_nll))


def asimov_data(model: pyhf.pdf.Model, mu: float = 1.0) -> np.ndarray:
    """The pre-fit Asimov dataset: the expectation with every nuisance at its nominal value and
    the signal strength ``mu`` (main bins, then the auxiliary data)."""
    pars = np.asarray(model.config.suggested_init(), dtype=float)
    pars[model.config.poi_index] = mu
    return np.asarray(model.expected_data(pars), dtype=float)


def significance(model: pyhf.pdf.Model, data: ArrayLike) -> tuple[float, float]:
    """``(observed, expected)`` discovery significance: ``sqrt(q0)`` of the data and of the
    Asimov dataset of a signal strength of 1 with the nuisances at their fit to the data (as
    pyhf's asymptotic calculator makes it); no p-value in between, so a large one does not
    round to infinity."""
    use_minuit()
    init = model.config.suggested_init()
    bounds = model.config.suggested_bounds()
    fixed = model.config.suggested_fixed()
    q0 = pyhf.infer.test_statistics.q0(0.0, data, model, init, bounds, fixed)
    asimov = pyhf.infer.calculators.generate_asimov_data(1.0, data, model, init, bounds, fixed)
    q0_asimov = pyhf.infer.test_statistics.q0(0.0, asimov, model, init, bounds, fixed)
    return float(np.sqrt(max(float(q0), 0.0))), float(np.sqrt(max(float(q0_asimov), 0.0)))


def _robust(call: Any, *args: Any, **kwargs: Any) -> Any:
    """``call`` with MIGRAD's cheap strategy 0; where it misses the minimum, with strategy 1
    (then strategy 0 again for the next call)."""
    try:
        return call(*args, **kwargs)
    except pyhf.exceptions.FailedMinimization:
        use_minuit(strategy=1)
        try:
            return call(*args, **kwargs)
        finally:
            use_minuit(strategy=0)


def upper_limit(
    model: pyhf.pdf.Model,
    data: ArrayLike,
    level: float = 0.05,
    guess: tuple[float, float] = (0.0, 1.0),
    rtol: float = 1e-4,
) -> tuple[float, list[float]]:
    """The CLs upper limit on the signal strength at confidence ``1 - level`` with pyhf's
    asymptotic formulae for the qmu~ test statistic: observed, and expected (median, then -2,
    -1, +1, +2 sigma), to ``rtol``.

    The same numbers as ``pyhf.infer.intervals.upper_limits.upper_limit`` (the tests check),
    computed with fewer fits: the unconditional fits of the data and of the background-only
    Asimov dataset (nuisances fitted to the data at mu = 0, as pyhf makes it) do not depend on
    the tested mu and are made once; each tested mu costs one conditional fit per dataset;
    an expected limit solves pyhf's expected CLs of band N, ``Phi(-(N + sqrt(qA))) / Phi(-N) =
    level``, for ``sqrt(qA(mu))``; roots are found by the secant method in log(mu) from the
    best fit ``guess`` ``(mu, error)``."""
    use_minuit(strategy=0)  # no errors needed: MIGRAD's cheaper strategy
    init, bounds = model.config.suggested_init(), model.config.suggested_bounds()
    fixed = model.config.suggested_fixed()
    poi = model.config.poi_index
    observed_data = np.asarray(data, dtype=float)
    asimov = np.asarray(
        pyhf.infer.calculators.generate_asimov_data(0.0, observed_data, model, init, bounds, fixed)
    )
    datasets = {"data": observed_data, "asimov": asimov}
    free = {
        name: _robust(
            pyhf.infer.mle.fit, values, model, init, bounds, fixed, return_fitted_val=True
        )
        for name, values in datasets.items()
    }

    @functools.cache
    def q(name: str, mu: float) -> float:
        """pyhf's qmu~ of ``mu`` on a dataset: 0 above its best fit, else the rise of -2 ln L
        from the unconditional to the conditional fit."""
        best, twice_nll = free[name]
        if float(np.asarray(best)[poi]) > mu:
            return 0.0
        conditional = _robust(pyhf.infer.mle.fixed_poi_fit, mu, datasets[name], model, init,
                              bounds, fixed, return_fitted_val=True)[1]  # fmt: skip
        return max(float(conditional) - float(twice_nll), 0.0)

    def cls(mu: float) -> float:
        """pyhf's observed CLs (AsymptoticCalculator, qtilde)."""
        q_mu, q_a = q("data", mu), q("asimov", mu)
        sqrt_mu, sqrt_a = np.sqrt(q_mu), np.sqrt(q_a)
        t = sqrt_mu - sqrt_a if sqrt_mu < sqrt_a else (q_mu - q_a) / (2 * sqrt_a)
        return float(stats.norm.cdf(-(t + sqrt_a)) / stats.norm.cdf(-t))

    mu_hat, error = max(guess[0], 0.0), guess[1]
    observed = _solve(lambda mu: np.log(max(cls(mu), 1e-300) / level), mu_hat + 1.7 * error,
                      rtol, bounds[poi][1])  # fmt: skip
    expected: list[float] = []
    for n in (0, 2, 1, -1, -2):  # pyhf's band N = +2 is the lowest limit (-2 sigma)
        target = expected_target(n, level)
        start = expected[0] * target / expected_target(0, level) if expected else 2 * error
        expected.append(_solve(
            lambda mu, t=target: np.log(t / max(np.sqrt(q("asimov", mu)), 1e-300)),
            start, rtol, bounds[poi][1],
        ))  # fmt: skip
    return observed, expected


def expected_target(n: int, level: float) -> float:
    """``sqrt(qA)`` where pyhf's expected CLs of band ``n`` equals ``level``."""
    return float(stats.norm.ppf(1 - level * stats.norm.cdf(-n)) - n)


def _solve(f: Any, start: float, rtol: float, top: float) -> float:
    """The root of ``f`` (decreasing in mu, smooth in log mu) by the secant method in log mu
    from ``start``; bisection (brentq) in a widened bracket where the secant steps fail."""
    x0, x1 = np.log(start), np.log(start) + 0.1
    f0, f1 = f(np.exp(x0)), f(np.exp(x1))
    for _ in range(30):
        if f1 == f0 or not np.isfinite(f1):
            break
        x2 = x1 - f1 * (x1 - x0) / (f1 - f0)
        if abs(x2 - x1) < rtol:
            return float(np.exp(x2))
        x0, f0, x1 = x1, f1, min(x2, np.log(top))
        f1 = f(np.exp(x1))
    low, high = start / 2, min(start * 2, top)
    while f(low) < 0 and low > 1e-9 * top:
        low /= 2
    while f(high) > 0 and high < top:
        high = min(2 * high, top)
    return float(optimize.brentq(f, low, high, rtol=rtol))


def nuisances(model: pyhf.pdf.Model) -> list[str]:
    """The constrained nuisance parameters of the systematics (``histosys`` and ``normsys``:
    unit Gaussian constraints), in model order; the per-bin MC statistical ones are left
    out."""
    kinds = dict(model.config.modifiers)
    return [n for n in model.config.par_order if kinds.get(n) in ("histosys", "normsys")]


def impacts(model: pyhf.pdf.Model, data: ArrayLike, best: Fit, top: int) -> list[dict[str, Any]]:
    """The ``top`` nuisances by impact on the signal strength: ranked by the linear estimate
    (correlation x error of mu), then each refitted with the nuisance fixed at its pre-fit
    (+-1) and post-fit (+- its error) shifts; the changes of mu, largest first."""
    poi = model.config.poi_name
    mu, mu_error = best[poi]
    i_mu = best.names.index(poi)
    ranked = sorted(
        nuisances(model),
        key=lambda n: -abs(best.correlations[i_mu, best.names.index(n)] * mu_error),
    )[:top]
    out: list[dict[str, Any]] = []
    for name in ranked:
        value, error = best[name]
        shifts: dict[str, float] = {}
        targets = {"prefit_up": value + 1.0, "prefit_down": value - 1.0,
                   "postfit_up": value + error, "postfit_down": value - error}  # fmt: skip
        for key, target in targets.items():
            refit = maximum_likelihood(model, data, fixed={name: target}, init=best.values,
                                       precise=False)  # fmt: skip
            shifts[key] = refit[poi][0] - mu
        out.append({"name": name, **shifts})
    out.sort(key=lambda r: -max(abs(r["postfit_up"]), abs(r["postfit_down"])))
    return out


def _yields(model: pyhf.pdf.Model, pars: np.ndarray) -> np.ndarray:
    """Expected main-bin yields per sample (samples x bins)."""
    return np.asarray(model.main_model.expected_data(pars, return_by_sample=True), dtype=float)


def yield_band(model: pyhf.pdf.Model, pars: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    """The uncertainty of the total expected yield per bin: the parameters' ``covariance``
    propagated linearly (central differences of the yields, steps of 0.1 standard
    deviations), correlations included."""
    errors = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    jacobian = np.zeros((len(pars), _yields(model, pars).shape[1]))
    for i, error in enumerate(errors):
        if error == 0:
            continue
        step = np.zeros_like(pars)
        step[i] = 0.1 * error
        up, down = _yields(model, pars + step).sum(0), _yields(model, pars - step).sum(0)
        jacobian[i] = (up - down) / (2 * step[i])
    return np.sqrt(np.clip(np.einsum("ib,ij,jb->b", jacobian, covariance, jacobian), 0.0, None))


def prefit_covariance(model: pyhf.pdf.Model) -> np.ndarray:
    """The parameters' pre-fit covariance: their constraint widths squared (no correlation);
    free parameters (the signal strength) held."""
    variances = []
    for name in model.config.par_order:
        paramset = model.config.param_set(name)
        widths = paramset.width() if getattr(paramset, "constrained", False) else None
        variances += list(widths if widths is not None else [0.0] * paramset.n_parameters)
    return np.diag(np.square(np.asarray(variances, dtype=float)))


def background_free(model: pyhf.pdf.Model, data: np.ndarray) -> list[str]:
    """Bins (``<channel> bin <i>``) where the background-only model expects no event but
    events are observed or signal is expected: the background-only likelihood is zero there,
    so neither a discovery significance nor a CLs limit exists (the signal strength does)."""
    n = model.config.nmaindata
    background = asimov_data(model, 0.0)[:n]
    signal = asimov_data(model, 1.0)[:n] - background
    empty = (background <= 0) & ((np.asarray(data)[:n] > 0) | (signal > 0))
    return [
        f"{channel} bin {b}"
        for channel in model.config.channels
        for b in np.flatnonzero(empty[model.config.channel_slices[channel]])
    ]


def fit_workspace(
    spec: Mapping[str, Any],
    *,
    level: float = 0.05,
    top: int = 10,
    asimov: bool = False,
    blinded: Sequence[str] = (),
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Everything the fit reports for a workspace ``spec``: ``(table, shapes)``. ``table``:
    the signal strength and its error, significances, CLs limit, pulls, impacts; ``shapes``:
    per channel the pre- and post-fit yields per sample, their bands and the data.
    ``asimov``: fit the pre-fit Asimov dataset (mu = 1) instead of the observations;
    ``blinded`` channels' observations are the Asimov already (blinded, or an era without
    data; see :mod:`brewflow.outputs.fit_inputs`)."""
    workspace = pyhf.Workspace(dict(spec))
    model = workspace.model()
    if asimov or not spec.get("observations"):
        data = asimov_data(model)
    else:
        data = np.asarray(workspace.data(model), dtype=float)
    n = model.config.nmaindata
    if not np.any(asimov_data(model, 1.0)[:n] - asimov_data(model, 0.0)[:n]):
        raise InputError(
            f"the signal ({', '.join(model.config.samples)}: the samples with the signal "
            "strength) expects no event in any channel: the signal strength cannot be "
            "measured; check shapes.signal and the regions of the fitted histogram"
        )
    best = maximum_likelihood(model, data)
    poi = model.config.poi_name
    mu, mu_error = best[poi]
    empty = background_free(model, data)
    if empty:
        log.warning("no background expected in %s: no significance or limit", ", ".join(empty))
        z_obs = z_exp = limit = None
        expected: list[float] | None = None
    else:
        z_obs, z_exp = significance(model, data)
        limit, expected = upper_limit(model, data, level, guess=(mu, mu_error))
    pulls = []
    for name in nuisances(model):
        value, error = best[name]
        pulls.append({"name": name, "pull": value, "constraint": error})
    table = {
        "poi": poi,
        "mu": mu,
        "mu_error": mu_error,
        "significance": {"observed": z_obs, "expected": z_exp},
        "upper_limit": {"level": level, "observed": limit, "expected": expected},
        "twice_nll": best.twice_nll,
        "no_background": empty,
        "data": "asimov" if asimov or not spec.get("observations") else "observed",
        "blinded_channels": list(blinded),
        "channels": list(model.config.channels),
        "pulls": pulls,
        "impacts": impacts(model, data, best, top),
    }
    prefit_pars = np.asarray(model.config.suggested_init(), dtype=float)
    prefit_band = yield_band(model, prefit_pars, prefit_covariance(model))
    postfit_band = yield_band(model, best.values, best.covariance)
    stages = {
        "prefit": (_yields(model, prefit_pars), prefit_band),
        "postfit": (_yields(model, best.values), postfit_band),
    }
    main = np.asarray(data[: model.config.nmaindata], dtype=float)
    shapes: dict[str, Any] = {}
    for channel in model.config.channels:
        bins = model.config.channel_slices[channel]
        shapes[channel] = {
            "samples": list(model.config.samples),
            "data": main[bins],
            **{stage: {"yields": y[:, bins], "band": b[bins]} for stage, (y, b) in stages.items()},
        }
    return table, shapes
