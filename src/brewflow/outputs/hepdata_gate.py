"""The HEPData record's own data gate: what it reads (the plots' numbers, the cutflow CSVs,
``fit.json``, ``limits.json``) passed the jobs' gate when made; the record applies the config's
:class:`~brewflow.config.blinding.Blinding` again, so a record made with a config that blinds
more shows none of it: data taken out where they can be (a blinded region's plots and cutflows,
a window's bins, a blinded fit channel's counts, a blinded search's observed limits), the output
refused, named, where they cannot (a fit that saw them, a plot drawn leaving out other windows).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from brewflow.config import channel_blinding, fit_channels
from brewflow.config.blinding import Blinding
from brewflow.config.records import RecordTable
from brewflow.errors import InputError
from brewflow.outputs.distribution import Distribution, blinded_bins, histogram_edges

__all__ = ["blinded_channels", "gated_cutflow", "gated_distribution", "gated_fit", "gated_limits"]


def gated_distribution(
    config: Mapping[str, Any], entry: RecordTable, dist: Distribution
) -> Distribution:
    """``dist`` with the data the config blinds taken out, whatever the file held: none in a
    blinded region, none in the bins of the window the figure shows (the record's own gate,
    as the plot job's)."""
    p = entry.params
    blinding = Blinding.of(config)
    if blinding.is_blind(p["region"]):
        return replace(dist, data=None, data_low=None, data_high=None, events=None, blind=True)
    left_out = blinding.left_out(p["region"], p["histogram"])
    if dist.data is not None and left_out != dist.left_out:  # cannot be undone here
        raise InputError(
            f"HEPData record: {entry.key!r} was drawn with its data leaving out "
            f"{dist.left_out or 'nothing'}, the config leaves out {left_out or 'nothing'}: "
            "rerun its plot job (snakemake reruns it)"
        )
    variable = config["histograms"][p["histogram"]]["variable"]
    window = blinding.drawn_window(p["histogram"], variable, p["region"])
    if window is None or dist.data is None:
        return dist
    hidden = blinded_bins(dist.edges, (window.low, window.high))

    def masked(values: np.ndarray | None) -> np.ndarray | None:
        return None if values is None else np.where(hidden, np.nan, values)

    return replace(dist, data=masked(dist.data), data_low=masked(dist.data_low),
                   data_high=masked(dist.data_high), events=masked(dist.events),
                   window=(window.low, window.high))  # fmt: skip


def blinded_channels(config: Mapping[str, Any], histogram: str) -> list[str]:
    """The channels of ``histogram``'s fit whose data the config blinds, whole or in part."""
    edges = histogram_edges(config["histograms"][histogram])
    out = []
    for name, region, era in fit_channels(config, histogram):
        asimov, window = channel_blinding(config, histogram, region, era)
        if asimov or (window is not None and blinded_bins(edges, window).any()):
            out.append(name)
    return out


def gated_fit(config: Mapping[str, Any], histogram: str, fit: Mapping[str, Any]) -> Any:
    """``fit`` with no observed count in a channel the config blinds (its sum: none); a fit
    that saw data the config now blinds is refused (its results hold them)."""
    if fit["data"] == "asimov":  # the Asimov dataset everywhere: no data shown
        return fit
    blinded = blinded_channels(config, histogram)
    seen = [c for c in blinded if c not in fit.get("blinded_channels", [])
            and c not in fit.get("blinded_bins", {})]  # fmt: skip
    if seen:
        raise InputError(
            f"HEPData record: the fit of {histogram!r} saw the data of channel {seen[0]!r}, "
            "which the config blinds: rerun the fit (snakemake reruns it)"
        )
    gated = copy.deepcopy(dict(fit))
    for name in blinded:
        if name in gated["yields"]:
            gated["yields"][name]["data"] = {"sum": None, "bins": None, "blinded": "channel"}
    return gated


def gated_limits(config: Mapping[str, Any], histogram: str, limits: Mapping[str, Any]) -> Any:
    """``limits`` with no observed limit while a channel of the search is blinded."""
    if not blinded_channels(config, histogram) and not limits["blinded"]:
        return limits
    gated = copy.deepcopy(dict(limits))
    gated["blinded"] = gated["blinded"] or True
    for point in gated["points"]:
        point["observed"] = point["xsec_observed"] = None
    return gated


def gated_cutflow(config: Mapping[str, Any], region: str, tidy: pd.DataFrame) -> pd.DataFrame:
    """A cutflow's tidy rows without data where the config gives the region no data cutflow
    (blinded, or with a window), whatever the file held."""
    if Blinding.of(config).hides_cutflow(region):
        return tidy[~tidy.is_data.astype(bool)]
    return tidy
