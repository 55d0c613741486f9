"""The statistics of the fit: a maximum-likelihood fit of a pyhf workspace (HistFactory;
MIGRAD and HESSE of iminuit), the signal strength with its uncertainty, its profile
likelihood scan, observed and expected discovery significances, a CLs upper limit and the
CLs scan, nuisance pulls and constraints, impacts, the parameters' correlations, and the
pre- and post-fit yields of every channel with their uncertainties.

Everything is pyhf's likelihood; this module adds no statistics of its own beyond linear error
propagation of the fitted covariance to the yields (:mod:`brewflow.outputs.fit_yields`) and
the impact of a nuisance (the change of the signal strength when the nuisance is fixed at its
value +- its uncertainty and the rest refitted). Every fit goes through
:func:`brewflow.outputs.mle.maximum_likelihood` (its retry ladder; a fit that still fails marks
the significance, the limit, a scan or an impact failed, and only a failed best fit fails the
job), on the model :func:`brewflow.outputs.mle.load` builds (negative predicted yields floored
as combine does). The limits are :mod:`brewflow.outputs.limits`', the likelihood scan
:mod:`brewflow.outputs.scan`'s; :mod:`brewflow.outputs.fit` writes what they find.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pyhf
from numpy.typing import ArrayLike

from brewflow.errors import InputError
from brewflow.outputs.fit_yields import (
    channel_yields,
    prefit_covariance,
    sample_yields,
    signal_samples,
    yield_band,
)
from brewflow.outputs.limits import CLs, cls_scan, conditional_asimov, upper_limit
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
from brewflow.outputs.scan import likelihood_scan

__all__ = [
    "CORRELATION_THRESHOLD",
    "Fit",
    "FitFailed",
    "asimov_data",
    "background_free",
    "conditional_asimov",
    "correlations",
    "expects_signal",
    "fit_workspace",
    "free_normalisations",
    "impacts",
    "maximum_likelihood",
    "nuisances",
    "parameter_names",
    "prefit_covariance",
    "pulls",
    "significance",
    "upper_limit",
    "yield_band",
]

log = logging.getLogger(__name__)

CORRELATION_THRESHOLD = 0.2
"""A parameter enters the correlation matrix's plot where its correlation with another one
reaches this in magnitude (cabinetry's ``pruning_threshold``); the signal strength always."""
CORRELATION_MOST = 30
"""At most this many parameters in that plot: those most correlated with another one."""


def asimov_data(model: pyhf.pdf.Model, mu: float = 1.0) -> np.ndarray:
    """The pre-fit Asimov dataset: the expectation with every nuisance at its nominal value and
    the signal strength ``mu`` (main bins, then the auxiliary data)."""
    pars = np.asarray(model.config.suggested_init(), dtype=float)
    pars[model.config.poi_index] = mu
    return np.asarray(model.expected_data(pars), dtype=float)


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


def free_normalisations(model: pyhf.pdf.Model, best: Fit) -> list[dict[str, Any]]:
    """The free normalisations other than the signal strength (``normfactor`` modifiers:
    ``shapes.normfactors``, constrained by the control regions), best fit and error."""
    kinds = dict(model.config.modifiers)
    poi = model.config.poi_name
    names = [n for n in model.config.par_order if kinds.get(n) == "normfactor" and n != poi]
    return [{"name": n, "value": best[n][0], "error": best[n][1]} for n in names]


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


def pulls(model: pyhf.pdf.Model, best: Fit) -> list[dict[str, Any]]:
    """Each nuisance's pull ``(theta_hat - theta_0) / sigma_0`` and post-fit constraint
    ``sigma_hat / sigma_0`` (theta_0, sigma_0: its pre-fit value and constraint width), the
    largest pull first."""
    start, width = np.asarray(model.config.suggested_init(), dtype=float), widths(model)
    out = []
    for name in nuisances(model):
        i = best.names.index(name)
        out.append({"name": name, "pull": float((best.values[i] - start[i]) / width[i]),
                    "constraint": float(best.errors[i] / width[i])})  # fmt: skip
    return sorted(out, key=lambda p: -abs(p["pull"]))


def correlations(
    best: Fit, poi: str, threshold: float = CORRELATION_THRESHOLD, most: int = CORRELATION_MOST
) -> dict[str, Any]:
    """The best fit's correlation matrix pruned to the correlated parameters (as
    ``cabinetry.visualize.correlation_matrix``'s ``pruning_threshold``): the free parameters
    whose correlation with another one reaches ``threshold`` in magnitude, the signal
    strength ``poi`` always, at most ``most`` (those most correlated with another one);
    the signal strength first, then in model order."""
    free = np.flatnonzero(best.errors > 0)
    matrix = best.correlations[np.ix_(free, free)]
    off = np.abs(matrix - np.diag(np.diag(matrix))).max(axis=1, initial=0.0)
    names = [best.names[i] for i in free]
    keep = [i for i, name in enumerate(names) if name == poi or off[i] >= threshold]
    keep = sorted(sorted(keep, key=lambda i: (names[i] != poi, -off[i]))[:most],
                  key=lambda i: (names[i] != poi, i))  # fmt: skip
    return {
        "threshold": threshold,
        "names": [names[i] for i in keep],
        "matrix": matrix[np.ix_(keep, keep)].tolist(),
        "pruned": len(names) - len(keep),
    }


def expects_signal(model: pyhf.pdf.Model) -> bool:
    """Whether the signal (the samples the signal strength scales) expects an event in any
    bin of the model's channels."""
    n = model.config.nmaindata
    return bool(np.any(asimov_data(model, 1.0)[:n] - asimov_data(model, 0.0)[:n]))


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


def _limit(
    model: pyhf.pdf.Model,
    data: np.ndarray,
    level: float,
    guess: tuple[float, float],
    scan: dict[str, Any],
) -> tuple[float, list[float]]:
    """The CLs upper limit (:func:`~brewflow.outputs.limits.upper_limit`) and, in ``scan``,
    the CLs scan around it, sharing their fits; a scan whose fits fail says why in
    ``scan["failed"]``."""
    calculator = CLs(model, data)
    observed, expected = upper_limit(model, data, level, guess, calculator=calculator)
    try:
        scan.update(cls_scan(calculator, observed, expected))
    except FitFailed as err:
        scan["failed"] = str(err)
    return observed, expected


def fit_workspace(
    spec: Mapping[str, Any],
    *,
    level: float = 0.05,
    top: int = 10,
    asimov: bool = False,
    blinded: Sequence[str] = (),
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Everything the fit reports for a workspace ``spec``: ``(table, shapes)``. ``table``:
    the signal strength and its error, its likelihood scan, significances, CLs limit and CLs
    scan, pulls, impacts, correlations, the yields per channel (pre- and post-fit, per sample,
    background and total, with uncertainties), the bins whose negative predicted yields were
    floored (``clipped``) and one line per problem (``warnings``: floored bins, a
    significance, limit, scan or impact whose fits failed, then None with why in its
    ``failed``); ``shapes``: per channel the pre- and post-fit yields per sample, their
    bands and the data. ``asimov``: fit the pre-fit Asimov dataset (mu = 1) instead of the
    observations; ``blinded`` channels' observations are the Asimov already (blinded, or an
    era without data; see :mod:`brewflow.outputs.fit_inputs`)."""
    workspace, model = load(spec)
    if asimov or not spec.get("observations"):
        data = asimov_data(model)
    else:
        data = np.asarray(workspace.data(model), dtype=float)
    n = model.config.nmaindata
    if not expects_signal(model):
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
    scan: dict[str, Any] = {"failed": None}
    cls: dict[str, Any] = {"level": level, "failed": None}
    try:
        scan.update(likelihood_scan(model, data, best))
    except FitFailed as err:
        scan["failed"] = str(err)
    if empty:
        log.warning("no background expected in %s: no significance or limit", ", ".join(empty))
    else:
        z["observed"], z["expected"] = _unless_failed(lambda: significance(model, data), z)
        limit["observed"], limit["expected"] = _unless_failed(
            lambda: _limit(model, data, level, (mu, mu_error), cls), limit
        )
        if limit["failed"]:
            cls["failed"] = "no upper limit (see the upper limit's failure)"
    prefit_pars = np.asarray(model.config.suggested_init(), dtype=float)
    clipped = negative_yields(workspace, {"prefit": prefit_pars, "postfit": best.values})
    rows = impacts(model, data, best, top)
    warnings = [
        f"channel {c['channel']}, sample {c['sample']}, bin {c['bin']}: predicted yield "
        f"{c['prefit']:.4g} pre-fit, {c['postfit']:.4g} post-fit; floored at {FLOOR:g} in the "
        "likelihood (as combine does)"
        for c in clipped
    ]
    parts = [("significance", z), ("upper limit", limit), ("likelihood scan", scan)]
    parts += [] if limit["failed"] else [("CLs scan", cls)]
    warnings += [f"{what}: {part['failed']}" for what, part in parts if part["failed"]]
    warnings += [f"impact of {r['name']}: {r['failed']}" for r in rows if r["failed"]]
    warnings += [f"{what}: no point at mu = {point['mu']:.6g} (left out: {point['failed']})"
                 for what, part in (("likelihood scan", scan), ("CLs scan", cls))
                 for point in part.get("failed_points", ())]  # fmt: skip
    signal = signal_samples(dict(spec), poi)
    stages = {"prefit": (prefit_pars, prefit_covariance(model)),
              "postfit": (best.values, best.covariance)}  # fmt: skip
    yields = {stage: channel_yields(model, pars, covariance, signal)
              for stage, (pars, covariance) in stages.items()}  # fmt: skip
    table = {
        "poi": poi,
        "mu": mu,
        "mu_error": mu_error,
        "likelihood_scan": scan,
        "significance": z,
        "upper_limit": limit,
        "cls_scan": cls,
        "twice_nll": best.twice_nll,
        "no_background": empty,
        "data": "asimov" if asimov or not spec.get("observations") else "observed",
        "blinded_channels": list(blinded),
        "channels": list(model.config.channels),
        "signal": signal,
        "normalisations": free_normalisations(model, best),
        "pulls": pulls(model, best),
        "impacts": rows,
        "correlations": correlations(best, poi),
        "yields": {c: {stage: yields[stage][c] for stage in stages} for c in model.config.channels},
        "clipped": clipped,
        "warnings": warnings,
    }
    main = np.asarray(data[:n], dtype=float)
    by_sample = {stage: sample_yields(model, pars) for stage, (pars, _) in stages.items()}
    shapes: dict[str, Any] = {}
    for channel in model.config.channels:
        bins = model.config.channel_slices[channel]
        shapes[channel] = {
            "samples": list(model.config.samples),
            "data": main[bins],
            **{stage: {"yields": by_sample[stage][:, bins],
                       "band": np.asarray(yields[stage][channel]["total"]["bin_errors"])}
               for stage in stages},
        }  # fmt: skip
    return table, shapes
