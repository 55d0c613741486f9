"""CLs of the signal strength with pyhf's asymptotic formulae for the qmu~ test statistic
(``pyhf.infer.calculators.AsymptoticCalculator``): the observed and expected CLs at any
signal strength (:class:`CLs`), the upper limit where they cross the level
(:func:`upper_limit`) and the CLs scan drawn beside it (:func:`cls_scan`).

The fits are :func:`brewflow.outputs.mle.maximum_likelihood`'s; the formulae are pyhf's
(Cowan, Cranmer, Gross, Vitells, Eur. Phys. J. C 71 (2011) 1554, eqs. 16 and 66 for qmu~).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyhf
from numpy.typing import ArrayLike
from scipy import optimize, stats

from brewflow.outputs.mle import FitFailed, maximum_likelihood, test_settings

__all__ = [
    "BANDS",
    "CLs",
    "cls_scan",
    "conditional_asimov",
    "expected_target",
    "upper_limit",
]

BANDS = ("-2", "-1", "0", "+1", "+2")
"""The expected band's edges in sigma of the background-only outcomes, lowest limit first:
the order of pyhf's expected set (``return_expected_set``: its N = 2, 1, 0, -1, -2)."""


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


class CLs:
    """pyhf's asymptotic CLs (qmu~) of ``model`` and ``data`` at any signal strength:
    observed, and expected for the background-only outcomes at -2 ... +2 sigma.

    The unconditional fits of the data and of the background-only Asimov dataset (nuisances
    fitted to the data at mu = 0, as pyhf makes it) do not depend on the tested mu and are
    made once; each tested mu costs one conditional fit per dataset, kept for the next
    question (the limit's root finding and the scan share them)."""

    def __init__(self, model: pyhf.pdf.Model, data: ArrayLike) -> None:
        self.model = model
        self.first = test_settings(strategy=0)  # no errors needed: MIGRAD's cheaper strategy
        observed = np.asarray(data, dtype=float)
        asimov = conditional_asimov(model, observed, 0.0, self.first, "the limit's Asimov")
        self.datasets = {"data": observed, "asimov": asimov}
        self.what = {"data": "the observed limit", "asimov": "the expected limit"}
        self.free = {
            name: maximum_likelihood(model, values, first=self.first,
                                     what=f"{self.what[name]} (free fit)")
            for name, values in self.datasets.items()
        }  # fmt: skip
        self._q: dict[tuple[str, float], float] = {}

    def q(self, name: str, mu: float) -> float:
        """pyhf's qmu~ of ``mu`` on the dataset ``name`` (``data``, ``asimov``): 0 above its
        best fit, else the rise of -2 ln L from the unconditional to the conditional fit."""
        key = (name, float(mu))
        if key not in self._q:
            best = self.free[name]
            if float(best.values[self.model.config.poi_index]) > mu:
                self._q[key] = 0.0
            else:
                conditional = maximum_likelihood(
                    self.model, self.datasets[name], fixed={self.model.config.poi_name: mu},
                    first=self.first, what=f"{self.what[name]} (fit at mu = {mu:g})",
                )  # fmt: skip
                self._q[key] = max(conditional.twice_nll - best.twice_nll, 0.0)
        return self._q[key]

    def observed(self, mu: float) -> float:
        """pyhf's observed CLs at ``mu`` (1 where the Asimov dataset has no sensitivity)."""
        q_mu, q_a = self.q("data", mu), self.q("asimov", mu)
        sqrt_mu, sqrt_a = np.sqrt(q_mu), np.sqrt(q_a)
        if sqrt_a == 0:
            return 1.0
        t = sqrt_mu - sqrt_a if sqrt_mu < sqrt_a else (q_mu - q_a) / (2 * sqrt_a)
        return float(stats.norm.cdf(-(t + sqrt_a)) / stats.norm.cdf(-t))

    def expected(self, mu: float) -> list[float]:
        """pyhf's expected CLs set at ``mu``, in the order of :data:`BANDS`: of band N,
        ``Phi(-(N + sqrt(qA))) / Phi(-N)`` for N = 2, 1, 0, -1, -2."""
        sqrt_a = np.sqrt(self.q("asimov", mu))
        return [float(stats.norm.cdf(-(n + sqrt_a)) / stats.norm.cdf(-n))
                for n in (2, 1, 0, -1, -2)]  # fmt: skip


def upper_limit(
    model: pyhf.pdf.Model,
    data: ArrayLike,
    level: float = 0.05,
    guess: tuple[float, float] = (0.0, 1.0),
    rtol: float = 1e-4,
    *,
    calculator: CLs | None = None,
) -> tuple[float, list[float]]:
    """The CLs upper limit on the signal strength at confidence ``1 - level``: observed, and
    expected (median, then -2, -1, +1, +2 sigma), to ``rtol``.

    The same numbers as ``pyhf.infer.intervals.upper_limits.upper_limit`` (the tests check),
    computed with fewer fits (:class:`CLs`; pass ``calculator`` to share its fits); an
    expected limit solves pyhf's expected CLs of band N, ``Phi(-(N + sqrt(qA))) / Phi(-N) =
    level``, for ``sqrt(qA(mu))``; roots are found by the secant method in log(mu) from the
    best fit ``guess`` ``(mu, error)``."""
    cls = calculator or CLs(model, data)
    top = model.config.suggested_bounds()[model.config.poi_index][1]
    mu_hat, error = max(guess[0], 0.0), guess[1]
    observed = _solve(lambda mu: np.log(max(cls.observed(mu), 1e-300) / level),
                      mu_hat + 1.7 * error, rtol, top)  # fmt: skip
    expected: list[float] = []
    for n in (0, 2, 1, -1, -2):  # pyhf's band N = +2 is the lowest limit (-2 sigma)
        target = expected_target(n, level)
        start = expected[0] * target / expected_target(0, level) if expected else 2 * error

        def excess(mu: float, target: float = target) -> float:
            return float(np.log(target / max(np.sqrt(cls.q("asimov", mu)), 1e-300)))

        expected.append(_solve(excess, start, rtol, top))
    return observed, expected


def expected_target(n: int, level: float) -> float:
    """``sqrt(qA)`` where pyhf's expected CLs of band ``n`` equals ``level``."""
    return float(stats.norm.ppf(1 - level * stats.norm.cdf(-n)) - n)


def _solve(f: Callable[[float], float], start: float, rtol: float, top: float) -> float:
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


def cls_scan(
    calculator: CLs, observed: float, expected: Sequence[float], points: int = 12
) -> dict[str, Any]:
    """Observed and expected CLs on a grid of signal strengths up to 1.25 times the largest
    limit (``observed`` and the ``expected`` band as :func:`upper_limit` returns them), the
    limits themselves among the points (the curves cross the level there): ``mu``,
    ``observed`` and ``expected`` (:data:`BANDS` -> CLs per point). The grid is even from 0,
    or even in log mu from half the lowest limit (``log``) where the limits are over a
    factor 20 apart (a signal the data hold far above the expected limit). A point whose
    fits fail is left out and named in ``failed_points`` (the limits do not depend on it)."""
    top, low = 1.25 * max(observed, *expected), 0.5 * min(observed, *expected)
    log = top > 20 * low
    grid = np.geomspace(low, top, points) if log else np.linspace(0.0, top, points + 1)[1:]
    mus, values, failed = [], [], []
    for mu in sorted({*(float(m) for m in grid), float(observed), float(expected[0])}):
        try:
            values.append((calculator.observed(mu), calculator.expected(mu)))
            mus.append(mu)
        except FitFailed as err:
            failed.append({"mu": mu, "failed": str(err)})
    return {
        "mu": mus,
        "log": bool(log),
        "observed": [obs for obs, _ in values],
        "expected": {band: [exp[i] for _, exp in values] for i, band in enumerate(BANDS)},
        "failed_points": failed,
    }
