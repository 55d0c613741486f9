"""Data/MC plots: stacked MC by process, data points, MC statistical band and a ratio panel.

CMS style via ``mplhep``; PNG/PDF/SVG written with fixed metadata so reruns are byte-identical.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import mplhep as mh
import numpy as np
from matplotlib.figure import Figure

from brewflow.config import (
    era_names,
    era_settings,
)
from brewflow.files import atomic_output
from brewflow.outputs import layout, points
from brewflow.reproducible import build_time
from brewflow.results import provenance
from brewflow.results.arithmetic import variation_names
from brewflow.results.ledger import partial_note
from brewflow.results.model import Result

__all__ = [
    "band_stairs",
    "blinded_bins",
    "cms_label",
    "data_mc",
    "data_mc_figure",
    "events_title",
    "frame",
    "lumi_label",
    "lumi_text",
    "process_styles",
    "region_title",
    "save_figure",
    "uncertainty_band",
]


def _metadata(ext: str, stamp: str) -> dict[str, object]:
    """Fixed file metadata (no software versions or wall-clock dates: rebuilding gives the same
    bytes; a PDF's date is $SOURCE_DATE_EPOCH when set) and the inputs' provenance ``stamp``
    (:func:`brewflow.results.provenance.stamp`)."""
    origin = f"{provenance.MARK}: {stamp}"
    date = build_time() if os.environ.get("SOURCE_DATE_EPOCH") else None
    formats: dict[str, dict[str, object]] = {
        "png": {"Software": None, provenance.MARK: origin},
        "pdf": {"Creator": None, "Producer": None, "CreationDate": date, "ModDate": None,
                "Keywords": origin},
        "svg": {"Date": None, "Creator": None, "Description": origin},
    }  # fmt: skip
    return formats[ext]


def lumi_text(luminosity_pb: float) -> str:
    """``'10 pb$^{-1}$'`` below 1 fb^-1, else ``'59.8 fb$^{-1}$'``."""
    if luminosity_pb < 1000:
        return f"{luminosity_pb:.3g} pb$^{{-1}}$"
    return f"{luminosity_pb / 1000:.3g} fb$^{{-1}}$"


def lumi_label(config: Mapping, era: str | None = None) -> str:
    """The luminosity label of one era, or of the combination: the eras' luminosities summed
    per centre-of-mass energy (``'138 fb$^{-1}$ (13 TeV)'``, or ``'... (13 TeV) + ...
    (13.6 TeV)'`` when eras mix energies)."""
    chosen = [era] if era is not None else era_names(config)
    by_energy: dict[float, float] = {}
    for name in chosen:
        settings = era_settings(config, name)
        energy = settings["energy"]
        by_energy[energy] = by_energy.get(energy, 0.0) + settings["luminosity"]
    return " + ".join(f"{lumi_text(lumi)} ({energy:g} TeV)" for energy, lumi in by_energy.items())


def blinded_bins(edges: np.ndarray, window: Sequence[float] | None) -> np.ndarray:
    """Per bin: True where it overlaps the blinded ``window`` ``(low, high)`` (none without)."""
    if window is None:
        return np.zeros(len(edges) - 1, dtype=bool)
    return (edges[:-1] < window[1]) & (edges[1:] > window[0])


def _values(result: Result, name: str, region: str, systematic: str) -> np.ndarray:
    present = systematic in result.systematics
    return result.project(name, region, systematic if present else "nominal").values()


def _total(processes: Sequence[Result], histogram: str, region: str, systematic: str):
    return sum(_values(p, histogram, region, systematic) for p in processes if not p.is_data)


def uncertainty_band(
    processes: Sequence[Result], histogram: str, region: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Total MC prediction and its lower and upper uncertainty per bin.

    For each systematic, the shifts of the total MC under its Up and Down variations are taken;
    the largest upward and downward shifts (zero if none) are added in quadrature over
    systematics, together with the MC statistical uncertainty (sqrt of the sum of w^2).
    Processes without a variation contribute their nominal to it.
    """
    mc = [p for p in processes if not p.is_data]
    total = _total(mc, histogram, region, "nominal")
    stat2 = sum(p.project(histogram, region).variances() for p in mc)
    names = variation_names(mc)
    up2, down2 = stat2.copy(), stat2.copy()
    for name in names:
        shifts = [_total(mc, histogram, region, name + d) - total for d in ("Up", "Down")]
        up2 += np.maximum(np.maximum(shifts[0], shifts[1]), 0.0) ** 2
        down2 += np.minimum(np.minimum(shifts[0], shifts[1]), 0.0) ** 2
    return total, np.sqrt(down2), np.sqrt(up2)


def events_title(edges: np.ndarray, xlabel: str) -> tuple[str, bool]:
    """The y-axis title of a histogram of events over ``edges`` and whether its contents are
    divided by the bin width. The unit is the one the x-axis title ends with in brackets
    (``'$m_{\\ell\\ell}$ [GeV]'``): ``'Events / 2.5 GeV'`` for uniform bins, ``'Events / 0.2'``
    without a unit, ``'Events'`` for bins of width 1 centred on integers (multiplicities);
    variable bins are shown per unit of x (``'Events / GeV'``, ``'Events / unit'``), except
    bins of integers (edges at half-integers, e.g. a multiplicity's last bin "2 or more"):
    ``'Events / bin'``, not divided (a count per jet would mean nothing)."""
    found = re.search(r"\[([^\[\]]+)\]\s*$", xlabel or "")
    unit = found.group(1).strip() if found else ""
    widths = np.diff(edges)
    integers = not unit and np.allclose(edges - 0.5, np.round(edges - 0.5))
    if not np.allclose(widths, widths[0], rtol=1e-6, atol=0) and integers:
        return "Events / bin", False
    if not np.allclose(widths, widths[0], rtol=1e-6, atol=0):
        return f"Events / {unit or 'unit'}", True
    centers = (edges[:-1] + edges[1:]) / 2
    if np.isclose(widths[0], 1) and np.allclose(centers, np.round(centers)):
        return "Events", False
    return " ".join(filter(None, ["Events /", f"{widths[0]:.3g}", unit])), False


def _log_bottom(*values: np.ndarray) -> float:
    """The lower limit of a log y axis: a power of ten at least twice below the smallest
    positive of ``values`` (e.g. the stack's lowest layer, so that it shows, and the total),
    and at most six decades below the largest."""
    merged = np.concatenate(values)
    positive = merged[np.isfinite(merged) & (merged > 0)]
    if not positive.size:
        return 0.1
    low = max(positive.min(), positive.max() * 1e-6)
    return float(10 ** np.floor(np.log10(low) - np.log10(2)))


def band_stairs(
    ax: Any, edges: np.ndarray, low: np.ndarray, high: np.ndarray, **kwargs: Any
) -> Any:
    """The hatched uncertainty band between ``low`` and ``high``."""
    return ax.stairs(high, edges, baseline=low, fill=True, hatch="////", facecolor="none",
                     edgecolor="grey", linewidth=0, **kwargs)  # fmt: skip


def frame(ratio: bool) -> tuple[Any, Any, Any]:
    """A CMS-style figure: the main axes over a ratio panel (None without)."""
    plt.style.use(mh.style.CMS)
    if not ratio:
        fig, ax = plt.subplots(figsize=(10, 10))
        return fig, ax, None
    fig, (ax, rax) = plt.subplots(
        2, 1, figsize=(10, 10), gridspec_kw={"height_ratios": (3, 1)}, sharex=True
    )
    fig.subplots_adjust(hspace=0.07)
    return fig, ax, rax


def data_mc(
    processes: Sequence[Result],
    histogram: str,
    region: str,
    outputs: Sequence[str | Path],
    **options: Any,
) -> None:
    """Write :func:`data_mc_figure` of ``processes`` to each of ``outputs``."""
    fig = data_mc_figure(processes, histogram, region, **options)
    save_figure(fig, outputs, provenance.stamp(processes))


def data_mc_figure(
    processes: Sequence[Result],
    histogram: str,
    region: str,
    *,
    styles: Mapping[str, Mapping[str, str]],
    luminosity: float,
    energy: float = 13.0,
    label: str = "Preliminary",
    log_y: bool = False,
    ratio_range: Sequence[float] = (0.5, 1.5),
    region_label: str | None = None,
    rlabel: str | None = None,
    blind: bool = False,
    window: Sequence[float] | None = None,
    note: str | None = None,
    xlabel: str | None = None,
    signals: Sequence[Result] = (),
) -> Figure:
    """One histogram in one region: MC stacked by process (largest on top), its uncertainty
    band (:func:`uncertainty_band`), data as points with Garwood errors (:mod:`.points`) and a
    Data/MC panel with arrows for points outside ``ratio_range``. ``styles[process]`` may give
    ``label`` and ``color``; ``rlabel`` replaces the luminosity label made of ``luminosity``
    and ``energy``. A ``blind`` region shows MC alone (no ratio panel); a blinded ``window``
    ``(low, high)`` shows no data in the bins that overlap it (shaded, in both panels);
    ``note`` is a further line of the region's text (e.g. what a window left out); ``xlabel``
    the axis title (default: the histogram's axis label), whose unit the y-axis title takes
    (:func:`events_title`). ``signals`` (a search's hypotheses) are drawn as lines over the
    stack, not stacked. The legend and the text go where they cover nothing drawn
    (:func:`brewflow.outputs.layout.annotate`)."""
    mc = [p for p in processes if not p.is_data]
    has_data = any(p.is_data for p in processes)
    data = [] if blind else [p for p in processes if p.is_data]
    if not mc:
        raise ValueError(f"histogram {histogram!r}: no MC process to plot")
    mc_hists = [p.project(histogram, region) for p in mc]
    order = np.argsort([h.sum().value for h in mc_hists])  # largest on top
    mc = [mc[i] for i in order]
    mc_hists = [mc_hists[i] for i in order]
    axis = mc_hists[0].axes[0]
    edges, centers = axis.edges, axis.centers
    xlabel = xlabel or axis.label
    ytitle, per_width = events_title(edges, xlabel)
    widths = np.diff(edges) if per_width else np.ones(len(centers))

    fig, ax, rax = frame(ratio=bool(data))
    names = [styles.get(p.process, {}).get("label", p.process) for p in mc]
    stack = mh.histplot([h.values() / widths for h in mc_hists], edges, ax=ax, stack=True,
                        histtype="fill", label=names, flow="none",
                        color=[styles.get(p.process, {}).get("color") for p in mc])  # fmt: skip
    total, err_down, err_up = uncertainty_band(mc, histogram, region)
    has_syst = any(s != "nominal" for p in mc for s in p.systematics)
    band = band_stairs(ax, edges, (total - err_down) / widths, (total + err_up) / widths,
                 label="Stat. $\\oplus$ syst. unc." if has_syst else "MC stat. unc.")  # fmt: skip
    tops = (total + err_up) / widths
    handles = [*(a.stairs for a in stack), band]  # mplhep returns the stack's top first
    for signal in signals:  # hypotheses: lines of their own, never stacked
        values = signal.project(histogram, region).values() / widths
        if not np.any(values):  # none of its events here: no line, no legend entry
            continue
        style = styles.get(signal.process, {})
        line = mh.histplot(values, edges, ax=ax, histtype="step", flow="none", linewidth=2,
                           linestyle="--", color=style.get("color"),
                           label=style.get("label", signal.process))[0].stairs  # fmt: skip
        handles.append(line)
        tops = np.fmax(tops, values)
    labels = [h.get_label() for h in handles]
    hidden = blinded_bins(edges, window)
    if data:
        counts = sum((p.project(histogram, region).values() for p in data[1:]),
                     data[0].project(histogram, region).values())  # fmt: skip
        # an empty bin shows its upper error (1.84) where MC predicts events, else nothing
        counts = np.where(hidden | ((counts == 0) & (total <= 0)), np.nan, counts)
        handle, data_tops = points.data_points(ax, centers, counts, widths)
        tops = np.fmax(tops, data_tops)
        handles, labels = [handle, *handles], ["Data", *labels]
        points.ratio_points(rax, centers, counts, total, (ratio_range[0], ratio_range[1]))
        with np.errstate(divide="ignore", invalid="ignore"):
            rel_up = np.where(total > 0, err_up / total, 0.0)
            rel_down = np.where(total > 0, err_down / total, 0.0)
        band_stairs(rax, edges, 1 - rel_down, 1 + rel_up)
        rax.axhline(1.0, color="black", linewidth=1, linestyle="--")
        rax.set_ylim(*ratio_range)
        rax.set_ylabel("Data / MC")
        rax.set_xlabel(xlabel)
        ax.set_xlabel("")
    else:
        ax.set_xlabel(xlabel)
    if window is not None and hidden.any():
        for panel in filter(None, (ax, rax)):
            panel.axvspan(max(window[0], edges[0]), min(window[1], edges[-1]), color="grey",
                          alpha=0.25, linewidth=0)  # fmt: skip
    ax.set_ylabel(ytitle)
    ax.set_xlim(edges[0], edges[-1])
    if log_y:
        ax.set_yscale("log")
    notes = [region_label or region, partial_note(processes), note]
    if blind:
        notes.append("Data blinded")
    elif window is not None:
        notes.append(f"Data blinded in [{window[0]:g}, {window[1]:g})")
    bottom = _log_bottom(total / widths, mc_hists[0].values() / widths) if log_y else 0.0
    layout.annotate(ax, handles, labels, list(filter(None, notes)), edges, tops, bottom=bottom)
    cms_label(ax, label, rlabel or f"{lumi_text(luminosity)} ({energy:g} TeV)", data=has_data)
    return fig


def cms_label(ax: Any, label: str, rlabel: str, *, data: bool) -> None:
    """The CMS label and the luminosity label (smaller when long, e.g. two energies)."""
    size = {"fontsize": 13} if len(rlabel) > 30 else {}
    mh.cms.label(label, data=data, ax=ax, rlabel=rlabel, **size)


def save_figure(fig: Any, outputs: Sequence[str | Path], stamp: str) -> None:
    """Write ``fig`` to each of ``outputs`` (format from the suffix) atomically, with fixed
    metadata and the provenance ``stamp``, and close it."""
    for output in outputs:
        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        ext = output.suffix.lstrip(".")
        with atomic_output(output) as tmp:
            fig.savefig(tmp, metadata=_metadata(ext, stamp), dpi=100 if ext == "png" else None)
    plt.close(fig)


def process_styles(config: Mapping) -> dict[str, dict[str, str]]:
    """Process -> its ``label`` and ``color`` (the first dataset of the process giving each)."""
    styles: dict[str, dict[str, str]] = {}
    for name, dataset in config["datasets"].items():
        style = styles.setdefault(dataset.get("process", name), {})
        for key in ("label", "color"):
            if key in dataset:
                style.setdefault(key, dataset[key])
    return styles


def region_title(config: Mapping, region: str, era: str | None) -> str:
    """A plot's region line: the region's label (else name) and the era's label."""
    where = era_settings(config, era)["label"] if era else ""
    return ", ".join(filter(None, [config["regions"][region].get("label") or region, where]))
