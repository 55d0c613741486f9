"""The fit's outputs: the results table (JSON, Markdown, LaTeX), the pull and impact plots,
and the pre- and post-fit plots of every channel, of the numbers :mod:`brewflow.outputs.likelihood`
finds for a histogram's workspace (``brewflow fit``, the workflow's ``fit`` rules).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import mplhep as mh
import numpy as np
from tabulate import tabulate

from brewflow.config import blind_windows, channel_blinding, fit_channels
from brewflow.errors import InputError
from brewflow.files import atomic_write
from brewflow.outputs.likelihood import FitFailed, fit_workspace
from brewflow.outputs.plots import (
    blinded_bins,
    cms_label,
    lumi_label,
    process_styles,
    region_title,
    save_figure,
)
from brewflow.results import provenance

__all__ = ["channel_plot", "fit_job", "impact_plot", "pull_plot"]

log = logging.getLogger(__name__)


def _number(value: float | None, form: str, unit: str = "", failed: bool = False) -> str:
    if value is None:
        return "failed (see the warnings)" if failed else "undefined"
    return f"{value:{form}}{unit}"


def _summary_rows(table: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(label, Markdown, LaTeX) of the headline numbers."""
    limit, z = table["upper_limit"], table["significance"]
    cl = f"{100 * (1 - limit['level']):g}"
    exp = limit["expected"]
    z_failed, limit_failed = bool(z.get("failed")), bool(limit.get("failed"))
    band = _number(None, "", failed=limit_failed)
    rows = [
        ("signal strength", f"{table['mu']:.4f} ± {table['mu_error']:.4f}",
         rf"${table['mu']:.4f} \pm {table['mu_error']:.4f}$"),
        ("observed significance", _number(z["observed"], ".2f", " σ", z_failed),
         _number(z["observed"], ".2f", r"$\,\sigma$", z_failed)),
        ("expected significance", _number(z["expected"], ".2f", " σ", z_failed),
         _number(z["expected"], ".2f", r"$\,\sigma$", z_failed)),
        (f"observed CLs upper limit ({cl}% CL)",
         _number(limit["observed"], ".3f", "", limit_failed),
         _number(limit["observed"], ".3f", "", limit_failed)),
        ("expected upper limit (median [-1σ, +1σ])",
         band if exp is None else f"{exp[0]:.3f} [{exp[2]:.3f}, {exp[3]:.3f}]",
         band if exp is None else
         rf"${exp[0]:.3f}^{{+{exp[3] - exp[0]:.3f}}}_{{-{exp[0] - exp[2]:.3f}}}$"),
    ]  # fmt: skip
    return rows


def _shift(value: float | None) -> str:
    return "failed" if value is None else f"{value:+.4f}"


def _markdown(table: Mapping[str, Any]) -> str:
    rows = [[label, text] for label, text, _ in _summary_rows(table)]
    blinded = table["blinded_channels"]
    where = [*blinded, *(f"bins {', '.join(map(str, bins))} of {name}"
                         for name, bins in table.get("blinded_bins", {}).items())]  # fmt: skip
    rows.append(["data", table["data"] + (f" (Asimov in {'; '.join(where)})" if where else "")])
    text = "# Fit results\n\n"
    text += "".join(f"> **Warning:** {warning}\n>\n" for warning in table.get("warnings", ()))
    text += "\n" if table.get("warnings") else ""
    text += tabulate(rows, headers=["", ""], tablefmt="github") + "\n"
    if table["no_background"]:
        text += ("\nNo background is expected in " + ", ".join(table["no_background"])
                 + ": the background-only hypothesis has zero likelihood there, so no "
                 "significance or limit exists.\n")  # fmt: skip
    if table["impacts"]:
        impact_rows = [
            [r["name"], _shift(r["postfit_up"]), _shift(r["postfit_down"]),
             _shift(r["prefit_up"]), _shift(r["prefit_down"])]
            for r in table["impacts"]
        ]  # fmt: skip
        headers = ["nuisance", "Δμ post-fit +", "Δμ post-fit -", "Δμ pre-fit +", "Δμ pre-fit -"]
        text += "\n## Impacts\n\n" + tabulate(impact_rows, headers=headers, tablefmt="github")
        text += "\n"
    if table["pulls"]:
        pull_rows = [[p["name"], f"{p['pull']:+.3f}", f"{p['constraint']:.3f}"]
                     for p in table["pulls"]]  # fmt: skip
        text += "\n## Pulls\n\n" + tabulate(
            pull_rows, headers=["nuisance", "pull", "constraint"], tablefmt="github"
        )
        text += "\n"
    return text


def _latex_label(label: str) -> str:
    return label.replace("%", "\\%").replace("σ", "$\\sigma$")


def _latex_text(text: str) -> str:
    """``text`` with LaTeX's special characters escaped."""
    special = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
               "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
               "^": r"\textasciicircum{}"}  # fmt: skip
    return "".join(special.get(c, c) for c in text)


def _latex(table: Mapping[str, Any]) -> str:
    body = [f"{_latex_label(label)} & {tex} \\\\" for label, _, tex in _summary_rows(table)]
    warnings = [rf"\par\noindent\textbf{{Warning:}} {_latex_text(w)}\par"
                for w in table.get("warnings", ())]  # fmt: skip
    lines = [r"\begin{table}", r"\centering", r"\caption{Fit results}", *warnings,
             r"\begin{tabular}{lr}", r"\toprule", *body, r"\bottomrule", r"\end{tabular}",
             r"\end{table}"]  # fmt: skip
    return "\n".join(lines) + "\n"


def pull_plot(table: Mapping[str, Any], outputs: Sequence[Path], stamp: str) -> None:
    """Nuisance pulls (best fit) with their post-fit constraints, against the +-1 and +-2
    sigma bands of the prior."""
    pulls = table["pulls"]
    plt.style.use(mh.style.CMS)
    fig, ax = plt.subplots(figsize=(8, max(4.0, 0.45 * len(pulls) + 2)))
    y = np.arange(len(pulls))[::-1]
    ax.axvspan(-2, 2, color="#ffe27a", linewidth=0)
    ax.axvspan(-1, 1, color="#a5e1a5", linewidth=0)
    ax.axvline(0, color="black", linewidth=1, linestyle="--")
    ax.errorbar([p["pull"] for p in pulls], y, xerr=[p["constraint"] for p in pulls],
                fmt="o", color="black")  # fmt: skip
    ax.set_yticks(y, [p["name"] for p in pulls], fontsize=14)
    ax.set_xlim(-3, 3)
    ax.set_ylim(-1, len(pulls))
    ax.set_xlabel(r"$(\hat{\theta} - \theta_0) / \Delta\theta$")
    fig.tight_layout()
    save_figure(fig, outputs, stamp)


def impact_plot(table: Mapping[str, Any], outputs: Sequence[Path], stamp: str) -> None:
    """The change of the signal strength per nuisance, largest first: pre-fit (open) and
    post-fit (filled) shifts up and down (a refit that failed: no bar, "(failed)")."""
    rows = table["impacts"]
    plt.style.use(mh.style.CMS)
    fig, ax = plt.subplots(figsize=(9, max(4.0, 0.5 * len(rows) + 2)))
    y = np.arange(len(rows))[::-1]
    for key, filled in (("prefit", False), ("postfit", True)):
        for sign, color in (("up", "#e42536"), ("down", "#5790fc")):
            shifts = [r[f"{key}_{sign}"] or 0.0 for r in rows]
            label = f"{key.replace('fit', '-fit')} {'+' if sign == 'up' else '-'}1σ"
            ax.barh(y, shifts, height=0.6, fill=filled, alpha=0.8 if filled else 1.0,
                    facecolor=color, edgecolor=color, linewidth=1.5, label=label)  # fmt: skip
    ax.axvline(0, color="black", linewidth=1)
    names = [r["name"] + (" (failed)" if r.get("failed") else "") for r in rows]
    ax.set_yticks(y, names, fontsize=14)
    ax.set_ylim(-1, max(len(rows), 1))
    ax.set_xlabel(r"$\Delta\hat{\mu}$")
    ax.legend(fontsize=12, loc="lower right")
    ax.set_title(rf"$\hat{{\mu}} = {table['mu']:.3f} \pm {table['mu_error']:.3f}$", fontsize=16)
    fig.tight_layout()
    save_figure(fig, outputs, stamp)


def channel_plot(
    shape: Mapping[str, Any],
    stage: str,
    edges: np.ndarray,
    outputs: Sequence[Path],
    stamp: str,
    *,
    styles: Mapping[str, Mapping[str, str]],
    title: str,
    xlabel: str,
    rlabel: str,
    label: str,
    hidden: np.ndarray | None,
) -> None:
    """One channel's ``stage`` (``prefit`` or ``postfit``) yields stacked per sample, their
    uncertainty band, and the data (bins in ``hidden`` left out; None: no data shown)."""
    yields, band = shape[stage]["yields"], shape[stage]["band"]
    total = yields.sum(0)
    order = np.argsort(yields.sum(1))
    plt.style.use(mh.style.CMS)
    fig, (ax, rax) = plt.subplots(
        2, 1, figsize=(10, 10), gridspec_kw={"height_ratios": (3, 1)}, sharex=True
    )
    fig.subplots_adjust(hspace=0.07)
    samples = [shape["samples"][i] for i in order]
    mh.histplot([yields[i] for i in order], edges, ax=ax, stack=True, histtype="fill",
                label=[styles.get(s, {}).get("label", s) for s in samples],
                color=[styles.get(s, {}).get("color") for s in samples])  # fmt: skip
    what = "Post-fit" if stage == "postfit" else "Pre-fit"
    ax.stairs(total + band, edges, baseline=total - band, fill=True, hatch="////",
              facecolor="none", edgecolor="grey", linewidth=0, label=f"{what} unc.")  # fmt: skip
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(total > 0, band / total, 0.0)
    rax.stairs(1 + rel, edges, baseline=1 - rel, fill=True, hatch="////", facecolor="none",
               edgecolor="grey", linewidth=0)  # fmt: skip
    rax.axhline(1.0, color="black", linewidth=1, linestyle="--")
    top = np.max(total + band, initial=0)
    if hidden is not None:
        counts = np.where(hidden, np.nan, shape["data"])
        centers = (edges[:-1] + edges[1:]) / 2
        ax.errorbar(centers, counts, yerr=np.sqrt(counts), fmt="o", color="black",
                    label="Data")  # fmt: skip
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(total > 0, counts / total, np.nan)
            ratio_err = np.where(total > 0, np.sqrt(counts) / total, np.nan)
        rax.errorbar(centers, ratio, yerr=ratio_err, fmt="o", color="black", markersize=4)
        top = max(top, np.nanmax(counts, initial=0))
    ax.set_ylim(0, 1.45 * top if top > 0 else 1)
    ax.set_xlim(edges[0], edges[-1])
    rax.set_ylim(0.5, 1.5)
    rax.set_ylabel("Data / pred.")
    rax.set_xlabel(xlabel)
    ax.set_ylabel("Events / bin")
    handles, labels = ax.get_legend_handles_labels()
    notes = [title, what] + ([] if hidden is not None else ["Data blinded"])
    ax.legend(handles[::-1], labels[::-1], title="\n".join(notes), ncol=2, fontsize=16)
    cms_label(ax, label, rlabel, data=True)
    save_figure(fig, outputs, stamp)


def _edges(definition: Mapping[str, Any]) -> np.ndarray:
    if "edges" in definition:
        return np.asarray(definition["edges"], dtype=float)
    return np.linspace(definition["start"], definition["stop"], definition["bins"] + 1)


def fit_job(
    config: Mapping[str, Any], histogram: str, workspace: str | Path, output_dir: str | Path
) -> dict[str, Any]:
    """The fit of ``histogram``'s ``workspace`` (``brewflow shapes``) as the config asks
    (``fit`` block): ``fit.json``, ``fit.md``, ``fit.tex``, the pull and impact plots and
    ``prefit/<channel>`` and ``postfit/<channel>`` plots in ``output_dir``. Returns the
    table."""
    try:
        spec = json.loads(Path(workspace).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"workspace {str(workspace)!r}: cannot read it ({err})") from None
    settings = config.get("fit", {})
    channels = fit_channels(config, histogram)
    blinded = {name for name, region, era in channels
               if channel_blinding(config, histogram, region, era)[0]}  # fmt: skip
    try:
        table, shapes = fit_workspace(
            spec, level=settings.get("cls", 0.05), top=settings.get("impacts", 10),
            asimov=settings.get("asimov", False), blinded=sorted(blinded),
        )  # fmt: skip
    except FitFailed as err:  # the best fit: no result without it
        raise InputError(
            f"workspace {str(workspace)!r}: {err}; check its templates (empty or negative "
            "bins, a systematic without effect)"
        ) from None
    for warning in table["warnings"]:
        log.warning("%s: %s", histogram, warning)
    table["histogram"] = histogram
    edges = _edges(config["histograms"][histogram])
    table["blinded_bins"] = {  # a window's bins: the Asimov there (brewflow.outputs.fit_inputs)
        name: [int(i) for i in np.flatnonzero(blinded_bins(edges, window))]
        for name, region, era in channels
        if name not in blinded and (window := channel_blinding(config, histogram, region, era)[1])
    }
    log.info("%s: mu = %.4f +- %.4f, Z = %s (expected %s)", histogram, table["mu"],
             table["mu_error"], table["significance"]["observed"],
             table["significance"]["expected"])  # fmt: skip
    out = Path(output_dir)
    stamp = provenance.to_text({"workspace": provenance.file_hash(workspace),
                                "config": provenance.config_hash(config)})  # fmt: skip
    atomic_write(out / "fit.json", json.dumps(table, indent=1, sort_keys=True) + "\n")
    atomic_write(out / "fit.md", _markdown(table) + f"\n<!-- {provenance.MARK}: {stamp} -->\n")
    atomic_write(out / "fit.tex", _latex(table) + f"% {provenance.MARK}: {stamp}\n")
    formats = config["plots"]["formats"]
    pull_plot(table, [out / f"pulls.{ext}" for ext in formats], stamp)
    impact_plot(table, [out / f"impacts.{ext}" for ext in formats], stamp)
    styles = process_styles(config)
    definition = config["histograms"][histogram]
    edges = _edges(definition)
    for name, region, era in channels:
        title = region_title(config, region, era)
        window = blind_windows(config, region).get(histogram)
        hidden = (
            None if name in blinded or table["data"] == "asimov" else blinded_bins(edges, window)
        )
        for stage in ("prefit", "postfit"):
            channel_plot(
                shapes[name], stage, edges, [out / stage / f"{name}.{ext}" for ext in formats],
                stamp, styles=styles, title=title, xlabel=definition.get("label", histogram),
                rlabel=lumi_label(config, era), label=config["plots"]["label"], hidden=hidden,
            )  # fmt: skip
    return table
