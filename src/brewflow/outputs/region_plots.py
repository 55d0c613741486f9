"""The plot job of one region (``brewflow plot``, the workflow's ``plot`` rules): every
histogram filled there as a data/MC plot (:mod:`brewflow.outputs.plots`) and, for the
combination, its per-systematic pages (:mod:`brewflow.outputs.systematics_pages`), as the
config's blinding and searches ask."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from brewflow.config import hypotheses, nuisance_description
from brewflow.config.blinding import Blinding
from brewflow.errors import ConfigError
from brewflow.outputs.distribution import distribution, write_distribution
from brewflow.outputs.plots import draw, lumi_label, process_styles, region_title, save_figure
from brewflow.outputs.systematics_pages import systematics_pdf
from brewflow.results import provenance
from brewflow.results.arithmetic import variation_names
from brewflow.results.model import Result

__all__ = ["plot_region"]


def plot_region(
    config: Mapping, inputs: Sequence[Result], region: str, output_dir: str | Path,
    histogram: str | None = None, era: str | None = None,
) -> None:  # fmt: skip
    """Every histogram filled in ``region`` (or only ``histogram``) as data/MC plots in the
    configured formats with the numbers they draw (``<histogram>.json``:
    :class:`~brewflow.outputs.distribution.Distribution`), and (config ``plots.systematics``,
    the combination) one PDF of its variations; of one ``era``, or of the combination (the
    luminosity label sums the eras). A blinded region or histogram window shows no data."""
    styles = process_styles(config)
    settings = config["plots"]
    title = region_title(config, region, era)
    rlabel = lumi_label(config, era)
    blinding = Blinding.of(config)
    blind = blinding.is_blind(region)
    apart = hypotheses(config)  # a search's signals: drawn as lines, not stacked, in the
    searched = {  # regions of its histogram
        p for search in config.get("searches", {}).values()
        if region in (config["histograms"][search["histogram"]].get("regions")
                      or config["regions"]) for p in search["signals"]
    }  # fmt: skip
    signals = [p for p in inputs if p.process in searched]
    inputs = [p for p in inputs if p.process not in apart]
    for name, definition in config["histograms"].items():
        if histogram not in (None, name):
            continue
        if region not in (definition.get("regions") or config["regions"]):
            if histogram:
                raise ConfigError(f"histogram {name!r} is not filled in region {region!r}")
            continue
        outputs = [Path(output_dir) / f"{name}.{ext}" for ext in settings["formats"]]
        left = None if blind else blinding.left_out(region, name)
        window = blinding.drawn_window(name, definition["variable"], region)
        xlabel = definition.get("label", definition["variable"])
        drawn = distribution(
            inputs,
            name,
            region,
            styles=styles,
            blind=blind,
            xlabel=xlabel,
            window=None if window is None else (window.low, window.high),
            signals=signals,
            title=title,
            left_out=left,
        )
        stamp = provenance.stamp([*inputs, *signals])
        figure = draw(drawn, log_y=definition["log"], ratio_range=settings["ratio_range"],
                      label=settings["label"], rlabel=rlabel)  # fmt: skip
        save_figure(figure, outputs, stamp)
        write_distribution(drawn, Path(output_dir) / f"{name}.json", stamp)
        if settings["systematics"] and era is None:  # of the combination: every nuisance
            names = variation_names(inputs)
            descriptions = {n: nuisance_description(config, n) for n in names}
            systematics_pdf(inputs, name, region, Path(output_dir) / f"{name}_systematics.pdf",
                            descriptions=descriptions, xlabel=xlabel, log_y=definition["log"],
                            luminosity=0.0, rlabel=rlabel, label=settings["label"],
                            region_label=title)  # fmt: skip
