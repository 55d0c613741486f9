"""The maximum-likelihood fits of the fit, all through one function.

:func:`maximum_likelihood` is the only place a fit is made (the best fit, the conditional fits
of the significance and the limit, the impacts' refits, the Asimov datasets' fits): pyhf's fit
minimised by iminuit (MIGRAD, errors from HESSE), retried on a ladder of settings when it does
not converge (MIGRAD strategies and tolerances, other starting points, tighter and wider bounds,
then pyhf's ``scipy`` optimizer with HESSE at its minimum). The outcome is a :class:`Fit` that
says which attempts it took, or :class:`FitFailed` naming what was fitted and why each attempt
failed. pyhf's log records (a dump of every failed minimisation) are kept out of the log; a fit
that needed a retry logs one line.

:func:`load` builds the likelihood model of a workspace, with each sample's predicted yield per
bin floored at :data:`FLOOR` as combine does, so that a negative-weight MC bin cannot make the
Poisson likelihood undefined; :func:`negative_yields` names the bins where that floor acts.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyhf
from numpy.typing import ArrayLike

from brewflow.errors import InputError

__all__ = [
    "BUDGET",
    "FLOOR",
    "PRECISE",
    "QUICK",
    "Attempt",
    "Fit",
    "FitFailed",
    "load",
    "maximum_likelihood",
    "negative_yields",
    "parameter_names",
    "test_settings",
    "widths",
]

log = logging.getLogger(__name__)

FLOOR = 1e-9
"""The least predicted yield of a sample in a bin (pyhf's ``clip_sample_data``): combine's
``CMSHistSum`` floors every process's template per bin at 1e-9 before summing them, and the
channel total again (``FastTemplate::CropUnderflows``, default minimum 1e-9); pyhf added the
option for this (PR #1845: per sample, as ROOT does). A floor of 1e-9 leaves every positive
yield as it is: on a model without negative yields the likelihood is pyhf's."""

PRECISE = ((1e-8, 2), (1e-3, 1), (0.1, 1))
"""MIGRAD's first (tolerance, strategy) settings for a best fit: the first finds the signal
strength of an Asimov dataset to ~1e-7 (pyhf's default, 0.1, leaves ~1e-4 of its error), the
others are for where numerical gradients cannot get that close."""
QUICK = PRECISE[1:]
"""The same for refits that need the signal strength to ~1e-4 of its error (impacts)."""
BUDGET = 300.0
"""Seconds one fit may spend on its ladder: no further attempt starts after that."""


def test_settings(strategy: int) -> tuple[tuple[float, int], ...]:
    """MIGRAD's first settings for the fits of a test statistic: pyhf's default tolerance
    (0.1) with ``strategy``, then strategy 1 where 0 misses the minimum."""
    return ((0.1, strategy),) if strategy else ((0.1, 0), (0.1, 1))


@dataclass(frozen=True)
class Attempt:
    """One attempt of a fit: its ``settings`` and why it failed (``None``: it converged)."""

    settings: str
    error: str | None = None


@dataclass(frozen=True)
class Fit:
    """A maximum-likelihood fit: parameter ``names`` (one per scalar parameter), best-fit
    ``values``, their ``errors`` and ``correlations`` (HESSE), ``twice_nll`` at the best fit,
    and the ``attempts`` it took (the last converged)."""

    names: list[str]
    values: np.ndarray
    errors: np.ndarray
    correlations: np.ndarray
    twice_nll: float
    attempts: tuple[Attempt, ...] = ()

    def __getitem__(self, name: str) -> tuple[float, float]:
        i = self.names.index(name)
        return float(self.values[i]), float(self.errors[i])

    @property
    def covariance(self) -> np.ndarray:
        return self.correlations * np.outer(self.errors, self.errors)


class FitFailed(InputError):
    """``what`` could not be fitted: ``reason``, and the ``attempts`` made."""

    def __init__(self, what: str, reason: str, attempts: Sequence[Attempt] = ()) -> None:
        self.what, self.reason, self.attempts = what, reason, tuple(attempts)
        super().__init__(f"{what}: {reason}")


@dataclass(frozen=True)
class _Rung:
    """Settings of one attempt: MIGRAD's ``strategy`` (None: pyhf's scipy optimizer, SLSQP)
    and ``tolerance``, the ``start`` (``given``, ``prefit``, ``shifted``: the signal strength
    1 higher) and the ``bounds`` (``suggested``; ``tight``: free constrained parameters within
    3 widths of their start; ``wide``: the signal strength's upper bound 10 times higher)."""

    strategy: int | None
    tolerance: float = 0.1
    start: str = "given"
    bounds: str = "suggested"

    def __str__(self) -> str:
        text = (
            "scipy SLSQP, errors from HESSE"
            if self.strategy is None
            else f"MIGRAD strategy {self.strategy}, tolerance {self.tolerance:g}"
        )
        notes = {"prefit": "from the pre-fit values", "shifted": "signal strength started +1",
                 "tight": "nuisances within 3 sigma of the start",
                 "wide": "signal strength bound x10"}  # fmt: skip
        return ", ".join([text] + [notes[n] for n in (self.start, self.bounds) if n in notes])


_TAIL = (
    _Rung(2),
    _Rung(1, start="prefit"),
    _Rung(1, start="shifted"),
    _Rung(2, bounds="tight"),
    _Rung(1, bounds="wide"),
    _Rung(None),
)
"""The ladder after MIGRAD's first settings, in order."""


def parameter_names(model: pyhf.pdf.Model) -> list[str]:
    """One name per scalar parameter, in the model's order (``name[i]`` for vectors)."""
    out = []
    for name in model.config.par_order:
        n = model.config.param_set(name).n_parameters
        out += [name] if n == 1 else [f"{name}[{i}]" for i in range(n)]
    return out


@contextmanager
def _quiet() -> Iterator[None]:
    """pyhf's log records (its dump of every failed minimisation, the model's build) and the
    warnings of a minimisation kept out of the log: at debug level only."""

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING and not record.exc_info:
                log.debug("pyhf: %s", record.getMessage())

    logger = logging.getLogger("pyhf")
    handler, propagate = Capture(), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with warnings.catch_warnings(record=True), np.errstate(all="ignore"):
            warnings.simplefilter("always")
            yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def load(spec: Mapping[str, Any]) -> tuple[pyhf.Workspace, pyhf.pdf.Model]:
    """The pyhf workspace of ``spec`` and its model, each sample's predicted yield per bin
    floored at :data:`FLOOR`."""
    with _quiet():
        workspace = pyhf.Workspace(dict(spec))
        return workspace, workspace.model(clip_sample_data=FLOOR)


def negative_yields(
    workspace: pyhf.Workspace, stages: Mapping[str, ArrayLike]
) -> list[dict[str, Any]]:
    """The bins where a sample's predicted yield is negative (before the floor) at the
    parameters of any stage (e.g. ``prefit``, ``postfit``): channel, sample, bin and the
    yield at each stage."""
    with _quiet():
        raw = workspace.model()
    yields = {
        stage: np.asarray(raw.main_model.expected_data(pars, return_by_sample=True), dtype=float)
        for stage, pars in stages.items()
    }
    out = []
    for channel in raw.config.channels:
        bins = raw.config.channel_slices[channel]
        for s, sample in enumerate(raw.config.samples):
            at = {stage: y[s, bins] for stage, y in yields.items()}
            for b in np.flatnonzero(np.min(list(at.values()), axis=0) < 0):
                out.append({"channel": channel, "sample": sample, "bin": int(b),
                            **{stage: float(y[b]) for stage, y in at.items()}})  # fmt: skip
    return out


def maximum_likelihood(
    model: pyhf.pdf.Model,
    data: ArrayLike,
    fixed: Mapping[str, float] | None = None,
    init: ArrayLike | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    precise: bool = True,
    *,
    first: Sequence[tuple[float, int]] | None = None,
    what: str = "a fit",
) -> Fit:
    """The maximum-likelihood fit of ``model`` to ``data`` (main and auxiliary), with the
    scalar parameters of ``fixed`` held at their values and those of ``bounds`` in theirs,
    from ``init`` (default: the pre-fit values). MIGRAD's first (tolerance, strategy)
    settings are ``first`` (default :data:`PRECISE`, or :data:`QUICK` unless ``precise``);
    where none converges, the rest of the ladder. Raises :class:`FitFailed` naming ``what``
    when no attempt converges."""
    names = parameter_names(model)
    prefit = np.asarray(model.config.suggested_init(), dtype=float)
    start = np.array(init if init is not None else prefit, dtype=float)
    held = list(model.config.suggested_fixed())
    limits = [(float(low), float(high)) for low, high in model.config.suggested_bounds()]
    for name, (low, high) in (bounds or {}).items():
        limits[names.index(name)] = (float(low), float(high))
    for name, value in (fixed or {}).items():
        i = names.index(name)
        start[i] = prefit[i] = value
        held[i] = True
        limits[i] = (min(limits[i][0], value), max(limits[i][1], value))  # held: any value
    if all(held):  # nothing to minimise (a model whose only free parameter is held)
        return _held(model, np.asarray(data, dtype=float), start, names, what)
    ladder = [_Rung(s, t) for t, s in (first or (PRECISE if precise else QUICK))]
    ladder += [rung for rung in _TAIL if rung not in ladder]
    attempts: list[Attempt] = []
    tried: set[tuple[Any, ...]] = set()
    begin = time.monotonic()
    data = np.asarray(data, dtype=float)
    with _quiet():
        for rung in ladder:
            setup = _setup(rung, model, start, prefit, limits, held)
            key = (rung.strategy, rung.tolerance, setup[0].tobytes(), tuple(setup[1]))
            if key in tried:
                continue
            tried.add(key)
            if time.monotonic() - begin > BUDGET:
                attempts.append(Attempt(str(rung), f"not tried: the fit took over {BUDGET:g} s"))
                break
            try:
                fit = _attempt(rung, model, data, *setup, held, names)
            except (pyhf.exceptions.FailedMinimization, ArithmeticError, ValueError) as err:
                attempts.append(Attempt(str(rung), _reason(err)))
                continue
            problem = _problem(fit, held, setup[1], limits)
            if problem:
                attempts.append(Attempt(str(rung), problem))
                continue
            if attempts:
                log.info("%s: converged with %s after %s", what, rung,
                         "; ".join(f"{a.settings}: {a.error}" for a in attempts))  # fmt: skip
            return dataclasses.replace(fit, attempts=(*attempts, Attempt(str(rung))))
    errors = [a.error for a in attempts]
    reasons = "; ".join(f"{errors.count(e)}x {e}" for e in dict.fromkeys(errors))
    raise FitFailed(what, f"no fit converged in {len(attempts)} attempts ({reasons})", attempts)


def _held(
    model: pyhf.pdf.Model, data: np.ndarray, values: np.ndarray, names: list[str], what: str
) -> Fit:
    """The "fit" where every parameter is held: the likelihood at ``values`` (MIGRAD has
    nothing to vary, and pyhf's minuit optimizer fails on it without a covariance)."""
    with _quiet():
        twice_nll = float(np.ravel(pyhf.infer.mle.twice_nll(values, data, model))[0])
    if not np.isfinite(twice_nll):
        raise FitFailed(what, "the likelihood is not finite at the held values")
    size = len(values)
    return Fit(names, values, np.zeros(size), np.zeros((size, size)), twice_nll,
               (Attempt("every parameter held: the likelihood at their values"),))  # fmt: skip


def _setup(
    rung: _Rung,
    model: pyhf.pdf.Model,
    start: np.ndarray,
    prefit: np.ndarray,
    limits: list[tuple[float, float]],
    held: list[bool],
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """The starting values and bounds of ``rung``."""
    poi = model.config.poi_index
    values = prefit.copy() if rung.start == "prefit" else start.copy()
    bounds = list(limits)
    if rung.start == "shifted" and not held[poi]:
        values[poi] = min(values[poi] + 1.0, bounds[poi][1])
    if rung.bounds == "wide" and not held[poi]:
        low, high = bounds[poi]
        bounds[poi] = (low, low + 10 * (high - low))
    if rung.bounds == "tight":
        for i, width in enumerate(widths(model)):
            if width > 0 and not held[i]:
                low, high = bounds[i]
                bounds[i] = (max(low, values[i] - 3 * width), min(high, values[i] + 3 * width))
    return values, bounds


def widths(model: pyhf.pdf.Model) -> np.ndarray:
    """Per scalar parameter, the width of its constraint (0 where unconstrained)."""
    out: list[float] = []
    for name in model.config.par_order:
        paramset = model.config.param_set(name)
        widths = paramset.width() if getattr(paramset, "constrained", False) else None
        out += list(widths if widths is not None else [0.0] * paramset.n_parameters)
    return np.asarray(out, dtype=float)


def _attempt(
    rung: _Rung,
    model: pyhf.pdf.Model,
    data: np.ndarray,
    start: np.ndarray,
    bounds: list[tuple[float, float]],
    held: list[bool],
    names: list[str],
) -> Fit:
    """One fit with the settings of ``rung``: pyhf's fit (``pyhf.infer.mle.fit`` with the
    optimizer made here rather than set globally)."""
    if pyhf.tensorlib.name != "numpy":
        pyhf.set_backend("numpy")
    objective = pyhf.infer.mle.twice_nll
    fixed_values = [(i, float(start[i])) for i, h in enumerate(held) if h]
    if rung.strategy is not None:
        optimizer = pyhf.optimize.minuit_optimizer(tolerance=rung.tolerance,
                                                   strategy=rung.strategy)  # fmt: skip
        result, correlations, twice_nll = optimizer.minimize(
            objective, data, model, list(start), bounds, fixed_values,
            return_uncertainties=True, return_correlations=True, return_fitted_val=True,
        )  # fmt: skip
        result = np.asarray(result, dtype=float)
        values, errors = result[:, 0], result[:, 1]
        correlations = np.asarray(correlations, dtype=float)
    else:
        values, twice_nll = pyhf.optimize.scipy_optimizer().minimize(
            objective, data, model, list(start), bounds, fixed_values, return_fitted_val=True
        )
        values = np.asarray(values, dtype=float)
        errors, correlations = _hesse(model, data, values, bounds, held, names)
    return Fit(names, values, errors, correlations, float(twice_nll))


def _hesse(
    model: pyhf.pdf.Model,
    data: np.ndarray,
    values: np.ndarray,
    bounds: list[tuple[float, float]],
    held: list[bool],
    names: list[str],
) -> tuple[np.ndarray, np.ndarray]:
    """Errors and correlations from iminuit's HESSE at ``values`` (held parameters: 0)."""
    import iminuit

    def twice_nll(pars: np.ndarray) -> float:
        return float(np.ravel(pyhf.infer.mle.twice_nll(pars, data, model))[0])

    minuit = iminuit.Minuit(twice_nll, values, name=names)
    minuit.errordef = iminuit.Minuit.LEAST_SQUARES  # -2 ln L: errors where it rises by 1
    minuit.limits = bounds
    minuit.fixed = held
    minuit.hesse()
    if minuit.covariance is None or minuit.fmin is None or not minuit.fmin.has_posdef_covar:
        raise ValueError("HESSE at the minimum found no positive-definite covariance")
    covariance = np.where(np.logical_or.outer(held, held), 0.0, np.asarray(minuit.covariance))
    errors = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        correlations = np.nan_to_num(covariance / np.outer(errors, errors))
    return errors, correlations


def _problem(
    fit: Fit,
    held: list[bool],
    bounds: list[tuple[float, float]],
    limits: list[tuple[float, float]],
) -> str | None:
    """Why a converged ``fit`` is not a minimum (non-finite numbers, a parameter stopped by
    a bound tighter than its own), or None."""
    free = ~np.asarray(held)
    if not (np.isfinite(fit.twice_nll) and np.all(np.isfinite(fit.values))
            and np.all(np.isfinite(fit.errors[free]))):  # fmt: skip
        return "non-finite likelihood or errors"
    for i, ((low, high), (own_low, own_high)) in enumerate(zip(bounds, limits, strict=True)):
        value = fit.values[i]
        span = 1e-6 * (high - low)
        if free[i] and ((low > own_low and value - low < span)
                        or (high < own_high and high - value < span)):  # fmt: skip
            return f"{fit.names[i]} stopped at its tightened bound"
    return None


def _reason(err: Exception) -> str:
    """One line of why an attempt failed."""
    if not isinstance(err, pyhf.exceptions.FailedMinimization):
        return " ".join(f"{type(err).__name__}: {err}".split())
    message = str(getattr(err.result, "message", err))
    minuit = getattr(err.result, "minuit", None)
    fmin = None if minuit is None else minuit.fmin
    if fmin is None:
        return " ".join(message.split())
    if not np.isfinite(fmin.fval):
        return "the likelihood is not finite"
    problems = [text for text, bad in (
        (f"EDM {fmin.edm:.2g} above its goal {fmin.edm_goal:.2g}", fmin.is_above_max_edm),
        ("call limit reached", fmin.has_reached_call_limit),
        ("HESSE failed", fmin.hesse_failed),
    ) if bad]  # fmt: skip
    after = " after HESSE" if "successfully" in message else ""  # MIGRAD's minimum was valid
    return (", ".join(problems) or "invalid minimum") + after
