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
from matplotlib.backends.backend_pdf import PdfPages

from brewflow.config import (
    era_names,
    era_settings,
    nuisance_description,
)
from brewflow.config.blinding import Blinding
from brewflow.errors import ConfigError
from brewflow.files import atomic_output
from brewflow.reproducible import build_time
from brewflow.results import provenance
from brewflow.results.arithmetic import variation_names
from brewflow.results.ledger import partial_note
from brewflow.results.model import Result

__all__ = [
    "blinded_bins",
    "cms_label",
    "data_mc",
    "lumi_label",
    "lumi_text",
    "process_styles",
    "region_title",
    "save_figure",
    "systematics_pdf",
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


def data_mc(
    processes: Sequence[Result],
    histogram: str,
    region: str,
    outputs: Sequence[str | Path],
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
) -> None:
    """Plot one histogram in one region; ``styles[process]`` may give ``label`` and ``color``.
    ``rlabel`` replaces the luminosity label made of ``luminosity`` and ``energy``. A ``blind``
    region shows MC only; a blinded ``window`` ``(low, high)`` shows no data in the bins that
    overlap it; ``note`` is a further legend line (e.g. what a window left out); ``xlabel``
    the axis title (default: the histogram's axis label)."""
    mc = [p for p in processes if not p.is_data]
    has_data = any(p.is_data for p in processes)
    data = [] if blind else [p for p in processes if p.is_data]
    if not mc:
        raise ValueError(f"histogram {histogram!r}: no MC process to plot")
    mc_hists = [p.project(histogram, region) for p in mc]
    order = np.argsort([h.sum().value for h in mc_hists])  # largest on top
    mc = [mc[i] for i in order]
    mc_hists = [mc_hists[i] for i in order]

    plt.style.use(mh.style.CMS)
    fig, (ax, rax) = plt.subplots(
        2, 1, figsize=(10, 10), gridspec_kw={"height_ratios": (3, 1)}, sharex=True
    )
    fig.subplots_adjust(hspace=0.07)
    edges = mc_hists[0].axes[0].edges
    mh.histplot(
        mc_hists,
        ax=ax,
        stack=True,
        histtype="fill",
        label=[styles.get(p.process, {}).get("label", p.process) for p in mc],
        color=[styles.get(p.process, {}).get("color") for p in mc],
        flow="none",
    )
    total, err_down, err_up = uncertainty_band(mc, histogram, region)
    has_syst = any(s != "nominal" for p in mc for s in p.systematics)
    ax.stairs(
        total + err_up,
        edges,
        baseline=total - err_down,
        fill=True,
        hatch="////",
        facecolor="none",
        edgecolor="grey",
        linewidth=0,
        label="Stat. $\\oplus$ syst. unc." if has_syst else "MC stat. unc.",
    )
    if data:
        data_hist = sum(
            (p.project(histogram, region) for p in data[1:]),
            data[0].project(histogram, region),
        )
        counts = data_hist.values()
        hidden = blinded_bins(edges, window)
        if window is not None and hidden.any():
            counts = np.where(hidden, np.nan, counts)
            for axis in (ax, rax):
                axis.axvspan(max(window[0], edges[0]), min(window[1], edges[-1]),
                             color="grey", alpha=0.25, linewidth=0)  # fmt: skip
        mh.histplot(
            counts,
            edges,
            ax=ax,
            histtype="errorbar",
            color="black",
            label="Data",
            yerr=np.sqrt(counts),
            flow="none",
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(total > 0, counts / total, np.nan)
            ratio_err = np.where(total > 0, np.sqrt(counts) / total, np.nan)
        centers = mc_hists[0].axes[0].centers
        rax.errorbar(centers, ratio, yerr=ratio_err, fmt="o", color="black", markersize=4)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_up = np.where(total > 0, err_up / total, 0.0)
        rel_down = np.where(total > 0, err_down / total, 0.0)
    rax.stairs(
        1 + rel_up,
        edges,
        baseline=1 - rel_down,
        fill=True,
        hatch="////",
        facecolor="none",
        edgecolor="grey",
        linewidth=0,
    )
    rax.axhline(1.0, color="black", linewidth=1, linestyle="--")
    rax.set_ylim(*ratio_range)
    rax.set_ylabel("Data / MC")
    rax.set_xlabel(xlabel or mc_hists[0].axes[0].label)
    ax.set_xlabel("")
    width = np.diff(edges)
    uniform = np.allclose(width, width[0])
    ax.set_ylabel(f"Events / {width[0]:.3g}" if uniform else "Events / bin")
    if log_y:
        ax.set_yscale("log")
        ax.set_ylim(bottom=0.1)
    else:
        ax.set_ylim(bottom=0)
        top = max(np.max(total + err_up, initial=0), np.nanmax(counts, initial=0) if data else 0)
        ax.set_ylim(top=1.45 * top if top > 0 else 1)
    ax.set_xlim(edges[0], edges[-1])
    handles, labels = ax.get_legend_handles_labels()
    notes = [region_label or region, partial_note(processes), note]
    if blind:
        notes.append("Data blinded")
    elif window is not None:
        notes.append(f"Data blinded in [{window[0]:g}, {window[1]:g})")
    title = "\n".join(filter(None, notes))
    ax.legend(handles[::-1], labels[::-1], title=title, ncol=2, fontsize=16)
    rlabel = rlabel or f"{lumi_text(luminosity)} ({energy:g} TeV)"
    cms_label(ax, label, rlabel, data=has_data)
    save_figure(fig, outputs, provenance.stamp(processes))


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


def _total(processes: Sequence[Result], histogram: str, region: str, systematic: str):
    return sum(_values(p, histogram, region, systematic) for p in processes if not p.is_data)


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
) -> list[str]:
    """A multi-page PDF, one page per systematic: total MC nominal, Up and Down, and their
    ratios to nominal. Returns the systematics shown (processes without a variation
    contribute their nominal)."""
    mc = [p for p in processes if not p.is_data]
    names = variation_names(mc)
    nominal = _total(mc, histogram, region, "nominal")
    axis = mc[0].project(histogram, region).axes[0]
    edges, xlabel = axis.edges, xlabel or axis.label
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    plt.style.use(mh.style.CMS)
    metadata = _metadata("pdf", provenance.stamp(processes))
    # one figure for every page: its frame and CMS label (which draws the figure to place its
    # text) made once; each page replaces the curves and the legend
    fig, (ax, rax) = plt.subplots(
        2, 1, figsize=(10, 10), gridspec_kw={"height_ratios": (3, 1)}, sharex=True
    )
    fig.subplots_adjust(hspace=0.07)
    ax.set_ylim(bottom=0, top=1.45 * max(np.max(nominal, initial=0), 1e-9))
    ax.set_xlim(edges[0], edges[-1])
    ax.set_ylabel("Events / bin")
    rax.set_ylabel("Var. / nom.")
    rax.set_xlabel(xlabel)
    rax.axhline(1.0, color="black", linewidth=1, linestyle="--")
    cms_label(ax, label, rlabel or f"{lumi_text(luminosity)} ({energy:g} TeV)", data=False)
    with atomic_output(output) as tmp, PdfPages(tmp, metadata=metadata) as pdf:
        for name in names or ["nominal"]:
            page = [ax.stairs(nominal, edges, color="black", linewidth=2, label="nominal")]
            for direction, color in (("Up", "#e42536"), ("Down", "#5790fc")):
                if name == "nominal":
                    break
                varied = _total(mc, histogram, region, name + direction)
                page.append(ax.stairs(varied, edges, color=color, linewidth=2,
                                      label=f"{name}{direction}"))  # fmt: skip
                with np.errstate(divide="ignore", invalid="ignore"):
                    ratio = np.where(nominal != 0, varied / nominal, np.nan)
                page.append(rax.stairs(ratio, edges, color=color, linewidth=2))
            title = (descriptions or {}).get(name, "")
            lines = [region_label or region, title, partial_note(processes)]
            page.append(ax.legend(title="\n".join(filter(None, lines)), fontsize=16))
            pdf.savefig(fig)
            for artist in page:
                artist.remove()
    plt.close(fig)
    return names


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


def plot_region(
    config: Mapping, inputs: Sequence[Result], region: str, output_dir: str | Path,
    histogram: str | None = None, era: str | None = None,
) -> None:  # fmt: skip
    """Every histogram filled in ``region`` (or only ``histogram``) as data/MC plots in the
    configured formats, and (config ``plots.systematics``, the combination) one PDF of its
    variations; of one ``era``, or of the combination (the luminosity label sums the eras). A
    blinded region or histogram window shows no data."""
    styles = process_styles(config)
    settings = config["plots"]
    title = region_title(config, region, era)
    common = {"luminosity": 0.0, "rlabel": lumi_label(config, era), "label": settings["label"],
              "region_label": title}  # fmt: skip
    blinding = Blinding.of(config)
    blind = blinding.is_blind(region)
    for name, definition in config["histograms"].items():
        if histogram not in (None, name):
            continue
        if region not in (definition.get("regions") or config["regions"]):
            if histogram:
                raise ConfigError(f"histogram {name!r} is not filled in region {region!r}")
            continue
        outputs = [Path(output_dir) / f"{name}.{ext}" for ext in settings["formats"]]
        left = None if blind else blinding.left_out(region, name)
        note = f"Data: events with {left} left out" if left else None
        window = blinding.window(name, region)
        xlabel = definition.get("label", definition["variable"])
        data_mc(inputs, name, region, outputs, styles=styles, log_y=definition["log"],
                ratio_range=settings["ratio_range"], blind=blind,
                window=None if window is None else (window.low, window.high),
                **common, note=note, xlabel=xlabel)  # fmt: skip
        if settings["systematics"] and era is None:  # of the combination: every nuisance
            names = variation_names(inputs)
            descriptions = {n: nuisance_description(config, n) for n in names}
            systematics_pdf(inputs, name, region, Path(output_dir) / f"{name}_systematics.pdf",
                            descriptions=descriptions, xlabel=xlabel, **common)  # fmt: skip
