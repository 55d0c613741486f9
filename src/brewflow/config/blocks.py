"""The CMS building blocks in the config (``met_filters``, ``theory``; applied by
:mod:`brewflow.jobs.blocks`): which apply to a dataset, and their checks. Standard library only:
the Snakefile imports the config package."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from brewflow.config.model import era_of, era_settings, eras
from brewflow.errors import ConfigError

__all__ = ["check_blocks", "met_filters_of", "theory_applies"]

log = logging.getLogger(__name__)


def met_filters_of(config: Mapping, dataset: str) -> Any:
    """The MET filters of ``dataset``'s era (a recommendation's name or a list of flags; the
    era's ``met_filters``, else the top-level one), or None without."""
    return era_settings(config, era_of(config, dataset)).get("met_filters")


def theory_applies(config: Mapping, dataset: str) -> bool:
    """Whether the ``theory`` block's weights are added to ``dataset``'s events: an MC
    dataset, named (or its process) in ``theory.datasets`` when given."""
    block, spec = config.get("theory"), config["datasets"][dataset]
    if not block or spec["is_data"]:
        return False
    chosen = block.get("datasets")
    return chosen is None or dataset in chosen or spec.get("process", dataset) in chosen


def _event_veto_map(config: Mapping, era: str | None) -> bool:
    """Whether ``era``'s jets have a veto map that vetoes events (the cut ``jet_veto``)."""
    veto_map = (era_settings(config, era).get("jets") or {}).get("veto_map")
    return veto_map is not None and veto_map.get("mode", "event") == "event"


def check_blocks(config: Mapping) -> None:
    """The CMS blocks (brewflow.jobs.blocks): the cut ``met_filters`` listed by a region needs
    MET filters in every era (the top-level ones, or each era's), and MET filters need a
    region to list it; the cuts ``jet_veto`` and ``hem_veto`` need their block in an era, and
    the blocks a region listing them; ``theory.datasets`` names MC datasets or processes."""
    listed = [name for name, region in config["regions"].items()
              if "met_filters" in region["cuts"]]  # fmt: skip
    scopes: list[str | None] = list(eras(config)) or [None]
    missing = [era or "(the top level)" for era in scopes
               if era_settings(config, era).get("met_filters") is None]  # fmt: skip
    if listed and missing:
        raise ConfigError(
            f"config key 'regions.{listed[0]}.cuts': the cut 'met_filters' needs MET filters "
            f"for every era, and {missing[0]} has none: add met_filters (e.g. run2_ul_2018) "
            "at the top level or to that era"
        )
    if not listed and len(missing) < len(scopes):
        raise ConfigError(
            "config key 'met_filters': MET filters are configured but no region lists the cut "
            "'met_filters'; add it to the regions' cuts (first: cuts: [met_filters, ...])"
        )
    if listed and len(listed) < len(config["regions"]):
        log.warning("regions %s do not list the cut 'met_filters': their events are not filtered",
                    ", ".join(n for n in config["regions"] if n not in listed))  # fmt: skip
    hem = [era for era in scopes if era_settings(config, era).get("hem_veto")]  # false: off
    maps = [era for era in scopes if (era_settings(config, era).get("jets") or {}).get("veto_map")]
    for cut, key, configured in (
        ("jet_veto", "jets.veto_map", [era for era in scopes if _event_veto_map(config, era)]),
        ("hem_veto", "hem_veto", hem),
    ):
        listing = [name for name, region in config["regions"].items() if cut in region["cuts"]]
        if listing and not configured:
            jet_mode = "; the veto maps here are in jet mode, which removes jets and makes no "
            jet_mode += "cut: remove the cut or set mode: event"
            raise ConfigError(
                f"config key 'regions.{listing[0]}.cuts': the cut {cut!r} needs {key} in an era "
                "(or at the top level)" + (jet_mode if cut == "jet_veto" and maps else "")
            )
        if configured and not listing:
            raise ConfigError(
                f"config key {key!r}: it makes the cut {cut!r}, which no region lists; add it to "
                f"the regions' cuts (cuts: [{cut}, ...])"
            )
    theory = config.get("theory") or {}
    mc = {n for n, d in config["datasets"].items() if not d["is_data"]}
    names = {*mc, *(config["datasets"][n].get("process", n) for n in mc)}
    for key, chosen in (
        ("theory.datasets", theory.get("datasets", [])),
        ("theory.top_pt.datasets", (theory.get("top_pt") or {}).get("datasets", [])),
    ):
        for name in chosen:
            if name not in names:
                raise ConfigError(
                    f"config key {key!r}: no MC dataset or process {name!r} (data never get "
                    "theory weights)"
                )
