"""Analysis results on disk: histograms (UHI JSON), cutflows and metadata, written atomically.

A result file is JSON: ``{"format": "brewflow-result", "version": 1, "dataset", "process",
"is_data", "cutflows": {region: [cuts]}, "meta": {...}, "histograms": {name: <UHI hist>}}``.
No pickle: any language with a JSON parser can read it.
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hist
import numpy as np
import uhi.io.json

from brewflow.histograms import (
    CUTFLOW,
    CUTFLOW_EVENTS,
    cutflow_counts,
    merge_categories,
    pick_categories,
)

__all__ = [
    "FORMAT",
    "Result",
    "add_chunks",
    "atomic_write",
    "check_complete",
    "load",
    "merge_systematics",
    "save",
    "save_split",
    "scale",
    "split_systematics",
    "stack",
    "variation_names",
]

FORMAT = "brewflow-result"
_UMASK = os.umask(0o022)
os.umask(_UMASK)
VERSION = 1


@dataclass
class Result:
    """Histograms and cutflows of one dataset (or of a process, after stacking)."""

    dataset: str | None
    process: str
    is_data: bool
    histograms: dict[str, hist.Hist]
    cutflows: dict[str, list[str]]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def systematics(self) -> list[str]:
        """Systematic categories present (``nominal`` first)."""
        return list(self.histograms[CUTFLOW].axes["systematic"])

    def project(self, histogram: str, region: str, systematic: str = "nominal") -> hist.Hist:
        """The 1D histogram of one region and systematic category."""
        return self.histograms[histogram][{"region": region, "systematic": systematic}]

    def cutflow(self, region: str, systematic: str = "nominal") -> dict[str, list]:
        """Per step (initial, then each cut): ``events``, ``sumw``, ``sumw2``."""
        n = len(self.cutflows[region])
        weighted = cutflow_counts(self.histograms[CUTFLOW], region, systematic, n)
        counts = cutflow_counts(self.histograms[CUTFLOW_EVENTS], region, systematic, n)
        return {
            "cuts": ["initial", *self.cutflows[region]],
            "events": counts["value"],
            "sumw": weighted["value"],
            "sumw2": weighted["variance"],
        }


def atomic_write(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are for sharing
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save(result: Result, path: str | Path) -> None:
    """Write a result file (deterministic: sorted keys, no timestamps)."""
    document = {
        "format": FORMAT,
        "version": VERSION,
        "dataset": result.dataset,
        "process": result.process,
        "is_data": result.is_data,
        "cutflows": result.cutflows,
        "meta": result.meta,
        "histograms": result.histograms,
    }
    atomic_write(path, json.dumps(document, default=uhi.io.json.default, sort_keys=True) + "\n")


def load(path: str | Path) -> Result:
    """Read a result file written by :func:`save`."""
    try:
        document = json.loads(Path(path).read_text(), object_hook=uhi.io.json.object_hook)
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read brewflow result {str(path)!r}: {err}") from err
    if document.get("format") != FORMAT or document.get("version") != VERSION:
        raise ValueError(f"{str(path)!r} is not a brewflow result file (format {FORMAT} v1)")
    return Result(
        dataset=document["dataset"],
        process=document["process"],
        is_data=document["is_data"],
        histograms={k: hist.Hist(v) for k, v in document["histograms"].items()},
        cutflows=document["cutflows"],
        meta=document["meta"],
    )


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


def _intervals(result: Result) -> dict[str, list[tuple[int, int]]]:
    chunks = result.meta.get("chunks")
    if chunks is None:
        raise ValueError(f"result of {result.dataset!r} records no chunks (written before 0.2?)")
    return {path: [(a, b) for a, b in spans] for path, spans in chunks.items()}


def add_chunks(results: Sequence[Result], names: Sequence[str] | None = None) -> Result:
    """Sum results of one dataset and systematics over disjoint chunks (the chunk-group jobs
    of ``events_per_job``): histograms add, event counts add. A chunk in two inputs is an error
    (it would be counted twice); ``names`` (e.g. file paths) are used in messages."""
    names = list(names or [f"input {i}" for i in range(len(results))])
    first = results[0]
    spans: list[tuple[str, int, int, str]] = []
    for r, name in zip(results, names, strict=True):
        if (r.dataset, r.systematics, r.cutflows) != (first.dataset, first.systematics,
                                                      first.cutflows):  # fmt: skip
            raise ValueError(
                f"{name}: cannot add to {names[0]}: different dataset, systematics or regions"
            )
        spans += [(path, a, b, name) for path, ab in _intervals(r).items() for a, b in ab]
    spans.sort()
    for (path, _, end, other), (path2, a, b, name) in itertools.pairwise(spans):
        if path == path2 and a < end:
            raise ValueError(
                f"file {path!r} entries [{a}, {b}) are in both {other} and {name}: "
                "they would be counted twice"
            )
    histograms = {k: h.copy() for k, h in first.histograms.items()}
    for r in results[1:]:
        for k, h in r.histograms.items():
            histograms[k] += h
    chunks: dict[str, list[list[int]]] = {}
    for path, a, b, _ in spans:
        chunks.setdefault(path, []).append([a, b])
    meta = {**first.meta, "chunks": chunks, "files": list(chunks)}
    meta["events"] = int(sum(r.meta["events"] for r in results))
    if "events_certified" in first.meta:
        meta["events_certified"] = int(sum(r.meta["events_certified"] for r in results))
    meta.pop("sumw", None)
    meta.pop("group", None)
    return Result(first.dataset, first.process, first.is_data, histograms, first.cutflows, meta)


def check_complete(result: Result, inventory: dict[str, Any]) -> None:
    """Raise ``ValueError`` unless ``result`` covers every event of the inventory's files
    exactly once (each file ``[0, entries)`` in consecutive chunks, no other file)."""
    covered = _intervals(result)
    expected = {f["path"]: f["entries"] for f in inventory["files"]}
    for path in covered:
        if path not in expected:
            raise ValueError(f"{result.dataset}: file {path!r} is not in the dataset's inventory")
    for path, entries in expected.items():
        spans = sorted(covered.get(path, []))
        edge = 0
        for a, b in spans:
            if a != edge:
                raise ValueError(
                    f"{result.dataset}: file {path!r} entries [{edge}, {a}) were not processed"
                    if a > edge
                    else f"{result.dataset}: file {path!r} entries from {a} counted twice"
                )
            edge = b
        if edge != entries:
            raise ValueError(
                f"{result.dataset}: file {path!r} entries [{edge}, {entries}) were not processed"
            )


def split_systematics(result: Result) -> dict[str, Result]:
    """One result per systematic category of ``result`` (e.g. a graph that filled them all)."""
    out = {}
    for systematic in result.systematics:
        histograms = {n: pick_categories(h, [systematic]) for n, h in result.histograms.items()}
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
    """Multiply weighted histograms (and weighted cutflows) by ``factor``; counts stay counts."""
    histograms = {name: _scaled(h, factor) for name, h in result.histograms.items()}
    new_meta = {**result.meta, **meta, "scale_factor": factor}
    return Result(
        result.dataset, result.process, result.is_data, histograms, result.cutflows, new_meta
    )


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


def stack(results: Sequence[Result], process: str) -> Result:
    """Sum the results of one process's datasets. A dataset without a systematic variation
    contributes its nominal to that variation."""
    if not results:
        raise ValueError(f"process {process!r} has no datasets")
    kinds = {r.is_data for r in results}
    if len(kinds) != 1:
        raise ValueError(f"process {process!r} mixes data and MC datasets")
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
    meta = {
        "datasets": [r.dataset for r in results],
        "systematics": categories,
        "events": int(np.sum([r.meta.get("events", 0) for r in results])),
    }
    return Result(None, process, results[0].is_data, histograms, results[0].cutflows, meta)
