"""The statistics of the fit: a maximum-likelihood fit of a pyhf workspace (HistFactory;
MIGRAD and HESSE of iminuit), the signal strength with its uncertainty, observed and expected
discovery significances, a CLs upper limit, nuisance pulls and constraints, impacts, and the
pre- and post-fit yields of every channel with their uncertainty bands.

Everything is pyhf's likelihood; this module adds no statistics of its own beyond linear error
propagation of the fitted covariance to the bin yields (the post-fit band) and the impact of a
nuisance (the change of the signal strength when the nuisance is fixed at its value +- its
uncertainty and the rest refitted). Every fit goes through
:func:`brewflow.outputs.mle.maximum_likelihood` (its retry ladder; a fit that still fails marks
the significance, the limit or an impact failed, and only a failed best fit fails the job), on
the model :func:`brewflow.outputs.mle.load` builds (negative predicted yields floored as
combine does). :mod:`brewflow.outputs.fit` writes what it finds.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pyhf
from numpy.typing import ArrayLike
from scipy import optimize, stats

from brewflow.errors import InputError
from brewflow.outputs.mle import (
    FLOOR,
    Fit,
    FitFailed,
    load,
    maximum_likelihood,
    negative_yields,
    parameter_names,
    test_settings,
    widths,
)

__all__ = [
    "Fit",
    "FitFailed",
    "asimov_data",
    "background_free",
    "fit_workspace",
    "impacts",
    "maximum_likelihood",
    "nuisances",
    "parameter_names",
    "prefit_covariance",
    "significance",
    "upper_limit",
    "yield_band",
]

log = logging.getLogger(__name__)


def asimov_data(model: pyhf.pdf.Model, mu: float = 1.0) -> np.ndarray:
    """The pre-fit Asimov dataset: the expectation with every nuisance at its nominal value and
    the signal strength ``mu`` (main bins, then the auxiliary data)."""
    pars = np.asarray(model.config.suggested_init(), dtype=float)
    pars[model.config.poi_index] = mu
    return np.asarray(model.expected_data(pars), dtype=float)


def conditional_asimov(
    model: pyhf.pdf.Model,
    data: ArrayLike,
    mu: float,
    first: Sequence[tuple[float, int]],
    what: str,
) -> np.ndarray:
    """The Asimov dataset of signal strength ``mu`` with the nuisances at their fit to
    ``data`` at that ``mu`` (pyhf's ``generate_asimov_data``)."""
    poi = model.config.poi_name
    fit = maximum_likelihood(model, data, fixed={poi: mu}, first=first, what=what)
    return np.asarray(model.expected_data(fit.values), dtype=float)


def significance(model: pyhf.pdf.Model, data: ArrayLike) -> tuple[float, float]:
    """``(observed, expected)`` discovery significance: ``sqrt(q0)`` of the data and of the
    Asimov dataset of a signal strength of 1 with the nuisances at their fit to the data (as
    pyhf's asymptotic calculator makes it, with its fit settings); no p-value in between, so
    a large one does not round to infinity."""
    first = test_settings(strategy=1)
    asimov = conditional_asimov(model, data, 1.0, first, "the expected significance's Asimov")
    return (
        float(np.sqrt(_q0(model, data, first, "the observed significance"))),
        float(np.sqrt(_q0(model, asimov, first, "the expected significance"))),
    )


def _q0(
    model: pyhf.pdf.Model, data: ArrayLike, first: Sequence[tuple[float, int]], what: str
) -> float:
    """pyhf's ``q0``: the rise of -2 ln L from the free fit to the fit at mu = 0 (0 where the
    best fit is below 0)."""
    poi = model.config.poi_name
    free = maximum_likelihood(model, data, first=first, what=f"{what} (free fit)")
    if free[poi][0] < 0:
        return 0.0
    null = maximum_likelihood(model, data, fixed={poi: 0.0}, first=first,
                              what=f"{what} (fit at mu = 0)")  # fmt: skip
    return max(null.twice_nll - free.twice_nll, 0.0)


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
    first = test_settings(strategy=0)  # no errors needed: MIGRAD's cheaper strategy
    bounds = model.config.suggested_bounds()
    poi, name_of_poi = model.config.poi_index, model.config.poi_name
    observed_data = np.asarray(data, dtype=float)
    asimov = conditional_asimov(model, observed_data, 0.0, first, "the limit's Asimov")
    datasets = {"data": observed_data, "asimov": asimov}
    what = {"data": "the observed limit", "asimov": "the expected limit"}
    free = {
        name: maximum_likelihood(model, values, first=first, what=f"{what[name]} (free fit)")
        for name, values in datasets.items()
    }

    @functools.cache
    def q(name: str, mu: float) -> float:
        """pyhf's qmu~ of ``mu`` on a dataset: 0 above its best fit, else the rise of -2 ln L
        from the unconditional to the conditional fit."""
        best = free[name]
        if float(best.values[poi]) > mu:
            return 0.0
        conditional = maximum_likelihood(
            model, datasets[name], fixed={name_of_poi: mu}, first=first,
            what=f"{what[name]} (fit at mu = {mu:g})",
        )  # fmt: skip
        return max(conditional.twice_nll - best.twice_nll, 0.0)

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
    from ``start``; bisection (brentq) in a widened bracket where the secant steps fail.
    Raises :class:`FitFailed` where no root lies below ``top`` (the signal strength's upper
    bound)."""
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
    if f(high) > 0 or f(low) < 0:
        raise FitFailed(
            "the CLs upper limit",
            f"no limit in [{low:.3g}, {high:.3g}] (the signal strength's bounds); widen the "
            "signal strength's bounds in the workspace's measurement",
        )
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
    (+-1) and post-fit (+- its error) shifts; the changes of mu, largest first. A refit that
    does not converge leaves its shift None and says why in the row's ``failed``."""
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
        shifts: dict[str, float | None] = {}
        failed = []
        targets = {"prefit_up": value + 1.0, "prefit_down": value - 1.0,
                   "postfit_up": value + error, "postfit_down": value - error}  # fmt: skip
        for key, target in targets.items():
            try:
                refit = maximum_likelihood(
                    model, data, fixed={name: target}, init=best.values, precise=False,
                    what=f"the impact of {name} ({key})",
                )  # fmt: skip
            except FitFailed as err:
                shifts[key] = None
                failed.append(f"{key}: {err.reason}")
                continue
            shifts[key] = refit[poi][0] - mu
        out.append({"name": name, **shifts, "failed": "; ".join(failed) or None})
    out.sort(key=lambda r: -max(abs(r["postfit_up"] or 0.0), abs(r["postfit_down"] or 0.0)))
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
    return np.diag(np.square(widths(model)))


def background_free(model: pyhf.pdf.Model, data: np.ndarray) -> list[str]:
    """Bins (``<channel> bin <i>``) where the background-only model expects no event but
    events are observed or signal is expected: the background-only likelihood is zero there,
    so neither a discovery significance nor a CLs limit exists (the signal strength does)."""
    n = model.config.nmaindata
    background = asimov_data(model, 0.0)[:n]
    signal = asimov_data(model, 1.0)[:n] - background
    floors = len(model.config.samples) * FLOOR  # a floored model's "nothing"
    empty = (background <= floors) & ((np.asarray(data)[:n] > floors) | (signal > floors))
    return [
        f"{channel} bin {b}"
        for channel in model.config.channels
        for b in np.flatnonzero(empty[model.config.channel_slices[channel]])
    ]


def _unless_failed(compute: Callable[[], tuple[Any, Any]], part: dict[str, Any]) -> tuple[Any, Any]:
    """``compute()``, or ``(None, None)`` with why in ``part["failed"]`` where a fit fails."""
    try:
        return compute()
    except FitFailed as err:
        part["failed"] = str(err)
        return None, None


def fit_workspace(
    spec: Mapping[str, Any],
    *,
    level: float = 0.05,
    top: int = 10,
    asimov: bool = False,
    blinded: Sequence[str] = (),
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Everything the fit reports for a workspace ``spec``: ``(table, shapes)``. ``table``:
    the signal strength and its error, significances, CLs limit, pulls, impacts, the bins
    whose negative predicted yields were floored (``clipped``) and one line per problem
    (``warnings``: floored bins, a significance, limit or impact whose fits failed, then
    None with why in its ``failed``); ``shapes``:
    per channel the pre- and post-fit yields per sample, their bands and the data.
    ``asimov``: fit the pre-fit Asimov dataset (mu = 1) instead of the observations;
    ``blinded`` channels' observations are the Asimov already (blinded, or an era without
    data; see :mod:`brewflow.outputs.fit_inputs`)."""
    workspace, model = load(spec)
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
    best = maximum_likelihood(model, data, what="the best fit")
    poi = model.config.poi_name
    mu, mu_error = best[poi]
    empty = background_free(model, data)
    z: dict[str, Any] = {"observed": None, "expected": None, "failed": None}
    limit: dict[str, Any] = {"level": level, "observed": None, "expected": None, "failed": None}
    if empty:
        log.warning("no background expected in %s: no significance or limit", ", ".join(empty))
    else:
        z["observed"], z["expected"] = _unless_failed(lambda: significance(model, data), z)
        limit["observed"], limit["expected"] = _unless_failed(
            lambda: upper_limit(model, data, level, guess=(mu, mu_error)), limit
        )
    prefit_pars = np.asarray(model.config.suggested_init(), dtype=float)
    clipped = negative_yields(workspace, {"prefit": prefit_pars, "postfit": best.values})
    rows = impacts(model, data, best, top)
    warnings = [
        f"channel {c['channel']}, sample {c['sample']}, bin {c['bin']}: predicted yield "
        f"{c['prefit']:.4g} pre-fit, {c['postfit']:.4g} post-fit; floored at {FLOOR:g} in the "
        "likelihood (as combine does)"
        for c in clipped
    ]
    warnings += [f"{what}: {part['failed']}" for what, part in
                 (("significance", z), ("upper limit", limit)) if part["failed"]]  # fmt: skip
    warnings += [f"impact of {r['name']}: {r['failed']}" for r in rows if r["failed"]]
    pulls = []
    for name in nuisances(model):
        value, error = best[name]
        pulls.append({"name": name, "pull": value, "constraint": error})
    table = {
        "poi": poi,
        "mu": mu,
        "mu_error": mu_error,
        "significance": z,
        "upper_limit": limit,
        "twice_nll": best.twice_nll,
        "no_background": empty,
        "data": "asimov" if asimov or not spec.get("observations") else "observed",
        "blinded_channels": list(blinded),
        "channels": list(model.config.channels),
        "pulls": pulls,
        "impacts": rows,
        "clipped": clipped,
        "warnings": warnings,
    }
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
