"""Histogram arithmetic on results: merge systematics, add chunk groups, scale, split, and sum
the datasets of a process."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import hist
import numpy as np

from brewflow.config.systematics import MEMBER
from brewflow.errors import ConfigError, InputError
from brewflow.results.documents import NonFiniteError
from brewflow.results.model import CUTFLOW, Result, save


def merge_categories(
    hists: Sequence[hist.Hist], axis: str = "systematic", order: Sequence[str] | None = None
) -> hist.Hist:
    """One histogram whose ``axis`` categories are the union of the inputs' (summed where shared).

    All other axes must be identical.
    """
    first = hists[0]
    names = list(order) if order is not None else []
    for h in hists:
        names += [c for c in h.axes[axis] if c not in names]
    axes = [
        hist.axis.StrCategory(names, name=axis, label=a.label) if a.name == axis else a
        for a in first.axes
    ]
    out = hist.Hist(*axes, storage=first.storage_type(), name=first.name, label=first.label)
    index = [a.name for a in first.axes].index(axis)
    for h in hists:
        if [a for a in h.axes if a.name != axis] != [a for a in first.axes if a.name != axis]:
            raise ValueError(f"histogram {first.name!r}: axes differ, cannot merge")
        target, source = out.view(flow=True), h.view(flow=True)
        for i, category in enumerate(h.axes[axis]):
            j = names.index(category)
            dst = (slice(None),) * index + (j,)
            src = (slice(None),) * index + (i,)
            if target.dtype.names:
                for field in target.dtype.names:
                    target[field][dst] += source[field][src]
            else:
                target[dst] += source[src]
    return out


def pick_categories(h: hist.Hist, names: Sequence[str], axis: str = "systematic") -> hist.Hist:
    """``h`` restricted to the categories ``names`` of ``axis`` (in that order)."""
    present = list(h.axes[axis])
    unknown = [n for n in names if n not in present]
    if unknown:
        raise KeyError(f"histogram {h.name!r} has no {axis} {unknown}; it has {present}")
    axes = [
        hist.axis.StrCategory(names, name=axis, label=a.label) if a.name == axis else a
        for a in h.axes
    ]
    out = hist.Hist(*axes, storage=h.storage_type(), name=h.name, label=h.label)
    index = [a.name for a in h.axes].index(axis)
    chosen = (slice(None),) * index + ([present.index(n) for n in names],)
    target = (slice(None),) * index + (slice(0, len(names)),)  # not the category overflow
    out.view(flow=True)[target] = h.view(flow=True)[chosen]
    return out


def variation_names(results: Sequence[Result]) -> list[str]:
    """Names of the systematics with ``<name>Up`` categories in any of ``results``, sorted."""
    return sorted({s[:-2] for r in results for s in r.systematics if s.endswith("Up")})


def merge_systematics(results: Sequence[Result]) -> Result:
    """One result per dataset whose histograms hold every systematic category of the inputs."""
    first = results[0]
    for r in results:
        if r.dataset != first.dataset or r.cutflows != first.cutflows:
            raise ValueError(
                f"cannot merge results of {r.dataset!r} and {first.dataset!r}: "
                "different datasets or regions"
            )
    order = ["nominal"] if any("nominal" in r.systematics for r in results) else None
    histograms = {
        name: merge_categories([r.histograms[name] for r in results], order=order)
        for name in first.histograms
    }
    meta = dict(first.meta)
    meta["systematics"] = list(histograms[CUTFLOW].axes["systematic"])
    return Result(first.dataset, first.process, first.is_data, histograms, first.cutflows, meta)


def split_systematics(result: Result) -> dict[str, Result]:
    """One result per systematic of ``result`` (e.g. a graph that filled them all), each with
    its categories (an ``envelope`` or ``pdf`` systematic's: its members)."""
    owned: dict[str, list[str]] = {}
    for category in result.histograms[CUTFLOW].axes["systematic"]:
        owned.setdefault(category.split(MEMBER)[0], []).append(category)
    out = {}
    for systematic, categories in owned.items():
        histograms = {n: pick_categories(h, categories) for n, h in result.histograms.items()}
        meta = {**result.meta, "systematics": [systematic]}
        out[systematic] = Result(
            result.dataset, result.process, result.is_data, histograms, result.cutflows, meta
        )
    return out


def save_split(
    result: Result, directory: str | Path, systematics: Sequence[str] | None = None
) -> None:
    """Write ``directory/<systematic>.json`` for each systematic of ``result`` (or the given
    ones, which must be present)."""
    parts = split_systematics(result)
    unknown = [s for s in systematics or [] if s not in parts]
    if unknown:
        raise ConfigError(
            f"result of {result.dataset!r} has no systematic {unknown}; it has {list(parts)}"
        )
    for systematic in systematics or parts:
        save(parts[systematic], Path(directory) / f"{systematic}.json")


def _scaled(h: hist.Hist, factor: float) -> hist.Hist:
    out = h.copy()
    view = out.view(flow=True)
    if view.dtype.names:  # Weight storage: values scale by f, variances by f^2
        view["value"] *= factor
        view["variance"] *= factor**2
    return out


def scale(result: Result, factor: float, **meta: Any) -> Result:
    """Multiply weighted histograms (and weighted cutflows) by ``factor``; counts stay counts.
    A NaN or infinite factor is refused (:class:`NonFiniteError`)."""
    if not np.isfinite(factor):
        raise NonFiniteError(
            f"dataset {result.dataset!r}: scale factor {factor} is not finite "
            f"({', '.join(f'{k} {v}' for k, v in meta.items() if isinstance(v, float | int))})"
        )
    histograms = {name: _scaled(h, factor) for name, h in result.histograms.items()}
    new_meta = {**result.meta, **meta, "scale_factor": factor}
    return Result(
        result.dataset, result.process, result.is_data, histograms, result.cutflows, new_meta
    )


def rename_systematics(result: Result, names: Mapping[str, str]) -> Result:
    """``result`` with the categories ``<old>Up``/``<old>Down`` of each ``old -> new`` of
    ``names`` renamed ``<new>Up``/``<new>Down`` (an era's uncorrelated nuisances)."""
    mapping = {f"{old}{d}": f"{new}{d}" for old, new in names.items() if old != new
               for d in ("Up", "Down")}  # fmt: skip
    if not mapping:
        return result

    def renamed(h: hist.Hist) -> hist.Hist:
        axes = [
            hist.axis.StrCategory([mapping.get(c, c) for c in a], name=a.name, label=a.label,
                                  growth=a.traits.growth, overflow=a.traits.overflow)
            if a.name == "systematic" else a
            for a in h.axes
        ]  # fmt: skip
        out = hist.Hist(*axes, storage=h.storage_type(), name=h.name, label=h.label)
        out.view(flow=True)[...] = h.view(flow=True)
        return out

    histograms = {name: renamed(h) for name, h in result.histograms.items()}
    meta = {**result.meta, "systematics": list(histograms[CUTFLOW].axes["systematic"])}
    return Result(result.dataset, result.process, result.is_data, histograms, result.cutflows, meta)


def _with_categories(h: hist.Hist, categories: Sequence[str]) -> hist.Hist:
    """``h`` with systematic categories ``categories``; missing ones are copies of nominal."""
    present = list(h.axes["systematic"])
    missing = [c for c in categories if c not in present]
    if not missing:
        return merge_categories([h], order=categories)
    nominal = h[{"systematic": hist.loc("nominal")}]
    copies = []
    for category in missing:
        axes = [
            hist.axis.StrCategory([category], name="systematic") if a.name == "systematic" else a
            for a in h.axes
        ]
        copy = hist.Hist(*axes, storage=h.storage_type(), name=h.name, label=h.label)
        index = [a.name for a in h.axes].index("systematic")
        view = copy.view(flow=True)
        src = nominal.view(flow=True)
        view[(slice(None),) * index + (0,)] = src
        copies.append(copy)
    return merge_categories([h, *copies], order=categories)


def _refuse_shared_files(results: Sequence[Result], process: str) -> None:
    """Two datasets of one process that read one file (same ROOT UUID, under any name: a copy)
    would count its events twice: refused naming both. The files are those of the results'
    provenance."""
    seen: dict[str, tuple[int, str]] = {}
    for index, result in enumerate(results):
        inputs = result.meta.get("provenance", {}).get("inputs", {})
        if not isinstance(inputs, dict) or "files" in inputs:  # a summary: no file list
            continue
        for path, record in inputs.items():
            first = seen.setdefault(record["uuid"], (index, path))
            if first[0] != index:
                names = [_name(results[first[0]]), _name(result)]
                raise InputError(
                    f"process {process!r}: {names[1]} reads {path!r} and {names[0]} reads "
                    f"{first[1]!r}, one file (ROOT UUID {record['uuid']}); its events would be "
                    "counted twice: keep it in one dataset"
                )


def _name(result: Result) -> str:
    """How an error names a result: its dataset, or the era of a process sum."""
    if result.dataset is not None:
        return f"dataset {result.dataset!r}"
    return f"the {result.meta.get('era', 'summed')} datasets of {result.process!r}"


def combine_process(results: Sequence[Result], process: str) -> Result:
    """Sum the results of one process's datasets (or of its eras' sums). A dataset without a
    systematic variation contributes its nominal to that variation (an era's nuisance varies
    that era's datasets only)."""
    if not results:
        raise ValueError(f"process {process!r} has no datasets")
    kinds = {r.is_data for r in results}
    if len(kinds) != 1:
        raise ValueError(f"process {process!r} mixes data and MC datasets")
    _refuse_shared_files(results, process)
    categories: list[str] = []
    for r in results:
        categories += [c for c in r.systematics if c not in categories]
    histograms = {}
    for name in results[0].histograms:
        parts = [_with_categories(r.histograms[name], categories) for r in results]
        total = parts[0].copy()
        for part in parts[1:]:
            total += part
        histograms[name] = total
    partial = {r.dataset: r.meta["fraction"] for r in results if "fraction" in r.meta}
    for r in results:  # stacks of eras summed: their datasets
        partial |= r.meta.get("partial", {}) if r.dataset is None else {}
    meta = {
        "datasets": [d for r in results for d in ([r.dataset] if r.dataset else
                                                   r.meta.get("datasets", []))],
        "systematics": categories,
        "events": int(np.sum([r.meta.get("events", 0) for r in results])),
        "partial": partial,
    }  # fmt: skip
    if len(eras := {r.meta.get("era") for r in results}) == 1 and None not in eras:
        meta["era"] = eras.pop()  # one era's process
    elif len(eras) > 1:
        meta["eras"] = sorted({e for r in results for e in r.meta.get("eras", [r.meta.get("era")])
                               if e is not None})  # fmt: skip
    return Result(None, process, results[0].is_data, histograms, results[0].cutflows, meta)
