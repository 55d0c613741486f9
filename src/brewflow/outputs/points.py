"""Data points as CMS draws them: Garwood (frequentist Poisson, 68.3% central) intervals, no
marker in an empty bin (only its upper error, 1.84 events), and, in a ratio panel, an arrow at
the panel's edge for each point outside it.

The Garwood interval of N observed events is ``[chi2.ppf(0.1587, 2N) / 2,
chi2.ppf(0.8413, 2N + 2) / 2]`` (``hist.intervals.poisson_interval``; F. Garwood,
Biometrika 28 (1936) 437; the CMS Statistics Committee's recommendation for data points).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hist.intervals import poisson_interval

__all__ = ["ARROW", "data_points", "garwood", "ratio_points"]

ARROW = "out of range"  # the gid of a ratio panel's arrows


def garwood(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lower and upper ends of the 68.3% Garwood interval of each count (unweighted
    events; NaN stays NaN): 0 and 1.841 for N = 0, 0.173 and 3.300 for N = 1."""
    counts = np.asarray(counts, dtype=float)
    low, high = np.full_like(counts, np.nan), np.full_like(counts, np.nan)
    finite = np.isfinite(counts)
    low[finite], high[finite] = poisson_interval(counts[finite])
    return low, high


def _draw(
    ax: Any, x: np.ndarray, counts: np.ndarray, scale: np.ndarray | float, markersize: float,
    label: str | None = None,
) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Draw ``counts / scale`` with the Garwood interval over ``scale`` (NaN: not drawn; 0: no
    marker, only the upper error). Returns the handle of the points, their y, the upper end
    of each bar and the mask of the bins drawn with a marker."""
    low, high = garwood(counts)
    y, low, high = counts / scale, low / scale, high / scale
    shown, empty = np.isfinite(counts) & (counts > 0), np.isfinite(counts) & (counts == 0)
    handle = ax.errorbar(x[shown], y[shown], yerr=[y[shown] - low[shown], high[shown] - y[shown]],
                         fmt="o", color="black", markersize=markersize, label=label)  # fmt: skip
    if empty.any():
        ax.errorbar(x[empty], y[empty], yerr=[np.zeros(empty.sum()), high[empty]], fmt="none",
                    color="black")  # fmt: skip
    return handle, y, np.where(shown | empty, high, np.nan), shown


def data_points(
    ax: Any, centers: np.ndarray, counts: np.ndarray, widths: np.ndarray | float = 1.0,
    label: str = "Data",
) -> tuple[Any, np.ndarray]:  # fmt: skip
    """Draw ``counts`` (events, NaN: not shown) as points with Garwood errors, all divided by
    ``widths`` (1: events per bin); an empty bin has no marker, only its upper error. Returns
    the legend handle and the top of each drawn error bar (NaN where nothing is drawn)."""
    handle, _, high, _ = _draw(ax, centers, counts, widths, 6, label)
    return handle, high


def ratio_points(
    rax: Any, centers: np.ndarray, counts: np.ndarray, expected: np.ndarray,
    limits: tuple[float, float],
) -> None:  # fmt: skip
    """Draw ``counts / expected`` with the Garwood interval divided by ``expected`` (bins with
    ``expected > 0`` and a count), empty bins as their upper error only, and an arrow at the
    panel's edge (``limits``) where a point lies outside it (an empty bin: where its whole
    error bar does)."""
    valid = np.isfinite(counts) & (expected > 0)
    counts = np.where(valid, counts, np.nan)
    _, ratio, high, shown = _draw(rax, centers, counts, np.where(valid, expected, 1.0), 5)
    lower, upper = limits
    for x in centers[shown & (ratio > upper)]:
        _arrow(rax, x, up=True)
    for x in centers[(shown & (ratio < lower)) | (~shown & (high < lower))]:
        _arrow(rax, x, up=False)


def _arrow(rax: Any, x: float, up: bool) -> None:
    """An arrow at ``x`` whose head touches the panel's top (``up``) or bottom edge."""
    head, tail = (0.97, 0.62) if up else (0.03, 0.38)
    rax.annotate("", xy=(x, head), xytext=(x, tail), xycoords=("data", "axes fraction"),
                 arrowprops={"arrowstyle": "-|>", "color": "#e42536", "linewidth": 2,
                             "mutation_scale": 18}, gid=ARROW)  # fmt: skip
