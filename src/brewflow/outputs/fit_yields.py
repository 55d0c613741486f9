"""The fit's expected yields and their uncertainties: per channel, sample and bin at given
parameters (pre-fit: every nuisance at its nominal value, mu = 1; post-fit: the best fit),
with the parameters' covariance propagated linearly, correlations included (as
``cabinetry.model_utils.prediction`` does for ``cabinetry.tabulate.yields``). pyhf makes the
yields; this module adds only the propagation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyhf

from brewflow.outputs.mle import widths

__all__ = [
    "channel_yields",
    "prefit_covariance",
    "sample_yields",
    "signal_samples",
    "yield_band",
    "yield_jacobian",
]


def sample_yields(model: pyhf.pdf.Model, pars: np.ndarray) -> np.ndarray:
    """Expected main-bin yields per sample (samples x bins)."""
    return np.asarray(model.main_model.expected_data(pars, return_by_sample=True), dtype=float)


def yield_jacobian(model: pyhf.pdf.Model, pars: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    """The derivatives of the yields (samples x bins) by each parameter (parameters x samples
    x bins): central differences, steps of 0.1 standard deviations (0 for a parameter
    without variance)."""
    pars = np.asarray(pars, dtype=float)
    errors = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    jacobian = np.zeros((len(pars), *sample_yields(model, pars).shape))
    for i, error in enumerate(errors):
        if error == 0:
            continue
        step = np.zeros_like(pars)
        step[i] = 0.1 * error
        up, down = sample_yields(model, pars + step), sample_yields(model, pars - step)
        jacobian[i] = (up - down) / (2 * step[i])
    return jacobian


def _errors(jacobian: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    """The standard deviations of quantities whose derivatives are ``jacobian``
    (parameters x ...) for the parameters' ``covariance``."""
    flat = jacobian.reshape(len(jacobian), -1)
    variance = np.einsum("iq,ij,jq->q", flat, covariance, flat)
    return np.sqrt(np.clip(variance, 0.0, None)).reshape(jacobian.shape[1:])


def yield_band(model: pyhf.pdf.Model, pars: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    """The uncertainty of the total expected yield per bin: the parameters' ``covariance``
    propagated linearly, correlations included."""
    return _errors(yield_jacobian(model, pars, covariance).sum(1), covariance)


def prefit_covariance(model: pyhf.pdf.Model) -> np.ndarray:
    """The parameters' pre-fit covariance: their constraint widths squared (no correlation);
    free parameters (the signal strength) held."""
    return np.diag(np.square(widths(model)))


def signal_samples(spec: dict[str, Any], poi: str) -> list[str]:
    """The samples the signal strength ``poi`` scales (a ``normfactor`` of that name) in any
    channel of the workspace ``spec``."""
    return sorted({sample["name"] for channel in spec["channels"] for sample in
                   channel["samples"] if any(m["name"] == poi and m["type"] == "normfactor"
                                             for m in sample["modifiers"])})  # fmt: skip


def channel_yields(
    model: pyhf.pdf.Model, pars: np.ndarray, covariance: np.ndarray, signal: Sequence[str]
) -> dict[str, dict[str, dict[str, Any]]]:
    """Per channel, per row (each sample in model order, ``background``: the samples not in
    ``signal``, ``total``: all of them), the yields at ``pars`` per bin (``bins``) and summed
    over the channel (``sum``), with the standard deviations of each (``bin_errors``,
    ``error``) from ``covariance``."""
    samples = list(model.config.samples)
    yields = sample_yields(model, pars)
    jacobian = yield_jacobian(model, pars, covariance)
    rows = {name: np.eye(len(samples))[i] for i, name in enumerate(samples)}
    rows["background"] = np.array([0.0 if s in signal else 1.0 for s in samples])
    rows["total"] = np.ones(len(samples))
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for channel in model.config.channels:
        bins = model.config.channel_slices[channel]
        out[channel] = {}
        for name, weights in rows.items():
            values = weights @ yields[:, bins]
            derivatives = np.einsum("s,isb->ib", weights, jacobian[:, :, bins])
            out[channel][name] = {
                "bins": values.tolist(),
                "bin_errors": _errors(derivatives, covariance).tolist(),
                "sum": float(values.sum()),
                "error": float(_errors(derivatives.sum(1), covariance)),
            }
    return out
