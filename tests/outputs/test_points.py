"""Data points (brewflow.outputs.points): Garwood intervals, and what the data/MC plot draws
with them, read back from its artists."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.container import ErrorbarContainer
from scipy.stats import chi2

from brewflow.outputs.plots import data_mc_figure
from brewflow.outputs.points import ARROW, garwood
from tests.outputs.plot_inputs import PROCESS_STYLES, process

ALPHA = 0.15865525393145707  # (1 - 0.6827) / 2: one standard deviation, two-sided


def reference_interval(n: int) -> tuple[float, float]:
    """Garwood's 68.3% central interval for n observed events, from chi2 quantiles."""
    low = 0.0 if n == 0 else chi2.ppf(ALPHA, 2 * n) / 2
    return low, chi2.ppf(1 - ALPHA, 2 * (n + 1)) / 2


def test_garwood_is_the_chi2_interval():
    counts = np.array([0, 1, 2, 3, 5, 10, 100, 2500])
    low, high = garwood(counts)
    expected = np.array([reference_interval(n) for n in counts])
    np.testing.assert_allclose(low, expected[:, 0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(high, expected[:, 1], rtol=1e-10)
    assert high[0] == pytest.approx(1.841, abs=5e-4)
    assert (low[1], high[1]) == (pytest.approx(0.173, abs=5e-4), pytest.approx(3.300, abs=5e-4))
    assert ((high - counts) > (counts - low))[1:].all()  # asymmetric: longer upwards
    assert np.isnan(garwood(np.array([np.nan, 1.0]))[0][0])


def _data_bars(ax) -> tuple[dict[float, tuple[float, float]], list[float]]:
    """The drawn data error bars by x (low, high) and the x of the markers."""
    bars, markers = {}, []
    for container in ax.containers:
        if isinstance(container, ErrorbarContainer):
            line, _, collections = container.lines
            if line is not None and line.get_marker() not in (None, "None", ""):
                markers += list(line.get_xdata())
            for (x, lo), (_, hi) in collections[0].get_segments():
                bars[round(float(x), 6)] = (lo, hi)
    return bars, markers


@pytest.mark.parametrize("edges", [np.linspace(0, 8, 9), np.array([0, 1, 2, 4, 8.0])])
def test_drawn_error_bars_are_the_garwood_intervals(edges):
    """Main panel: each bar is the Garwood interval of its count (per unit of x for variable
    bins); an empty bin has no marker and a bar from 0 to 1.84 where MC predicts events, and
    nothing where MC does not. Ratio panel: the interval over the MC."""
    n = len(edges) - 1
    counts = np.array([0, 1, 2, 3, 0, 25, 40, 0][:n], dtype=float)
    mc = np.array([2.0, 1.5, 3.0, 2.0, 0.0, 20.0, 50.0, 1.0][:n])
    fig = data_mc_figure([process("data", edges, counts, is_data=True),
                          process("dy", edges, mc)], "x", "r", styles=PROCESS_STYLES,
                         luminosity=1.0, xlabel="x [GeV]")  # fmt: skip
    ax, rax = fig.axes
    widths = np.diff(edges) if n == 4 else np.ones(n)
    centers = (edges[:-1] + edges[1:]) / 2
    bars, markers = _data_bars(ax)
    drawn = [i for i in range(n) if counts[i] > 0 or mc[i] > 0]
    assert sorted(bars) == [round(centers[i], 6) for i in drawn]
    for i in drawn:
        low, high = reference_interval(int(counts[i]))
        np.testing.assert_allclose(bars[round(centers[i], 6)],
                                   (low / widths[i], high / widths[i]), rtol=1e-9)  # fmt: skip
    np.testing.assert_allclose(sorted(markers), centers[counts > 0])
    ratio_bars, ratio_markers = _data_bars(rax)
    for i in drawn:
        low, high = reference_interval(int(counts[i]))
        np.testing.assert_allclose(ratio_bars[round(centers[i], 6)],
                                   (low / mc[i], high / mc[i]), rtol=1e-9)  # fmt: skip
    np.testing.assert_allclose(sorted(ratio_markers), centers[counts > 0])
    plt.close(fig)


def test_ratio_points_outside_the_panel_get_an_arrow():
    """Arrows at the top edge for ratios above the panel, at the bottom for those below it and
    for empty bins whose whole upper error stays below it; none for points inside."""
    edges = np.linspace(0, 6, 7)
    mc = np.array([10.0, 10.0, 10.0, 10.0, 10.0, 1.0])
    counts = np.array([20.0, 3.0, 10.0, 0.0, 14.0, 0.0])  # 2.0, 0.3, 1.0, 0 (<0.185), 1.4, 0
    fig = data_mc_figure([process("data", edges, counts, is_data=True),
                          process("dy", edges, mc)], "x", "r", styles={}, luminosity=1.0,
                         ratio_range=(0.5, 1.5))  # fmt: skip
    rax = fig.axes[1]
    arrows = [t for t in rax.texts if t.get_gid() == ARROW]
    up = sorted(a.xy[0] for a in arrows if a.xy[1] > a.xyann[1])
    down = sorted(a.xy[0] for a in arrows if a.xy[1] < a.xyann[1])
    high_empty = np.array([reference_interval(0)[1]]) / mc[counts == 0]
    centers = edges[:-1] + 0.5
    assert up == list(centers[(counts > 0) & (counts / mc > 1.5)]) == [0.5]
    below = (counts > 0) & (counts / mc < 0.5)
    empty_below = np.zeros_like(below)
    empty_below[counts == 0] = high_empty < 0.5  # 1.84 / 10 < 0.5; 1.84 / 1 is not
    assert down == list(centers[below | empty_below]) == [1.5, 3.5]
    for arrow in arrows:  # heads on the panel's edge, in axes fractions
        assert arrow.xy[1] in (pytest.approx(0.97), pytest.approx(0.03))
    plt.close(fig)
