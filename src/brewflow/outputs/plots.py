"""Data/MC plots: stacked MC by process, data points, MC statistical band and a ratio panel.

CMS style via ``mplhep``; PNG/PDF/SVG written with fixed metadata so reruns are byte-identical.
"""

from __future__ import annotations

import os
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
from brewflow.outputs.distribution import Distribution, blinded_bins, distribution
from brewflow.reproducible import build_time
from brewflow.results import provenance
from brewflow.results.model import Result

__all__ = [
    "band_stairs",
    "cms_label",
    "data_mc",
    "data_mc_figure",
    "draw",
    "frame",
    "lumi_label",
    "lumi_text",
    "process_styles",
    "region_title",
    "save_figure",
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


_DRAWING = ("luminosity", "energy", "label", "log_y", "ratio_range", "rlabel")
"""The options of :func:`draw` (the others are :func:`distribution`'s)."""


def data_mc_figure(
    processes: Sequence[Result],
    histogram: str,
    region: str,
    *,
    region_label: str | None = None,
    **options: Any,
) -> Figure:
    """One histogram in one region: :func:`brewflow.outputs.distribution.distribution` of
    these arguments (the region's ``title``: ``region_label``) drawn by :func:`draw` (its
    options: :data:`_DRAWING`)."""
    drawing = {k: options.pop(k) for k in _DRAWING if k in options}
    return draw(distribution(processes, histogram, region, title=region_label, **options),
                **drawing)  # fmt: skip


def draw(
    dist: Distribution,
    *,
    luminosity: float = 0.0,
    energy: float = 13.0,
    label: str = "Preliminary",
    log_y: bool = False,
    ratio_range: Sequence[float] = (0.5, 1.5),
    rlabel: str | None = None,
) -> Figure:
    """The data/MC plot of ``dist``: MC stacked by process (largest on top), its uncertainty
    band, data as points with Garwood errors (:mod:`.points`) and a Data/MC panel with arrows
    for points outside ``ratio_range``. ``rlabel`` replaces the luminosity label made of
    ``luminosity`` and ``energy``. A blind distribution shows MC alone (no ratio panel); a
    blinded window shows no data in the bins that overlap it (shaded, in both panels). The
    signal hypotheses are drawn as lines over the stack, not stacked. The legend and the text
    go where they cover nothing drawn (:func:`brewflow.outputs.layout.annotate`)."""
    edges, widths = dist.edges, dist.widths
    centers = (edges[:-1] + edges[1:]) / 2
    fig, ax, rax = frame(ratio=dist.data is not None)
    stack = mh.histplot([c.values for c in dist.stacked], edges, ax=ax, stack=True,
                        histtype="fill", label=[c.label for c in dist.stacked], flow="none",
                        color=[c.color for c in dist.stacked])  # fmt: skip
    err_down, err_up = dist.band
    band = band_stairs(
        ax,
        edges,
        dist.total - err_down,
        dist.total + err_up,
        label="Stat. $\\oplus$ syst. unc." if dist.has_syst else "MC stat. unc.",
    )
    tops = dist.total + err_up
    handles = [*(a.stairs for a in stack), band]  # mplhep returns the stack's top first
    for signal in dist.signals:  # hypotheses: lines of their own, never stacked
        line = mh.histplot(signal.values, edges, ax=ax, histtype="step", flow="none",
                           linewidth=2, linestyle="--", color=signal.color,
                           label=signal.label)[0].stairs  # fmt: skip
        handles.append(line)
        tops = np.fmax(tops, signal.values)
    labels = [h.get_label() for h in handles]
    hidden = blinded_bins(edges, dist.window)
    if dist.events is not None:
        handle, data_tops = points.data_points(ax, centers, dist.events, widths)
        tops = np.fmax(tops, data_tops)
        handles, labels = [handle, *handles], ["Data", *labels]
        total = dist.total * widths
        points.ratio_points(rax, centers, dist.events, total, (ratio_range[0], ratio_range[1]))
        with np.errstate(divide="ignore", invalid="ignore"):
            rel_up = np.where(total > 0, err_up / dist.total, 0.0)
            rel_down = np.where(total > 0, err_down / dist.total, 0.0)
        band_stairs(rax, edges, 1 - rel_down, 1 + rel_up)
        rax.axhline(1.0, color="black", linewidth=1, linestyle="--")
        rax.set_ylim(*ratio_range)
        rax.set_ylabel("Data / MC")
        rax.set_xlabel(dist.xlabel)
        ax.set_xlabel("")
    else:
        ax.set_xlabel(dist.xlabel)
    window = dist.window
    if window is not None and hidden.any():
        for panel in filter(None, (ax, rax)):
            panel.axvspan(max(window[0], edges[0]), min(window[1], edges[-1]), color="grey",
                          alpha=0.25, linewidth=0)  # fmt: skip
    ax.set_ylabel(dist.ytitle)
    ax.set_xlim(edges[0], edges[-1])
    if log_y:
        ax.set_yscale("log")
    bottom = _log_bottom(dist.total, dist.stacked[0].values) if log_y else 0.0
    layout.annotate(ax, handles, labels, list(dist.notes), edges, tops, bottom=bottom)
    rlabel = rlabel or f"{lumi_text(luminosity)} ({energy:g} TeV)"
    cms_label(ax, label, rlabel, data=dist.has_data)
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
