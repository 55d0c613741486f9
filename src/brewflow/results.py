"""Analysis results on disk: histograms (UHI JSON), cutflows and metadata, written atomically.

A result file is JSON: ``{"checksum": "sha256:...", "format": "brewflow-result", "version": 2,
"dataset", "process",
"is_data", "cutflows": {region: [cuts]}, "meta": {...}, "histograms": {name: <UHI hist>}}``.
No pickle: any language with a JSON parser can read it.
"""

from __future__ import annotations

import hashlib
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
from brewflow.inputs import InputError

__all__ = [
    "FORMAT",
    "DamagedFileError",
    "Result",
    "add_chunks",
    "atomic_write",
    "check_complete",
    "describe",
    "ledger",
    "load",
    "merge_systematics",
    "partial_note",
    "read_document",
    "regenerate",
    "save",
    "save_split",
    "scale",
    "split_systematics",
    "stack",
    "sweep_temporary",
    "variation_names",
    "write_document",
]

FORMAT = "brewflow-result"
_UMASK = os.umask(0o022)
os.umask(_UMASK)
VERSION = 2


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


_CHECKSUM = '{"checksum": "sha256:'


class DamagedFileError(InputError, ValueError):
    """A brewflow JSON file that is truncated, altered or not brewflow's: named, never summed."""


def write_document(path: str | Path, document: dict[str, Any]) -> None:
    """Write ``document`` as JSON (sorted keys), atomically, with a leading ``checksum`` key:
    the SHA-256 of the rest, which :func:`read_document` checks. Still plain JSON."""
    try:
        body = json.dumps(document, default=uhi.io.json.default, sort_keys=True, allow_nan=False)
    except ValueError as err:  # json's "Out of range float values are not JSON compliant"
        raise NonFiniteError(
            f"{str(path)!r} not written: a number in it is NaN or infinite"
        ) from err
    digest = hashlib.sha256(body.encode()).hexdigest()
    atomic_write(path, f'{_CHECKSUM}{digest}", {body[1:]}\n')


def regenerate(path: str | Path) -> str:
    """What to run to rebuild the workflow output ``path`` and what was made from it. A plain
    rerun does not: Snakemake sees the outputs made from it as up to date, even when it was
    deleted."""
    return (
        f"regenerate it with `snakemake --cores 2 --forcerun {path}` (with your run's --config "
        "and --directory; a plain rerun keeps it, as what was made from it is up to date)"
    )


def read_document(path: str | Path, *, what: str = "brewflow file", hook: Any = None) -> dict:
    """Read a file written by :func:`write_document`, verifying its checksum; a truncated or
    altered file raises :class:`DamagedFileError` naming it and what to do."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise DamagedFileError(f"cannot read {what} {str(path)!r}: {err}") from None
    fix = regenerate(path)
    if not text.startswith(_CHECKSUM):
        raise DamagedFileError(f"{str(path)!r} is not a {what} (no brewflow checksum); {fix}")
    start = len(_CHECKSUM)
    digest, body = text[start : start + 64], "{" + text[start + 67 :].rstrip("\n")
    if hashlib.sha256(body.encode()).hexdigest() != digest:
        raise DamagedFileError(
            f"{what} {str(path)!r} is damaged (truncated or altered: checksum mismatch); {fix}"
        )
    document = json.loads(body, object_hook=hook)
    return document


def sweep_temporary(root: str | Path) -> list[Path]:
    """Remove the hidden temporary files (``.<name>.*.tmp*``) and folders (``.<name>.tmp``,
    e.g. a skim's parts) that jobs killed while writing left under ``root``; call only while no
    job writes there (the workflow's start)."""
    import shutil

    removed = []
    for path in sorted(Path(root).rglob(".*.tmp*")):
        if not path.exists() and not path.is_symlink():
            continue  # inside a folder removed above
        if path.is_symlink() or path.is_file():
            path.unlink()
            removed.append(path)
        elif path.is_dir() and path.name.endswith(".tmp"):
            shutil.rmtree(path)
            removed.append(path)
    return removed


class NonFiniteError(InputError, ValueError):
    """A NaN or infinite number where a sum of weights or a scale factor must be finite."""


def check_finite(result: Result, what: str) -> None:
    """Raise :class:`NonFiniteError` naming the histogram, region and systematic of the first
    NaN or infinite bin of ``result`` (a NaN weight, or a NaN or infinite scale factor, would
    otherwise spread silently into every stack and plot)."""
    for name, h in result.histograms.items():
        view = h.view(flow=True)
        fields = view.dtype.names or (None,)
        for field_name in fields:
            values = view[field_name] if field_name else np.asarray(view)
            bad = ~np.isfinite(values)
            if bad.any():
                index = tuple(int(i[0]) for i in np.nonzero(bad))
                axes = {
                    a.name: a.value(i - 1 if a.traits.underflow else i)
                    for a, i in zip(h.axes, index, strict=True)
                    if a.name in ("region", "systematic")
                }
                where = ", ".join(f"{k} {v!r}" for k, v in axes.items())
                raise NonFiniteError(
                    f"{what}: histogram {name!r} ({where})"
                    f" has {int(bad.sum())} non-finite bin(s) ({values[index]}); a weight of the "
                    "analysis or a correction is NaN or infinite"
                )


def save(result: Result, path: str | Path) -> None:
    """Write a result file (deterministic: sorted keys, no timestamps); a NaN or infinite bin
    or number is refused (:class:`NonFiniteError`), never written."""
    check_finite(result, f"dataset {result.dataset or result.process!r} ({path})")
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
    write_document(path, document)


def load(path: str | Path) -> Result:
    """Read a result file written by :func:`save` (checksum verified)."""
    document = read_document(path, what="brewflow result", hook=uhi.io.json.object_hook)
    if document.get("format") != FORMAT or document.get("version") != VERSION:
        raise DamagedFileError(
            f"{str(path)!r} is not a brewflow result file (format {FORMAT} v{VERSION}); "
            f"{regenerate(path)}"
        )
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


def _spans(result: Result, name: str) -> list[tuple[str, int, int, str, bool]]:
    """``(path, start, stop, where, skipped)`` of every chunk ``result`` read or skipped."""
    read = [(path, a, b, name, False) for path, ab in _intervals(result).items() for a, b in ab]
    skipped = [
        (s["path"], s["start"], s["stop"], f"{name} (skipped)", True)
        for s in result.meta.get("skipped", [])
    ]
    return sorted(read + skipped)


def add_chunks(results: Sequence[Result], names: Sequence[str] | None = None) -> Result:
    """Sum results of one dataset and systematics over disjoint chunks (the chunk-group jobs
    of ``events_per_job``): histograms add, event counts add, skipped chunks are collected. A
    chunk in two inputs is an error (it would be counted twice); ``names`` (e.g. file paths)
    are used in messages."""
    names = list(names or [f"input {i}" for i in range(len(results))])
    first = results[0]
    spans: list[tuple[str, int, int, str, bool]] = []
    for r, name in zip(results, names, strict=True):
        if (r.dataset, r.systematics, r.cutflows) != (first.dataset, first.systematics,
                                                      first.cutflows):  # fmt: skip
            raise ValueError(
                f"{name}: cannot add to {names[0]}: different dataset, systematics or regions"
            )
        spans += _spans(r, name)
    spans.sort()
    for (path, _, end, other, _), (path2, a, b, name, _) in itertools.pairwise(spans):
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
    for path, a, b, _, skipped in spans:
        if not skipped:
            chunks.setdefault(path, []).append([a, b])
    meta = {**first.meta, "chunks": chunks, "files": list(chunks)}
    meta["events"] = int(sum(r.meta["events"] for r in results))
    meta["skipped"] = [s for r in results for s in r.meta.get("skipped", [])]
    for key in ("events_certified", "sumw_read"):
        if key in first.meta:
            meta[key] = sum(r.meta[key] for r in results)
    meta.pop("sumw", None)
    meta.pop("group", None)
    return Result(first.dataset, first.process, first.is_data, histograms, first.cutflows, meta)


def ledger(result: Result, inventory: dict[str, Any]) -> dict[str, Any]:
    """The event ledger of a dataset's result against its inventory: files, chunks, events and
    (MC) sums of genWeight expected and read, what was skipped and why, ``complete`` and the
    ``fraction`` read (of the sum of genWeight for MC, of events for data; a file unreadable
    at preprocessing, whose events are unknown, counts as a file of the average size).

    Raises ``ValueError`` if an event of the inventory is neither read nor recorded as
    skipped, or is accounted for twice: no event is lost or counted twice silently."""
    by_path: dict[str, list[tuple[int, int, bool]]] = {}
    for path, a, b, _, skipped in _spans(result, "result"):
        by_path.setdefault(path, []).append((a, b, skipped))
    expected = {f["path"]: f for f in inventory["files"]}
    for path in by_path:
        if path not in expected:
            raise ValueError(f"{result.dataset}: file {path!r} is not in the dataset's inventory")
    files = {"expected": len(expected), "read": 0, "partly_read": 0, "skipped": 0}
    chunks = {"expected": 0, "read": 0, "skipped": 0}
    for path, record in expected.items():
        edge, read = 0, 0
        for a, b, skipped in sorted(by_path.get(path, [])):
            if a != edge:
                raise ValueError(
                    f"{result.dataset}: file {path!r} entries [{edge}, {a}) were not processed"
                    " and not recorded as skipped"
                    if a > edge
                    else f"{result.dataset}: file {path!r} entries from {a} counted twice"
                )
            edge = b
            chunks["skipped" if skipped else "read"] += 1
            read += 0 if skipped else b - a
        if edge != record["entries"]:
            raise ValueError(
                f"{result.dataset}: file {path!r} entries [{edge}, {record['entries']}) were "
                "not processed and not recorded as skipped"
            )
        state = "read" if read == record["entries"] else "partly_read" if read else "skipped"
        files[state if record["entries"] else "read"] += 1
    chunks["expected"] = chunks["read"] + chunks["skipped"]
    skipped = list(result.meta.get("skipped", []))
    unreadable = list(inventory.get("skipped", []))  # at preprocessing: entries unknown
    files["expected"] += len(unreadable)
    files["skipped"] += len(unreadable)
    total = sum(f["entries"] for f in expected.values())
    events = {"expected": total, "read": int(result.meta["events"])}
    events["skipped"] = total - events["read"]
    out: dict[str, Any] = {
        "complete": not skipped and not unreadable,
        "files": files,
        "chunks": chunks,
        "events": events,
    }
    if not inventory["is_data"]:
        sumw_all = inventory["sumw"]
        sumw_read = result.meta.get("sumw_read", sumw_all if out["complete"] else 0.0)
        out["sumw"] = {"all": sumw_all, "read": sumw_read}
        out["fraction"] = sumw_read / sumw_all if sumw_all else 1.0
    else:
        out["fraction"] = events["read"] / total if total else 1.0
    if unreadable:  # their events are unknown: counted as files of the average size
        out["fraction"] *= len(expected) / (len(expected) + len(unreadable))
    if out["complete"]:
        out["fraction"] = 1.0
    out["skipped"] = skipped + [{**u, "start": None, "stop": None} for u in unreadable]
    return out


def describe(ledger: dict[str, Any]) -> str:
    """One line: what of the dataset was read and what was skipped."""
    f, e = ledger["files"], ledger["events"]
    parts = [f"{f['read']}/{f['expected']} files read"]
    if f["partly_read"]:
        parts.append(f"{f['partly_read']} partly")
    parts.append(f"{e['read']}/{e['expected']} events")
    if any(s["start"] is None for s in ledger["skipped"]):
        parts.append("unreadable files' events unknown")
    share = "of the sum of genWeight" if "sumw" in ledger else "of the events"
    parts.append(f"{100 * ledger['fraction']:.1f}% {share}")
    return ", ".join(parts)


def partial_note(results: Sequence[Result]) -> str:
    """``'partial input (allow_partial): dy 93.1%'`` for datasets read in part, else ``''``."""
    fractions: dict[str, float] = {}
    for result in results:
        fractions.update(result.meta.get("partial", {}))
        if "fraction" in result.meta and result.dataset:
            fractions[result.dataset] = result.meta["fraction"]
    if not fractions:
        return ""
    shares = ", ".join(f"{name} {100 * f:.1f}%" for name, f in sorted(fractions.items()))
    return f"partial input (allow_partial): {shares}"


def check_complete(result: Result, inventory: dict[str, Any]) -> None:
    """Raise ``ValueError`` unless ``result`` covers every event of the inventory's files
    exactly once (each file ``[0, entries)`` in consecutive chunks, no other file)."""
    book = ledger(result, inventory)
    if not book["complete"]:
        first = book["skipped"][0]
        raise ValueError(
            f"{result.dataset}: incomplete, {describe(book)}; first skipped: {first['path']!r} "
            f"({first['reason']})"
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
    seen: dict[str, tuple[str, str]] = {}
    for result in results:
        inputs = result.meta.get("provenance", {}).get("inputs", {})
        if not isinstance(inputs, dict) or "files" in inputs:  # a summary: no file list
            continue
        for path, record in inputs.items():
            first = seen.setdefault(record["uuid"], (str(result.dataset), path))
            if first[0] != result.dataset:
                raise InputError(
                    f"process {process!r}: dataset {result.dataset!r} reads {path!r} and dataset "
                    f"{first[0]!r} reads {first[1]!r}, one file (ROOT UUID {record['uuid']}); "
                    "its events would be counted twice: keep it in one dataset"
                )


def stack(results: Sequence[Result], process: str) -> Result:
    """Sum the results of one process's datasets. A dataset without a systematic variation
    contributes its nominal to that variation."""
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
    meta = {
        "datasets": [r.dataset for r in results],
        "systematics": categories,
        "events": int(np.sum([r.meta.get("events", 0) for r in results])),
        "partial": {r.dataset: r.meta["fraction"] for r in results if "fraction" in r.meta},
    }
    return Result(None, process, results[0].is_data, histograms, results[0].cutflows, meta)
