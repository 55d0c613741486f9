"""The fit's outputs of a histogram's workspace (``brewflow fit``, the workflow's ``fit``
rules): the results table (``fit.json``, ``fit.md``, ``fit.tex``: :mod:`brewflow.outputs.fit_text`),
and the figures (:mod:`brewflow.outputs.fit_plots`): pulls, impacts, correlations, the
likelihood scan, the CLs scan, and the pre- and post-fit yields of every channel, of the
numbers :mod:`brewflow.outputs.likelihood` finds. The data of a blinded channel or bin
show in none of them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from brewflow.config import channel_blinding, fit_channels
from brewflow.errors import InputError
from brewflow.files import atomic_write
from brewflow.outputs import fit_plots, fit_text
from brewflow.outputs.distribution import blinded_bins, histogram_edges
from brewflow.outputs.likelihood import FitFailed, fit_workspace
from brewflow.outputs.plots import (
    lumi_label,
    process_styles,
    region_title,
    save_figure,
)
from brewflow.results import provenance

__all__ = ["FIGURES", "fit_job"]

log = logging.getLogger(__name__)

FIGURES = ("pulls", "impacts", "correlations", "scan", "cls")
"""The fit's figures besides the channels' (``prefit/<channel>``, ``postfit/<channel>``):
pulls, impacts (combine's layout), the correlation matrix, the likelihood scan, the CLs
scan."""


def _data_yields(
    table: Mapping[str, Any], shape: Mapping[str, Any], hidden: np.ndarray | None
) -> dict[str, Any]:
    """A channel's observations for the yields table, per bin and summed (``asimov``: the
    fit's Asimov dataset, the config's ``fit.asimov``); none where the channel is blinded
    (``hidden`` None: its observations are the Asimov dataset) and no sum where a window
    blinds some bins (``hidden``), those bins None."""
    counts = np.asarray(shape["data"], dtype=float)
    if table["data"] == "asimov":
        return {"blinded": None, "bins": counts.tolist(), "sum": float(counts.sum()),
                "asimov": True}  # fmt: skip
    if hidden is None:
        return {"blinded": "channel", "bins": None, "sum": None}
    if hidden.any():
        bins = [None if h else float(c) for c, h in zip(counts, hidden, strict=True)]
        return {"blinded": [int(i) for i in np.flatnonzero(hidden)], "bins": bins, "sum": None}
    return {"blinded": None, "bins": counts.tolist(), "sum": float(counts.sum())}


def fit_job(
    config: Mapping[str, Any], histogram: str, workspace: str | Path, output_dir: str | Path
) -> dict[str, Any]:
    """The fit of ``histogram``'s ``workspace`` (``brewflow shapes``) as the config asks
    (``fit`` block): ``fit.json``, ``fit.md``, ``fit.tex``, the figures of :data:`FIGURES`
    and ``prefit/<channel>`` and ``postfit/<channel>`` plots in ``output_dir``. Returns the
    table."""
    try:
        spec = json.loads(Path(workspace).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"workspace {str(workspace)!r}: cannot read it ({err})") from None
    settings = config.get("fit", {})
    channels = fit_channels(config, histogram)
    blinding = {name: channel_blinding(config, histogram, region, era)
                for name, region, era in channels}  # fmt: skip
    blinded = sorted(name for name, (asimov, _) in blinding.items() if asimov)
    try:
        table, shapes = fit_workspace(
            spec, level=settings.get("cls", 0.05), top=settings.get("impacts", 10),
            asimov=settings.get("asimov", False), blinded=blinded,
        )  # fmt: skip
    except FitFailed as err:  # the best fit: no result without it
        raise InputError(
            f"workspace {str(workspace)!r}: {err}; check its templates (empty or negative "
            "bins, a systematic without effect)"
        ) from None
    for warning in table["warnings"]:
        log.warning("%s: %s", histogram, warning)
    table["histogram"] = histogram
    definition = config["histograms"][histogram]
    edges = histogram_edges(definition)
    hidden = {  # per channel the bins whose data must not show; None: the whole channel
        name: None if asimov else blinded_bins(edges, window)
        for name, (asimov, window) in blinding.items()
    }
    table["blinded_bins"] = {  # a window's bins: the Asimov there (brewflow.outputs.fit_inputs)
        name: [int(i) for i in np.flatnonzero(bins)]
        for name, bins in hidden.items() if bins is not None and bins.any()
    }  # fmt: skip
    for name in table["channels"]:
        table["yields"][name]["data"] = _data_yields(table, shapes[name], hidden.get(name))
    log.info("%s: mu = %.4f +- %.4f, Z = %s (expected %s)", histogram, table["mu"],
             table["mu_error"], table["significance"]["observed"],
             table["significance"]["expected"])  # fmt: skip
    out = Path(output_dir)
    stamp = provenance.to_text({"workspace": provenance.file_hash(workspace),
                                "config": provenance.config_hash(config)})  # fmt: skip
    atomic_write(out / "fit.json", json.dumps(table, indent=1, sort_keys=True) + "\n")
    markdown = fit_text.markdown(table) + f"\n<!-- {provenance.MARK}: {stamp} -->\n"
    atomic_write(out / "fit.md", markdown)
    atomic_write(out / "fit.tex", fit_text.latex(table) + f"% {provenance.MARK}: {stamp}\n")
    formats = config["plots"]["formats"]
    label, rlabel = config["plots"]["label"], lumi_label(config)
    figures = {
        "pulls": lambda: fit_plots.pull_figure(table, label, rlabel),
        "impacts": lambda: fit_plots.impact_figure(table, label),
        "correlations": lambda: fit_plots.correlation_figure(table, label),
        "scan": lambda: fit_plots.scan_figure(table, label, rlabel),
        "cls": lambda: fit_plots.cls_figure(table, label, rlabel),
    }
    for name in FIGURES:
        save_figure(figures[name](), [out / f"{name}.{ext}" for ext in formats], stamp)
    styles = process_styles(config)
    for name, region, era in channels:
        shown = None if table["data"] == "asimov" else hidden[name]
        for stage in ("prefit", "postfit"):
            figure = fit_plots.channel_figure(
                shapes[name], stage, edges, styles=styles, title=region_title(config, region, era),
                xlabel=definition.get("label", histogram), rlabel=lumi_label(config, era),
                label=label, hidden=shown,
            )  # fmt: skip
            save_figure(figure, [out / stage / f"{name}.{ext}" for ext in formats], stamp)
    return table
