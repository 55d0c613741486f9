"""The config checks of what is fitted: the fit's histograms and blind windows, the searches'
hypotheses and the free normalisations (``shapes.normfactors``). Standard library only, like
the rest of :mod:`brewflow.config`."""

from __future__ import annotations

from collections.abc import Mapping

from brewflow.config.model import hypotheses
from brewflow.errors import ConfigError

__all__ = ["check_fit", "check_searches"]


def check_fit(config: dict) -> None:
    """Blind windows are ranges; the fit's histograms have a workspace (``shapes``)."""
    for name, spec in config["histograms"].items():
        if "blind" in spec and spec["blind"][1] <= spec["blind"][0]:
            raise ConfigError(f"config key 'histograms.{name}.blind': give [low, high], low < high")
    if "fit" not in config:
        return
    shaped = config.get("shapes", {}).get("histograms", [])
    if not shaped:
        raise ConfigError(
            "config key 'fit': the fit reads the pyhf workspace of the 'shapes' block; "
            "configure shapes (histograms, signal)"
        )
    config["fit"].setdefault("histograms", list(shaped))
    for name in config["fit"]["histograms"]:
        if name not in shaped:
            raise ConfigError(
                f"config key 'fit.histograms': {name!r} has no workspace; add it to "
                f"shapes.histograms (has: {', '.join(shaped)})"
            )


def check_searches(config: dict, kinds: Mapping[str, Mapping[bool, str]]) -> None:
    """A search's histogram exists; its signals are MC processes, each of one cross section
    and with a dataset in every era, at masses of their own, none another search's or the
    measurement's signal; normfactors scale background MC processes (not the signal nor a
    hypothesis, one each), under names no other parameter of the fit has."""
    mc = [p for p, k in kinds.items() if True not in k]
    if "total MC" in kinds:  # the cutflow tables' column of the sum
        raise ConfigError("config key 'datasets': 'total MC' is the tables' total; rename "
                          "the process")  # fmt: skip
    shapes = config.get("shapes", {})
    apart = hypotheses(config)
    taken = {"mu", *config["systematics"], *(f"{n}_{e}" for n in config["systematics"]
                                             for e in config.get("eras") or {})}  # fmt: skip
    scaled_by: dict[str, str] = {}
    for name, scaled in shapes.get("normfactors", {}).items():
        key = f"config key 'shapes.normfactors.{name}'"
        if name in taken:
            raise ConfigError(f"{key}: {name!r} is already a parameter of the fit (the signal "
                              "strength mu or a systematic's nuisance); name it apart")  # fmt: skip
        for process in scaled:
            if process not in mc:
                raise ConfigError(
                    f"{key}: {process!r} is not an MC process of the config (MC processes: "
                    f"{', '.join(mc)})"
                )
            if process in shapes.get("signal", []) or process in apart:
                raise ConfigError(f"{key}: {process!r} is a signal (the signal strength scales "
                                  "it); a free normalisation is a background's")  # fmt: skip
            if process in scaled_by:
                raise ConfigError(f"{key}: {process!r} is already scaled by "
                                  f"{scaled_by[process]!r}")  # fmt: skip
            scaled_by[process] = name
    seen: dict[str, str] = {p: "shapes.signal" for p in shapes.get("signal", [])}
    for name, search in config.get("searches", {}).items():
        key = f"searches.{name}"
        if search["histogram"] not in config["histograms"]:
            raise ConfigError(f"config key '{key}.histogram': unknown histogram "
                              f"{search['histogram']!r}")  # fmt: skip
        for process in search["signals"]:
            if process not in mc:
                raise ConfigError(
                    f"config key '{key}.signals': {process!r} is not an MC process of the "
                    f"config (MC processes: {', '.join(mc)})"
                )
            if process in seen:
                raise ConfigError(f"config key '{key}.signals': {process!r} is already a signal "
                                  f"in '{seen[process]}'")  # fmt: skip
            if list(search["signals"].values()).count(search["signals"][process]) > 1:
                raise ConfigError(f"config key '{key}.signals': two hypotheses at mass "
                                  f"{search['signals'][process]:g}")  # fmt: skip
            seen[process] = f"{key}.signals"
            members = {n: d for n, d in config["datasets"].items()
                       if d.get("process", n) == process}  # fmt: skip
            xsecs = {d["xsec"] for d in members.values()}
            eras = {d.get("era") for d in config["datasets"].values()} - {None}
            missing = sorted(eras - {d.get("era") for d in members.values()})
            if missing:
                raise ConfigError(
                    f"config key '{key}.signals': {process!r} has no dataset in era "
                    f"{', '.join(missing)}: the search's channels there would hold no signal "
                    "(a limit for a luminosity the signal was not simulated for)"
                )
            if len(xsecs) > 1:
                raise ConfigError(
                    f"config key '{key}.signals': the datasets of {process!r} have different "
                    f"cross sections ({', '.join(f'{x:g}' for x in sorted(xsecs))} pb): the "
                    "limit on the cross section needs one"
                )
