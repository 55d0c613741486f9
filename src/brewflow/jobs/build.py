"""The graph of one dataset: the analysis callable on its events (lazy or eager), object
variations chained into one pass, systematic weights, and every histogram and cutflow booked
and filled."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import awkward as ak
import dask_awkward as dak
import numpy as np

from brewflow import histograms as H
from brewflow.analysis import OBJECT_VARIATIONS, AnalysisOutput, Context, JESVariation, PerBlock
from brewflow.arrays import chain, metadata_pass, typetracer_like
from brewflow.code import analysis_modules, file_digests, import_analysis
from brewflow.config import (
    MEMBER,
    ConfigError,
    analysis_options,
    era_of,
    era_settings,
    member_categories,
    object_variation,
)
from brewflow.corrected import CorrectedEvents
from brewflow.corrections import load_all
from brewflow.errors import BrewflowError
from brewflow.jobs.blocks import with_blocks
from brewflow.jobs.correctors import correctors
from brewflow.jobs.gate import DataGate

__all__ = [
    "AnalysisImportError",
    "Graph",
    "analysis_code",
    "analysis_context",
    "build",
    "jes_variation",
    "load_analysis",
    "systematic_weight",
]

log = logging.getLogger(__name__)


def analysis_code(config: Mapping) -> dict[str, str]:
    """The analysis's own modules and files (``analysis.files``) with their digests, for the
    provenance of what runs it (:mod:`brewflow.code`)."""
    return {**analysis_modules(config["analysis"]["callable"]),
            **file_digests(config["analysis"].get("files", []))}  # fmt: skip


class AnalysisImportError(BrewflowError):
    """The analysis module cannot be imported where the job runs (it, or a module it imports,
    is missing there): named, and tried again by the next run."""


def load_analysis(spec: str) -> Callable[[Any, Context], AnalysisOutput]:
    """Import an analysis given as ``'package.module:function'`` (looked up on ``sys.path``,
    then in the working directory: :func:`brewflow.code.import_analysis`)."""
    module_name, _, attr = spec.partition(":")
    try:
        module = import_analysis(module_name)
    except SyntaxError as err:  # the analysis's code: the same every time until it is edited
        raise ConfigError(
            f"config key 'analysis.callable': {module_name!r} does not compile: {err.msg} "
            f"({err.filename}, line {err.lineno})"
        ) from None
    except ImportError as err:  # also a module missing where the job runs: not a config
        # error, which would not be run again (brewflow.jobs.guard)
        raise AnalysisImportError(
            f"config key 'analysis.callable': cannot import {module_name!r}: {err} (is it on "
            "PYTHONPATH or in the run's folder, with what it imports, where the job runs?)"
        ) from err
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(
            f"config key 'analysis.callable': module {module_name!r} has no {attr!r}"
        ) from None


def jes_variation(config: Mapping, systematic: str) -> JESVariation | None:
    """The JES variation of an object variation (None for JER, unclustered, nominal)."""
    shape = object_variation(config, systematic)
    if shape is None or shape[0] != "jes":
        return None
    return JESVariation(shape[2].lower(), shape[1])


def systematic_weight(config: Mapping, output: AnalysisOutput, systematic: str) -> Any:
    """The event weight for ``systematic`` (None for unweighted data).

    Object (shape) variations use the nominal weight of the analysis run on varied objects."""
    if not output.weights:
        if systematic != "nominal":
            raise ConfigError(f"systematic {systematic!r} needs event weights (MC)")
        return None
    if systematic == "nominal" or object_variation(config, systematic):
        return output.weights.weight()
    if MEMBER in systematic:
        return _member_weight(config, output, systematic)
    for direction in ("Up", "Down"):
        name = systematic.removesuffix(direction)
        spec = config["systematics"].get(name)
        if systematic.endswith(direction) and spec is not None:
            if spec["type"] == "scale":
                return output.weights.weight() * spec[direction.lower()]
            if name + direction not in output.weights.variations:
                raise ConfigError(
                    f"config key 'systematics.{name}': the analysis defines no weight {name!r} "
                    f"with up/down variations (it has: {', '.join(output.weights.variations)})"
                )
            return output.weights.weight(name + direction)
    raise ConfigError(f"unknown systematic {systematic!r}; see config key 'systematics'")


def _member_weight(config: Mapping, output: AnalysisOutput, category: str) -> Any:
    """The weight of a member of an ``envelope`` (its weight variation) or ``pdf`` systematic
    (its ``LHEPdfWeight`` entry), see :func:`brewflow.config.member_categories`."""
    owner, member = category.split(MEMBER)
    name = next(owner.removesuffix(d) for d in ("Up", "Down") if owner.endswith(d))
    variation = member if config["systematics"][name]["type"] == "envelope" else (
        f"{name}{MEMBER}{member}Up")  # fmt: skip
    if variation not in output.weights.variations:
        raise ConfigError(
            f"config key 'systematics.{name}.of': the analysis defines no weight "
            f"{variation.removesuffix('Up').removesuffix('Down')!r} with up/down variations "
            f"(it has: {', '.join(v for v in output.weights.variations if MEMBER not in v)})"
        )
    return output.weights.weight(variation)


def _check_output(config: Mapping, output: Any) -> None:
    spec = config["analysis"]["callable"]
    if not isinstance(output, AnalysisOutput):
        raise ConfigError(
            f"config key 'analysis.callable': {spec} returned {type(output).__name__}; "
            "it must return brewflow.analysis.AnalysisOutput"
        )
    for name, region in config["regions"].items():
        for cut in region["cuts"]:
            if cut not in output.selection:
                raise ConfigError(
                    f"config key 'regions.{name}.cuts': the analysis defines no cut {cut!r} "
                    f"(it has: {', '.join(output.selection.names)})"
                )
    for name, definition in config["histograms"].items():
        if definition["variable"] not in output.variables:
            raise ConfigError(
                f"config key 'histograms.{name}.variable': the analysis returns no variable "
                f"{definition['variable']!r} (it has: {', '.join(output.variables)})"
            )


def dataset_corrections(config: Mapping, dataset: str) -> dict[str, Any]:
    """The correctionlib corrections of the dataset's era, by config key."""
    return load_all(era_settings(config, era_of(config, dataset))["corrections"])


def analysis_context(config: Mapping, dataset: str) -> Context:
    """What the analysis is told about ``dataset``'s events on nominal objects."""
    jets = era_settings(config, era_of(config, dataset)).get("jets") or {}
    return Context(
        dataset,
        config["datasets"][dataset]["is_data"],
        "nominal",
        analysis_options(config, dataset),
        dataset_corrections(config, dataset),
        dict(config["models"]),
        met=jets.get("met", "MET"),
    )


@dataclass(frozen=True)
class Graph:
    """What :func:`build` makes of a dataset's events: every histogram and cutflow (keys
    ending in :data:`STACKED` for stacked object variations: pass the computed histograms
    through :func:`merge_stacked`) and the number of certified events (None without a golden
    JSON), lazy or eager like the events; ``variables``: the names of the analysis's
    variables (its nominal run)."""

    histograms: dict[str, Any]
    certified: Any = None
    variables: tuple[str, ...] = ()
    exposures: dict[str, Any] = field(default_factory=dict)
    """Data: :meth:`~brewflow.jobs.gate.DataGate.exposures` (check them once computed)."""


def build(
    config: Mapping, dataset: str, systematics: str | Sequence[str], events: Any,
    layout: str = "",
) -> Graph:  # fmt: skip
    """Histograms (lazy or eager, like ``events``) of the analysis for ``systematics``.

    The events pass the dataset's :class:`~brewflow.jobs.gate.DataGate` first (certified
    luminosity; blinded regions and windows, for data); ``layout`` names the file whose
    branches define them, in errors. The analysis runs once on the nominal objects (serving
    nominal, weight and scale variations) and once per object variation, or, for lazy events
    with at least ``stack_object_variations`` of them, once on all object variations stacked
    one after the other (each a block of partitions). Each variation is one fill of the shared
    histograms' ``systematic`` axis, so one compute reads the columns once for all of them;
    stacked variations are one fill per histogram and region, each entry labelled with its
    event's variation, into histograms of their own.
    """
    systematics = [systematics] if isinstance(systematics, str) else list(systematics)
    systematics = [c for s in systematics for c in member_categories(config, s)]
    gate = DataGate.of(config, dataset)
    events, certified = gate.certified(events, layout)
    analysis = with_blocks(config, dataset, load_analysis(config["analysis"]["callable"]), layout)
    context = analysis_context(config, dataset)
    corrector = correctors(config, dataset)
    groups: dict[str, list[str]] = {}
    for systematic in systematics:
        key = systematic if object_variation(config, systematic) else "nominal"
        groups.setdefault(key, []).append(systematic)
    lazy = isinstance(events, dak.Array)
    hists, cutflow = book_histograms(config, systematics, lazy)

    returned: dict[str, None] = {}  # the analysis's variables, in order
    exposures: dict[str, Any] = {}

    def fill(
        output: AnalysisOutput,
        members: Sequence[Sequence[str]],
        part: Any = None,
        labels: Any = None,
    ) -> None:
        """Fill every histogram from ``output``: ``members[i]`` are the systematics of block
        ``i`` (``part(array, i)`` selects it; no ``part``: one block, the whole output);
        ``labels``: instead, each event's systematic (stacked object variations)."""
        _check_output(config, output)
        returned.update(output.variables)
        selections = gate.selections(output)  # the regions this dataset may fill
        exposures.update(gate.exposures(selections))
        filler = H.Filler({region: s.mask for region, s in selections.items()})
        passed = {region: s.passed for region, s in selections.items()}
        if labels is not None:  # stacked object variations: one fill each, labelled per event,
            # into histograms of their own (a fill's inputs must share the partitions)
            own_hists, own_cutflow = book_histograms(config, systematics, lazy)
            _fill_labelled(config, output, own_hists, own_cutflow, filler, passed, labels)
            stacked_parts.update({k + STACKED: h for k, h in {**own_hists, **own_cutflow}.items()})
            return
        for block, names in enumerate(members):
            select = None if part is None else functools.partial(part, block=block)
            for systematic in names:
                weight = systematic_weight(config, output, systematic)
                for name, h in hists.items():
                    variable = config["histograms"][name]["variable"]
                    for region in h.axes["region"]:
                        if region not in passed:
                            continue
                        filler.fill(
                            h,
                            region=region,
                            systematic=systematic,
                            variable=variable,
                            values=output.variables[variable],
                            weight=weight,
                            select=select,
                        )
                for region in passed:
                    for name, h in cutflow.items():
                        args = _cutflow_arguments(name, passed[region], weight)
                        if select is not None:
                            args = {k: select(v) for k, v in args.items()}
                        if "weight" in args and not lazy:  # lazily: masked with the
                            # same weight above, awkward refuses a length mismatch there
                            args["weight"] = H.checked_weight(
                                args["passed"], args["weight"], "cutflow", region
                            )
                        h.fill(region=region, systematic=systematic, **args)

    shapes = [key for key in groups if key != "nominal"]
    stacked_parts: dict[str, Any] = {}
    if "nominal" in groups:
        nominal = corrector.apply(events) if corrector else events
        fill(analysis(nominal, context), [groups["nominal"]])
    varied = {
        key: corrector.apply(events, object_variation(config, key))
        for key in shapes
        if corrector  # object variations need their block (config validation)
    }
    stacked = None
    if lazy and len(shapes) >= config["stack_object_variations"]:
        stacked = CorrectedEvents.chain(list(varied.values()))
    if stacked is not None:  # one analysis run on all object variations, block by block
        n = events.npartitions
        part = lambda a, block: a.partitions[block * n : (block + 1) * n]  # noqa: E731
        codes = chain([dak.zeros_like(events.luminosityBlock, dtype=np.int64) + i
                       for i in range(len(shapes))])  # fmt: skip
        jes = PerBlock(codes, tuple(jes_variation(config, key) for key in shapes))
        output = analysis(stacked, replace(context, systematic=OBJECT_VARIATIONS, jes=jes))
        fill(output, [groups[key] for key in shapes], part, labels=_labels(codes, shapes))
    else:
        for key in shapes:
            varied_context = replace(context, systematic=key, jes=jes_variation(config, key))
            fill(analysis(varied[key], varied_context), [groups[key]])
    return Graph({**hists, **cutflow, **stacked_parts}, certified, tuple(returned), exposures)


STACKED = " + stacked object variations"
"""Key suffix of the histograms :func:`build` fills with stacked object variations; after
computing, :func:`merge_stacked` adds each to the histogram it belongs to."""


def merge_stacked(computed: Mapping[str, Any]) -> dict[str, Any]:
    """Computed :func:`build` output with its stacked object variations' histograms added to
    their histograms (same axes, zero where the other has no fill: the sum is exact)."""
    out = {k: v for k, v in computed.items() if not k.endswith(STACKED)}
    for key, h in computed.items():
        if key.endswith(STACKED):
            name = key.removesuffix(STACKED)
            out[name] = out[name] + h
    return out


def _labels(codes: Any, names: Sequence[str]) -> Any:
    """Each event's systematic name, from its block number ``codes`` (lazy)."""
    return dak.map_partitions(_name_of, codes, tuple(names), label="systematic-labels")


def _name_of(codes: Any, names: tuple[str, ...]) -> Any:
    if metadata_pass(codes):
        return typetracer_like(np.asarray(names[:1]))
    return ak.from_numpy(np.asarray(names)[np.asarray(codes)])


def _fill_labelled(
    config: Mapping, output: AnalysisOutput, hists: Mapping[str, Any], cutflow: Mapping[str, Any],
    filler: H.Filler, passed: Mapping[str, Any], labels: Any,
) -> None:  # fmt: skip
    """One fill per histogram and region for all stacked object variations: each entry's
    ``systematic`` is its event's label; object variations all take the nominal weight."""
    weight = output.weights.weight() if output.weights else None
    for name, h in hists.items():
        variable = config["histograms"][name]["variable"]
        values = output.variables[variable]
        for region in h.axes["region"]:
            if region not in passed:  # a region this dataset may not fill (the gate)
                continue
            args = filler.arguments(region=region, variable=variable, values=values,
                                    weight=weight, systematic="object variations")  # fmt: skip
            entries = filler.per_entry(region=region, variable=variable, values=values,
                                       per_event=labels)  # fmt: skip
            args[h.axes[-1].name] = args.pop("values")
            h.fill(region=region, systematic=entries, **args)
    for region in passed:
        for name, h in cutflow.items():
            h.fill(region=region, systematic=labels, **_cutflow_arguments(name, passed[region],
                                                                          weight))  # fmt: skip


def _cutflow_arguments(name: str, passed: Any, weight: Any) -> dict[str, Any]:
    """A cutflow histogram's fill: the cuts each event passed, weighted for the weighted one."""
    args = {"passed": passed}
    if name == H.CUTFLOW and weight is not None:
        args["weight"] = weight
    return args


def book_histograms(config: Mapping, systematics: Sequence[str], lazy: bool) -> tuple[dict, dict]:
    """Empty histograms and cutflow histograms of the config, for ``systematics``."""
    regions = {name: region["cuts"] for name, region in config["regions"].items()}
    systematics = [c for s in systematics for c in member_categories(config, s)]
    hists = H.book(config["histograms"], list(regions), systematics, lazy=lazy)
    return hists, H.book_cutflow(regions, systematics, lazy=lazy)
