"""The fit's figures, each from the table :func:`brewflow.outputs.likelihood.fit_workspace`
makes: pulls, impacts in combine's layout (each nuisance's pull beside its impact on the
signal strength), the correlation matrix of the correlated parameters, the likelihood scan,
the CLs scan, and the pre- and post-fit yields of a channel. Each function returns the
figure; :func:`brewflow.outputs.fit.fit_job` saves it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import mplhep as mh
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from brewflow.outputs import layout, points
from brewflow.outputs.distribution import events_title
from brewflow.outputs.fit_text import number
from brewflow.outputs.plots import band_stairs, cms_label, frame

__all__ = [
    "channel_figure",
    "cls_figure",
    "correlation_figure",
    "impact_figure",
    "mu_text",
    "pull_figure",
    "scan_figure",
]

_UP, _DOWN = "#e42536", "#5790fc"  # the CMS palette's red and blue
_BAND_1, _BAND_2 = "#a5e1a5", "#ffe27a"  # +-1 and +-2 sigma: green and yellow


def mu_text(table: Mapping[str, Any]) -> str:
    """The best-fit signal strength for a title: with the likelihood scan's 68% interval
    (``$\\hat{\\mu} = 1.25^{+0.67}_{-0.62}$``), else its HESSE error."""
    mu = table["mu"]
    scan = table.get("likelihood_scan", {})
    interval = scan["intervals"][0] if scan.get("intervals") else {}
    if interval.get("low") is not None and interval.get("high") is not None:
        up, down = interval["high"] - mu, mu - interval["low"]
        return (rf"$\hat{{\mu}} = {number(mu, '.3f')}^{{+{number(up, '.3f')}}}"
                rf"_{{-{number(down, '.3f')}}}$")  # fmt: skip
    return rf"$\hat{{\mu}} = {number(mu, '.3f')} \pm {number(table['mu_error'], '.3f')}$"


def _message(ax: Any, text: str) -> None:
    """``text`` in the middle of an otherwise empty ``ax`` (a figure without numbers says
    why)."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=18,
            wrap=True)  # fmt: skip
    ax.set_xticks([])
    ax.set_yticks([])


def _shade_rows(ax: Any, n: int) -> None:
    """Every other row shaded, as combine's impact plot does, to follow a row across."""
    for row in range(0, n, 2):
        ax.axhspan(row - 0.5, row + 0.5, color="#f0f0f0", linewidth=0, zorder=0)


def pull_figure(table: Mapping[str, Any], label: str = "", rlabel: str = "") -> Figure:
    """Nuisance pulls ``(theta_hat - theta_0) / sigma_0`` with their post-fit constraints,
    the largest on top, against the +-1 and +-2 sigma of the prior; the signal strength
    in the title."""
    pulls = table["pulls"]
    plt.style.use(mh.style.CMS)
    fig, ax = plt.subplots(figsize=(10, max(5.5, 0.5 * len(pulls) + 3)), layout="constrained")
    y = np.arange(len(pulls))[::-1]
    ax.axvspan(-2, 2, color=_BAND_2, linewidth=0, label=r"$\pm 2\sigma$ pre-fit")
    ax.axvspan(-1, 1, color=_BAND_1, linewidth=0, label=r"$\pm 1\sigma$ pre-fit")
    ax.axvline(0, color="black", linewidth=1, linestyle="--")
    ax.errorbar([p["pull"] for p in pulls], y, xerr=[p["constraint"] for p in pulls],
                fmt="o", color="black", label="post-fit")  # fmt: skip
    ax.set_yticks(y, [p["name"] for p in pulls], fontsize=16)
    reach = max([3.0, *(abs(p["pull"]) + p["constraint"] + 0.3 for p in pulls)])
    ax.set_xlim(-reach, reach)
    ax.set_ylim(-0.5, max(len(pulls), 1) - 0.5)
    ax.set_xlabel(r"$(\hat{\theta} - \theta_0) / \sigma_0$")
    if not pulls:
        _message(ax, "no constrained nuisance parameter")
    ax.legend(fontsize=14, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False,
              title=f"{mu_text(table)}\nlargest pull first", title_fontsize=15)  # fmt: skip
    if label:
        cms_label(ax, label, rlabel, data=True)
    return fig


def impact_figure(table: Mapping[str, Any], label: str = "") -> Figure:
    """combine's impact plot: one row per nuisance, the largest impact on top; left its pull
    with the post-fit constraint, right the change of the signal strength with the nuisance
    held at its best fit +- its post-fit (filled) and pre-fit (open) uncertainty; the best
    fit in the title. A refit that failed draws no bar and is named "(failed)"."""
    rows = table["impacts"]
    pulls = {p["name"]: p for p in table["pulls"]}
    n = len(rows)
    plt.style.use(mh.style.CMS)
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(14, max(5.5, 0.55 * n + 3.5)), sharey=True, layout="constrained",
        gridspec_kw={"width_ratios": (1, 1.4)},
    )  # fmt: skip
    fig.get_layout_engine().set(wspace=0.06)  # the panels' outer tick labels apart
    y = np.arange(n)[::-1]
    for ax in (left, right):
        _shade_rows(ax, n)
    for x in (-1, 1):
        left.axvline(x, color="grey", linewidth=1, linestyle="--")
    left.axvline(0, color="black", linewidth=1)
    left.errorbar([pulls[r["name"]]["pull"] for r in rows], y,
                  xerr=[pulls[r["name"]]["constraint"] for r in rows], fmt="o", color="black",
                  markersize=7)  # fmt: skip
    reach = max([2.0, *(abs(p["pull"]) + p["constraint"] + 0.2 for p in pulls.values())])
    left.set_xlim(-reach, reach)
    left.set_xlabel(r"$(\hat{\theta} - \theta_0) / \sigma_0$", fontsize=20)
    names = [f"{i + 1}  {r['name']}" + (" (failed)" if r.get("failed") else "")
             for i, r in enumerate(rows)]  # fmt: skip
    left.set_yticks(y, names, fontsize=16)
    left.set_ylim(-0.5, max(n, 1) - 0.5)
    for key, filled in (("prefit", False), ("postfit", True)):
        for sign, color in (("up", _UP), ("down", _DOWN)):
            shifts = [r[f"{key}_{sign}"] or 0.0 for r in rows]
            right.barh(y, shifts, height=0.6 if filled else 0.8, fill=filled,
                       facecolor=color if filled else "none", edgecolor=color, linewidth=1.5,
                       alpha=0.85 if filled else 1.0, zorder=2 if filled else 3)  # fmt: skip
    keys = ("prefit_up", "prefit_down", "postfit_up", "postfit_down")
    largest = max([abs(r[k] or 0.0) for r in rows for k in keys], default=0.0)
    right.set_xlim(-1.15 * largest or -1, 1.15 * largest or 1)
    right.axvline(0, color="black", linewidth=1)
    right.set_xlabel(r"$\Delta\hat{\mu}$", fontsize=20)
    right.tick_params(axis="y", which="both", left=False, right=False)
    right.set_title(mu_text(table), fontsize=20, loc="right", pad=12)
    if not rows:
        _message(right, "no constrained nuisance parameter")
    handles = [
        Line2D([], [], marker="o", color="black", linestyle="none", label="pull"),
        Patch(facecolor=_UP, alpha=0.85, label=r"$+1\sigma$ post-fit impact"),
        Patch(facecolor=_DOWN, alpha=0.85, label=r"$-1\sigma$ post-fit impact"),
        Patch(facecolor="none", edgecolor=_UP, linewidth=1.5, label=r"$+1\sigma$ pre-fit"),
        Patch(facecolor="none", edgecolor=_DOWN, linewidth=1.5, label=r"$-1\sigma$ pre-fit"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=5, fontsize=13, frameon=False)
    if label:
        mh.cms.label(label, data=True, ax=left, rlabel="", fontsize=20)
    return fig


def correlation_figure(table: Mapping[str, Any], label: str = "") -> Figure:
    """The best fit's correlation matrix of the correlated parameters (the table's
    ``correlations``: pruned as ``cabinetry.visualize.correlation_matrix`` does), each
    entry written in its cell."""
    corr = table["correlations"]
    names, matrix = corr["names"], np.asarray(corr["matrix"], dtype=float)
    n = len(names)
    plt.style.use(mh.style.CMS)
    side = max(7.0, 0.65 * n + 4)
    fig, ax = plt.subplots(figsize=(side + 1.5, side), layout="constrained")
    image = ax.imshow(matrix, vmin=-1, vmax=1, cmap="RdBu_r", aspect="auto")
    bar = fig.colorbar(image, ax=ax, pad=0.02)
    bar.set_label(r"correlation $\rho$", fontsize=18)
    bar.ax.tick_params(labelsize=14)
    ax.set_xticks(np.arange(n), names, rotation=45, ha="right", fontsize=14)
    ax.set_yticks(np.arange(n), names, fontsize=14)
    ax.tick_params(which="minor", length=0)
    size = 14 if n <= 10 else 11
    for (j, i), rho in np.ndenumerate(matrix):
        ax.text(i, j, number(rho, ".2f"), ha="center", va="center", fontsize=size,
                color="white" if abs(rho) > 0.6 else "black")  # fmt: skip
    ax.set_xlabel(f"parameters with |ρ| ≥ {number(corr['threshold'], 'g')} to another "
                  f"({corr['pruned']} others left out)", fontsize=15)  # fmt: skip
    if label:
        mh.cms.label(label, data=True, ax=ax, rlabel="", fontsize=20)
    return fig


def scan_figure(table: Mapping[str, Any], label: str = "", rlabel: str = "") -> Figure:
    """-2 Delta ln L of the signal strength (profiled: each point a fit), the 68.3% and 95%
    thresholds and the crossings there, and the parabola of the HESSE error for
    comparison."""
    scan = table["likelihood_scan"]
    plt.style.use(mh.style.CMS)
    fig, ax = plt.subplots(figsize=(10, 8))
    if scan.get("failed"):
        _message(ax, "likelihood scan failed:\nsee the warnings of fit.md")
        return fig
    mus, values = np.asarray(scan["mu"]), np.asarray(scan["twice_delta_nll"])
    mu, error = table["mu"], table["mu_error"]
    grid = np.linspace(mus[0], mus[-1], 200)
    ax.plot(grid, ((grid - mu) / error) ** 2, "--", color=_DOWN, linewidth=2,
            label="parabola of the HESSE error")  # fmt: skip
    ax.plot(mus, values, "o-", color="black", linewidth=2.5, markersize=4,
            label="profile likelihood (fits)")  # fmt: skip
    top = 1.3 * max(values.max(), 4.5)
    for interval, text in zip(scan["intervals"], ("68.3% CL", "95% CL"), strict=True):
        threshold = interval["threshold"]
        ax.axhline(threshold, color="grey", linewidth=1.5, linestyle=":")
        ax.text(mu, threshold, text, ha="center", va="bottom", color="grey", fontsize=16)
        for end in (interval["low"], interval["high"]):
            if end is not None:
                ax.plot([end, end], [0, threshold], color=_UP, linewidth=1.5)
    ax.plot([], [], color=_UP, linewidth=1.5, label="crossings (fit.md)")
    ax.set_xlim(mus[0], mus[-1])
    ax.set_ylim(0, top)
    ax.set_xlabel(r"signal strength $\mu$")
    ax.set_ylabel(r"$-2\,\Delta\ln L$")
    ax.legend(loc="upper center", fontsize=15, title=mu_text(table), title_fontsize=17)
    if label:
        cms_label(ax, label, rlabel, data=True)
    return fig


def cls_figure(table: Mapping[str, Any], label: str = "", rlabel: str = "") -> Figure:
    """Observed and expected CLs (median, +-1 and +-2 sigma bands) against the signal
    strength, the level (e.g. 0.05) and the limits where the curves cross it."""
    cls, limit = table["cls_scan"], table["upper_limit"]
    plt.style.use(mh.style.CMS)
    fig, ax = plt.subplots(figsize=(10, 8))
    if "mu" not in cls:
        why = ("no background expected in " + ", ".join(table["no_background"])
               if table["no_background"] else "see the warnings of fit.md")  # fmt: skip
        _message(ax, f"no CLs scan:\n{why}")
        return fig
    mus, expected = np.asarray(cls["mu"]), cls["expected"]
    ax.fill_between(mus, expected["-2"], expected["+2"], color=_BAND_2, linewidth=0,
                    label=r"expected $\pm 2\sigma$")  # fmt: skip
    ax.fill_between(mus, expected["-1"], expected["+1"], color=_BAND_1, linewidth=0,
                    label=r"expected $\pm 1\sigma$")  # fmt: skip
    ax.plot(mus, expected["0"], "--", color="black", linewidth=2, label="expected (median)")
    ax.plot(mus, cls["observed"], "o-", color="black", linewidth=2, markersize=5,
            label="observed")  # fmt: skip
    level = cls["level"]
    ax.axhline(level, color=_UP, linewidth=2, label=f"CLs = {number(level, 'g')}")
    for value, style in ((limit["observed"], "-"), (limit["expected"][0], "--")):
        ax.plot([value, value], [0, level], linestyle=style, color=_UP, linewidth=1.5)
    if cls.get("log"):
        ax.set_xscale("log")
    ax.set_xlim(mus[0], mus[-1])
    ax.set_ylim(0, 1.05)
    ax.set_xlabel(r"signal strength $\mu$")
    ax.set_ylabel(r"CL$_s$")
    cl = f"{100 * (1 - level):g}%"
    title = (f"{cl} CL upper limit: observed {number(limit['observed'], '.3f')}, "
             f"expected {number(limit['expected'][0], '.3f')}")  # fmt: skip
    ax.legend(loc="upper right", fontsize=15, title=title, title_fontsize=14)
    if label:
        cms_label(ax, label, rlabel, data=True)
    return fig


def channel_figure(
    shape: Mapping[str, Any],
    stage: str,
    edges: np.ndarray,
    *,
    styles: Mapping[str, Mapping[str, str]],
    title: str,
    xlabel: str,
    rlabel: str,
    label: str,
    hidden: np.ndarray | None,
) -> Figure:
    """One channel's ``stage`` (``prefit`` or ``postfit``) yields stacked per sample, their
    uncertainty band, and the data with Garwood errors and a ratio panel with arrows for
    points outside it (bins in ``hidden`` left out; None: no data shown, and no ratio
    panel), drawn as the data/MC plots are (:func:`brewflow.outputs.plots.data_mc_figure`:
    the y title's unit, per-width contents for variable bins, the legend and text where they
    cover nothing)."""
    yields, band = shape[stage]["yields"], shape[stage]["band"]
    total = yields.sum(0)
    order = np.argsort(yields.sum(1))
    centers = (edges[:-1] + edges[1:]) / 2
    ytitle, per_width = events_title(edges, xlabel)
    widths = np.diff(edges) if per_width else np.ones(len(centers))
    fig, ax, rax = frame(ratio=hidden is not None)
    samples = [shape["samples"][i] for i in order]
    stack = mh.histplot([yields[i] / widths for i in order], edges, ax=ax, stack=True,
                        histtype="fill", flow="none",
                        label=[styles.get(s, {}).get("label", s) for s in samples],
                        color=[styles.get(s, {}).get("color") for s in samples])  # fmt: skip
    what = "Post-fit" if stage == "postfit" else "Pre-fit"
    unc = band_stairs(ax, edges, (total - band) / widths, (total + band) / widths,
                      label=f"{what} unc.")  # fmt: skip
    handles = [*(a.stairs for a in stack), unc]
    tops = (total + band) / widths
    if hidden is not None:
        counts = np.where(hidden, np.nan, shape["data"])
        handle, data_tops = points.data_points(ax, centers, counts, widths)
        tops = np.fmax(tops, data_tops)
        handles = [handle, *handles]
        points.ratio_points(rax, centers, counts, total, (0.5, 1.5))
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(total > 0, band / total, 0.0)
        band_stairs(rax, edges, 1 - rel, 1 + rel)
        rax.axhline(1.0, color="black", linewidth=1, linestyle="--")
        rax.set_ylim(0.5, 1.5)
        rax.set_ylabel("Data / pred.")
        rax.set_xlabel(xlabel)
        ax.set_xlabel("")
    else:
        ax.set_xlabel(xlabel)
    ax.set_xlim(edges[0], edges[-1])
    ax.set_ylabel(ytitle)
    notes = [title, what] + ([] if hidden is not None else ["Data blinded"])
    layout.annotate(ax, handles, [h.get_label() for h in handles], notes, edges, tops,
                    bottom=0.0)  # fmt: skip
    cms_label(ax, label, rlabel, data=True)
    return fig
