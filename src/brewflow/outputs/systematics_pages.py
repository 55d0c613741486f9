"""Per-systematic pages: for one histogram in one region, a PDF with a page per systematic,
the total MC at nominal, up and down, and their ratios to nominal (a panel centred on 1,
scaled to the variation), drawn as the data/MC plots are (:mod:`brewflow.outputs.plots`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from brewflow.files import atomic_output
from brewflow.outputs import layout
from brewflow.outputs.distribution import events_title, mc_total
from brewflow.outputs.plots import _log_bottom, _metadata, cms_label, frame, lumi_text
from brewflow.results import provenance
from brewflow.results.arithmetic import variation_names
from brewflow.results.ledger import partial_note
from brewflow.results.model import Result

__all__ = ["systematics_figure", "systematics_pdf"]


def _systematics_frame(
    mc: Sequence[Result], histogram: str, region: str, *, luminosity: float, energy: float,
    label: str, rlabel: str | None, xlabel: str | None, log_y: bool,
) -> tuple[Any, Any, Any, np.ndarray, np.ndarray, float]:  # fmt: skip
    """The figure every page of a per-systematic PDF shares (the CMS label draws the figure
    to place its text: made once), its bin edges, bin widths and the y axis' lower limit."""
    axis = mc[0].project(histogram, region).axes[0]
    edges, xlabel = axis.edges, xlabel or axis.label
    ytitle, per_width = events_title(edges, xlabel)
    widths = np.diff(edges) if per_width else np.ones(len(edges) - 1)
    fig, ax, rax = frame(ratio=True)
    ax.set_xlim(edges[0], edges[-1])
    ax.set_ylabel(ytitle)
    rax.set_ylabel("Var. / nom.")
    rax.set_xlabel(xlabel)
    rax.axhline(1.0, color="black", linewidth=1, linestyle="--")
    nominal = mc_total(mc, histogram, region, "nominal") / widths
    if log_y:
        ax.set_yscale("log")
    cms_label(ax, label, rlabel or f"{lumi_text(luminosity)} ({energy:g} TeV)", data=False)
    return fig, ax, rax, edges, widths, _log_bottom(nominal) if log_y else 0.0


def _systematic_page(
    ax: Any, rax: Any, mc: Sequence[Result], histogram: str, region: str, name: str,
    edges: np.ndarray, widths: np.ndarray, bottom: float, lines: Sequence[str],
) -> list[Any]:  # fmt: skip
    """Draw one systematic's page: the total MC nominal, Up and Down (``name`` 'nominal':
    the nominal alone), their ratios to nominal in a panel centred on 1 and scaled to the
    largest shift (bins with an empty nominal not drawn). Returns the artists drawn."""
    nominal = mc_total(mc, histogram, region, "nominal")
    drawn = [ax.stairs(nominal / widths, edges, color="black", linewidth=2, label="nominal")]
    tops, shift = nominal / widths, 0.0
    variations = [] if name == "nominal" else [("Up", "#e42536"), ("Down", "#5790fc")]
    for direction, color in variations:
        varied = mc_total(mc, histogram, region, name + direction)
        drawn.append(ax.stairs(varied / widths, edges, color=color, linewidth=2,
                               label=f"{name}{direction}"))  # fmt: skip
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(nominal > 0, varied / nominal, np.nan)
        drawn.append(rax.stairs(ratio, edges, color=color, linewidth=2, baseline=None))
        tops = np.fmax(tops, varied / widths)
        shift = max(shift, np.abs(ratio - 1)[np.isfinite(ratio)].max(initial=0.0))
    half = max(1.3 * shift, 0.005)
    rax.set_ylim(1 - half, 1 + half)
    handles = [a for a in drawn if a.axes is ax]
    legend, text = layout.annotate(ax, handles, [h.get_label() for h in handles], lines,
                                   edges, tops, bottom=bottom)  # fmt: skip
    return [*drawn, legend, text]


def _page_lines(region_label: str, description: str, partial: str) -> list[str]:
    """A page's text: the region, the systematic's description and what was read."""
    return [region_label, description, partial]


def systematics_figure(
    processes: Sequence[Result],
    histogram: str,
    region: str,
    systematic: str,
    *,
    luminosity: float,
    energy: float = 13.0,
    label: str = "Preliminary",
    region_label: str | None = None,
    description: str = "",
    rlabel: str | None = None,
    xlabel: str | None = None,
    log_y: bool = False,
) -> Figure:
    """One page of :func:`systematics_pdf`: the page of ``systematic``."""
    mc = [p for p in processes if not p.is_data]
    fig, ax, rax, edges, widths, bottom = _systematics_frame(
        mc, histogram, region, luminosity=luminosity, energy=energy, label=label,
        rlabel=rlabel, xlabel=xlabel, log_y=log_y)  # fmt: skip
    lines = _page_lines(region_label or region, description, partial_note(processes))
    _systematic_page(ax, rax, mc, histogram, region, systematic, edges, widths, bottom,
                     [line for line in lines if line])  # fmt: skip
    return fig


def systematics_pdf(
    processes: Sequence[Result],
    histogram: str,
    region: str,
    output: str | Path,
    *,
    luminosity: float,
    energy: float = 13.0,
    label: str = "Preliminary",
    region_label: str | None = None,
    descriptions: Mapping[str, str] | None = None,
    rlabel: str | None = None,
    xlabel: str | None = None,
    log_y: bool = False,
) -> list[str]:
    """A multi-page PDF, one page per systematic: total MC nominal, Up and Down, and their
    ratios to nominal. Returns the systematics shown (processes without a variation
    contribute their nominal)."""
    mc = [p for p in processes if not p.is_data]
    names = variation_names(mc)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    metadata = _metadata("pdf", provenance.stamp(processes))
    fig, ax, rax, edges, widths, bottom = _systematics_frame(
        mc, histogram, region, luminosity=luminosity, energy=energy, label=label,
        rlabel=rlabel, xlabel=xlabel, log_y=log_y)  # fmt: skip
    partial = partial_note(processes)
    with atomic_output(output) as tmp, PdfPages(tmp, metadata=metadata) as pdf:
        for name in names or ["nominal"]:
            lines = _page_lines(region_label or region, (descriptions or {}).get(name, ""),
                                partial)  # fmt: skip
            page = _systematic_page(ax, rax, mc, histogram, region, name, edges, widths,
                                    bottom, [line for line in lines if line])  # fmt: skip
            pdf.savefig(fig)
            for artist in page:
                artist.remove()
    plt.close(fig)
    return names
