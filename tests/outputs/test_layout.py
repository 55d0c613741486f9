"""Where the legend and labels go (brewflow.outputs.layout) and the y-axis title, checked on
drawn figures with the geometric check of tests/outputs/overlap.py."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from brewflow.outputs.distribution import events_title
from brewflow.outputs.layout import FILL, GAP, Box, required_top, wrap
from brewflow.outputs.plots import data_mc_figure
from tests.outputs.overlap import overlaps
from tests.outputs.plot_inputs import EDGES, PROCESS_STYLES, demo_processes, process, shape


@pytest.mark.parametrize(
    ("edges", "xlabel", "title", "per_width"),
    [
        (EDGES["mass"], "$m_{\\ell\\ell}$ [GeV]", "Events / 2.5 GeV", False),
        (EDGES["eta"], "leading muon $\\eta$", "Events / 0.2", False),
        (EDGES["njets"], "jet multiplicity", "Events", False),
        (np.linspace(0, 10, 11), "$p_{T}$ [GeV]", "Events / 1 GeV", False),
        (np.linspace(0, 1, 21), "BDT score (ttbar vs DY, WW)", "Events / 0.05", False),
        (EDGES["met"], "$p_{T}^{miss}$ [GeV]", "Events / GeV", True),
        (np.array([-0.5, 1.5, 2.5, 7.5]), "jet multiplicity", "Events / bin", False),
        (np.array([0.0, 0.5, 2.0]), "a score", "Events / unit", True),
    ],
)
def test_events_title(edges, xlabel, title, per_width):
    assert events_title(edges, xlabel) == (title, per_width)


def _figure(processes, **options):
    options = {"styles": PROCESS_STYLES, "luminosity": 59830.0, "region_label": "$Z\\to\\mu\\mu$",
               **options}  # fmt: skip
    return data_mc_figure(processes, "x", "r", **options)


def test_the_check_catches_a_legend_over_the_histogram():
    """The negative case: the same figure with its legend moved onto the stack, and with a
    text put on a data point, fails the check."""
    fig = _figure(demo_processes(EDGES["mass"]), xlabel="$m_{\\ell\\ell}$ [GeV]")
    ax = fig.axes[0]
    assert overlaps(ax) == []
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles, labels, loc="lower center")
    assert any(p.startswith("legend lies on 'Drell-Yan' bin") for p in overlaps(ax))
    ax.legend(handles, labels, loc="upper right")  # back over empty space
    peak = np.argmax(shape(EDGES["mass"], "z", 1.0))
    x = (EDGES["mass"][peak] + EDGES["mass"][peak + 1]) / 2
    ax.text(x, ax.get_ylim()[1] * 0.5, "a note", ha="center")
    assert any("'a note' covers the data point" in p or "'a note' lies on" in p
               for p in overlaps(ax))  # fmt: skip
    plt.close(fig)


@pytest.mark.parametrize("kind", ["left", "middle", "right", "flat"])
@pytest.mark.parametrize("log_y", [False, True])
def test_nothing_covers_the_histogram_wherever_it_peaks(kind, log_y):
    """Highest bins at the left, the middle or the right, linear and log: no legend or text
    covers a bar, the band or a data point; the boxes do not overlap."""
    note = "Data: events with mll in [85, 95) left out"
    fig = _figure(demo_processes(EDGES["mass"], kind), log_y=log_y, note=note,
                  xlabel="$m_{\\ell\\ell}$ [GeV]")  # fmt: skip
    assert overlaps(fig.axes[0]) == []
    plt.close(fig)


def test_tall_stack_on_log_scale():
    """Processes over seven decades: the stack's lowest layer (WW, 0.5 events per bin) shows
    above the axis' lower limit in every bin, the highest bin fits, nothing is covered."""
    edges = EDGES["njets"]
    falling = 10.0 ** (5 - np.arange(len(edges) - 1))  # 1e5 ... 1e-2
    processes = [
        process("data", edges, np.random.default_rng(3).poisson(falling * 1.1).astype(float),
                is_data=True),
        process("dy", edges, falling),
        process("top", edges, falling[::-1] * 1e-3 + 1e-3),
        process("diboson", edges, np.full(len(edges) - 1, 0.5)),
    ]  # fmt: skip
    fig = _figure(processes, log_y=True, xlabel="jet multiplicity")
    ax = fig.axes[0]
    assert overlaps(ax) == []
    bottom, top = ax.get_ylim()
    assert 1e-2 <= bottom <= 0.5 / 2
    assert top > 1e5
    plt.close(fig)


def test_wrap_breaks_at_spaces_outside_formulas():
    line = "Data: events with $m_{\\ell \\ell}$ in [85, 95) left out"
    assert wrap(line, 20) == ["Data: events with", "$m_{\\ell \\ell}$ in", "[85, 95) left out"]
    assert wrap("$t\\bar{t}\\to e\\mu$, 2018", 10) == ["$t\\bar{t}\\to e\\mu$,", "2018"]
    assert wrap("costs 5$ or more", 5) == ["costs 5$ or more"]  # an unpaired $: kept whole


@pytest.mark.parametrize(("bottom", "log_scale"), [(0.0, False), (0.1, True)])
def test_required_top_puts_the_highest_covered_bin_just_under_the_box(bottom, log_scale):
    """At the returned limit, the highest bin under the box sits GAP below its bottom (on the
    axis' own scale), and the highest bin elsewhere at most FILL of the axis up."""
    tops = np.array([50.0, 400.0, 30.0, 20.0])
    lefts, rights = np.array([0.0, 0.25, 0.5, 0.75]), np.array([0.25, 0.5, 0.75, 1.0])
    box = Box(0.6, 0.97, 0.55, 0.96)  # over the last two bins (and GAP beside them)
    top = required_top(tops, lefts, rights, [box], bottom, log_scale)

    def fraction(y):
        if log_scale:
            return (np.log10(y) - np.log10(bottom)) / (np.log10(top) - np.log10(bottom))
        return (y - bottom) / (top - bottom)

    assert fraction(30.0) <= box.y0 - GAP + 1e-12
    assert fraction(400.0) <= FILL + 1e-12
    assert max(fraction(30.0) - (box.y0 - GAP), fraction(400.0) - FILL) == pytest.approx(0)
