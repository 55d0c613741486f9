"""Baseline images of every plot type (pytest-mpl: tests/baseline/README.md), each also checked
geometrically: no legend or label covers what is drawn (tests/outputs/overlap.py)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.patches import StepPatch

from brewflow.outputs.plots import (
    data_mc_figure,
    lumi_label,
    region_title,
)
from brewflow.outputs.systematics_pages import systematics_figure
from tests.outputs.overlap import overlaps
from tests.outputs.plot_inputs import EDGES, PROCESS_STYLES, demo_processes, process, shape

IMAGE = {"savefig_kwargs": {"dpi": 40}}  # small baselines: 400 x 400 pixels
MASS = "$m_{\\ell\\ell}$ [GeV]"
ZMUMU = "$Z\\to\\mu\\mu$"


def _figure(processes, **options):
    options = {"styles": PROCESS_STYLES, "luminosity": 59830.0, "region_label": ZMUMU,
               "label": "Preliminary", **options}  # fmt: skip
    return data_mc_figure(processes, "x", "r", **options)


def _checked(fig):
    assert overlaps(fig.axes[0]) == []
    return fig


@pytest.mark.mpl_image_compare(**IMAGE)
def test_data_mc_linear():
    return _checked(_figure(demo_processes(EDGES["mass"]), xlabel=MASS))


@pytest.mark.mpl_image_compare(**IMAGE)
def test_data_mc_log():
    edges = EDGES["njets"]
    processes = demo_processes(edges, "left", data_scale=1.05)
    fig = _figure(processes, xlabel="jet multiplicity", log_y=True)
    assert fig.axes[0].get_yscale() == "log"
    assert fig.axes[0].get_ylabel() == "Events"
    return _checked(fig)


@pytest.mark.mpl_image_compare(**IMAGE)
def test_data_mc_variable_bins():
    """Contents per GeV: the stack's top is the MC sum over each bin's width."""
    edges = EDGES["met"]
    processes = demo_processes(edges, "left", scale=0.2)
    fig = _figure(processes, xlabel="$p_{T}^{miss}$ [GeV]")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "Events / GeV"
    (top,) = [p for p in ax.patches if p.get_label() == "Drell-Yan"]  # the stack's top layer
    mc_total = sum(p.project("x", "r").values() for p in processes[1:])
    np.testing.assert_allclose(top.get_data().values, mc_total / np.diff(edges))
    return _checked(fig)


@pytest.mark.mpl_image_compare(**IMAGE)
def test_blinded_region():
    """No data and no Data/MC panel: the MC alone, said in the region's text."""
    fig = _figure(demo_processes(EDGES["mass"]), xlabel=MASS, blind=True)
    assert len(fig.axes) == 1
    assert not fig.axes[0].containers  # no data points
    assert any(t.get_text().endswith("Data blinded") for t in fig.axes[0].texts)
    return _checked(fig)


@pytest.mark.mpl_image_compare(**IMAGE)
def test_blinded_window():
    """Data and their ratio outside [85, 95) only; the note is in the region's text."""
    edges = EDGES["mass"]
    fig = _figure(demo_processes(edges), xlabel=MASS, window=(85, 95))
    ax, rax = fig.axes
    centers = (edges[:-1] + edges[1:]) / 2
    outside = centers[(edges[1:] <= 85) | (edges[:-1] >= 95)]
    for panel in (ax, rax):
        drawn = np.concatenate([c.lines[0].get_xdata() for c in panel.containers])
        np.testing.assert_allclose(drawn, outside)
    assert any("Data blinded in [85, 95)" in t.get_text() for t in ax.texts)
    return _checked(fig)


@pytest.mark.mpl_image_compare(**IMAGE)
def test_per_era():
    config = {"eras": {"2018": {"luminosity": 59830.0, "energy": 13, "label": "2018"}},
              "regions": {"ttbar_emu": {"label": "$t\\bar{t}\\to e\\mu$"}}}  # fmt: skip
    edges = EDGES["eta"]
    fig = _figure(demo_processes(edges, "middle", scale=0.5), xlabel="leading muon $\\eta$",
                  rlabel=lumi_label(config, "2018"),
                  region_label=region_title(config, "ttbar_emu", "2018"))  # fmt: skip
    assert fig.axes[0].get_ylabel() == "Events / 0.2"
    return _checked(fig)


@pytest.mark.mpl_image_compare(**IMAGE)
def test_systematics_page():
    """The ratio panel is centred on 1 and scaled to the variation (jes: 1% of Drell-Yan,
    3% of ttbar); bins with an empty nominal are not drawn."""
    edges = EDGES["mass"]
    processes = demo_processes(edges)
    description = "jet energy scale, total uncertainty (object variation), a long description"
    fig = systematics_figure(processes, "x", "r", "jes", luminosity=59830.0,
                             region_label=ZMUMU, description=description, xlabel=MASS)  # fmt: skip
    ax, rax = fig.axes
    nominal = sum(p.project("x", "r").values() for p in processes[1:])
    up = sum(p.project("x", "r", "jesUp").values() for p in processes[1:])
    shift = np.max(np.abs(up / nominal - 1))
    low, high = rax.get_ylim()
    assert low == pytest.approx(2 - high)  # centred on 1
    assert shift < high - 1 < 2 * shift  # the largest shift fills over half of the panel
    assert overlaps(ax) == []
    return fig


def test_systematics_ratio_leaves_empty_bins_out():
    edges = EDGES["mass"]
    dy = shape(edges, "z", 100.0)
    dy[:3] = 0.0
    fig = systematics_figure([process("dy", edges, dy, variations={"jesUp": dy * 1.02,
                                      "jesDown": dy * 0.98})], "x", "r", "jes",
                             luminosity=1.0)  # fmt: skip
    ratios = [p.get_data().values for p in fig.axes[1].patches if isinstance(p, StepPatch)]
    assert len(ratios) == 2
    for ratio in ratios:
        assert np.isnan(ratio[:3]).all()
        np.testing.assert_allclose(np.abs(ratio[3:] - 1), 0.02)
    low, high = fig.axes[1].get_ylim()
    assert low == pytest.approx(2 - high)
    assert 0.02 < high - 1 < 0.04
    plt.close(fig)
