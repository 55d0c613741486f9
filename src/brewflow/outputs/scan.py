"""The profile likelihood scan of the signal strength: -2 Delta ln L, each point a fit with
the signal strength held and every other parameter refitted (through
:func:`brewflow.outputs.mle.maximum_likelihood`), and the intervals where it crosses the
chi-square quantiles of one degree of freedom (Wilks: 1 for 68.27%, 3.84 for 95% CL), as
``cabinetry.fit.scan`` and combine's ``MultiDimFit --algo grid`` draw it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyhf
from numpy.typing import ArrayLike
from scipy import optimize, stats

from brewflow.outputs.mle import Fit, FitFailed, maximum_likelihood

__all__ = ["LEVELS", "likelihood_scan"]

LEVELS = (float(stats.chi2.cdf(1.0, 1)), 0.95)
"""The confidence levels of the scan's intervals: 68.27% (-2 Delta ln L = 1) and 95%
(3.84)."""


def likelihood_scan(
    model: pyhf.pdf.Model, data: ArrayLike, best: Fit, points: int = 11
) -> dict[str, Any]:
    """-2 Delta ln L of the signal strength around the ``best`` fit of ``data``: ``points``
    fits on a grid 1.25 times as wide as the 95% interval (within the signal strength's
    bounds), the best fit and the crossings among them (``mu``, ``twice_delta_nll``); and
    per level of :data:`LEVELS` the interval (``low``, ``high``: the crossings, found by
    root finding on fits to 1e-4 of the signal strength's error; None where the curve stays
    below the threshold up to the signal strength's bound). A grid point whose fit fails is
    left out and named in ``failed_points``; raises :class:`~brewflow.outputs.mle.FitFailed`
    where a fit of a crossing fails."""
    poi = model.config.poi_name
    mu_hat, sigma = best[poi]
    sigma = sigma if sigma > 0 else 1.0
    low_bound, high_bound = (float(b) for b in model.config.suggested_bounds()[
        model.config.poi_index])  # fmt: skip
    curve: dict[float, float] = {mu_hat: 0.0}

    def twice_delta_nll(mu: float) -> float:
        mu = float(mu)
        if mu not in curve:
            fit = maximum_likelihood(
                model, data, fixed={poi: mu}, init=best.values, precise=False,
                what=f"the likelihood scan (fit at mu = {mu:g})",
            )  # fmt: skip
            curve[mu] = max(fit.twice_nll - best.twice_nll, 0.0)
        return curve[mu]

    def crossing(threshold: float, side: int, inner: float) -> float | None:
        """Where the curve crosses ``threshold`` on ``side`` (-1 below the best fit, +1
        above), searching outwards from ``inner`` (a point below the threshold)."""
        bound = low_bound if side < 0 else high_bound
        outer = inner
        distance = max(abs(inner - mu_hat), 1.3 * sigma * np.sqrt(threshold))
        for _ in range(12):
            if outer == bound:
                return None
            outer = float(np.clip(mu_hat + side * distance, low_bound, high_bound))
            if twice_delta_nll(outer) > threshold:
                return float(optimize.brentq(  # sqrt(-2 Delta ln L): about linear in mu
                    lambda mu: np.sqrt(twice_delta_nll(mu)) - np.sqrt(threshold),
                    min(inner, outer), max(inner, outer), xtol=1e-4 * sigma,
                ))  # fmt: skip
            inner, distance = outer, 2 * distance
        return None

    intervals = []
    inner = {-1: mu_hat, 1: mu_hat}
    for level in LEVELS:
        threshold = float(stats.chi2.ppf(level, 1))
        ends: dict[int, float | None] = {}
        for side in (-1, 1):
            end = crossing(threshold, side, inner[side])
            ends[side] = end
            inner[side] = inner[side] if end is None else end
        intervals.append({"level": level, "threshold": threshold,
                          "low": ends[-1], "high": ends[1]})  # fmt: skip
    wide = intervals[-1]  # the grid: 1.25 times the 95% interval (2 sigma where bounded)
    below = wide["low"] if wide["low"] is not None else mu_hat - 2 * sigma
    above = wide["high"] if wide["high"] is not None else mu_hat + 2 * sigma
    low, high = mu_hat - 1.25 * (mu_hat - below), mu_hat + 1.25 * (above - mu_hat)
    failed = []
    for mu in np.linspace(max(low, low_bound), min(high, high_bound), points):
        try:
            twice_delta_nll(mu)
        except FitFailed as err:  # a point of the picture: left out, named
            failed.append({"mu": float(mu), "failed": str(err)})
    mus = sorted(curve)
    return {
        "poi": poi,
        "mu": mus,
        "twice_delta_nll": [curve[mu] for mu in mus],
        "bounds": [low_bound, high_bound],
        "intervals": intervals,
        "failed_points": failed,
    }
