"""The event ledger: which entries of which file every result read or skipped, checked against
the dataset's inventory, so no chunk is lost or counted twice."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

from brewflow.errors import InputError
from brewflow.results.model import Result


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
    if any("replicas" in r.meta for r in results):
        meta["replicas"] = [c for r in results for c in r.meta.get("replicas", [])]
    for key in ("events_certified", "sumw_read"):
        if key in first.meta:
            meta[key] = sum(r.meta[key] for r in results)
    meta.pop("sumw", None)
    meta.pop("group", None)
    return Result(first.dataset, first.process, first.is_data, histograms, first.cutflows, meta)


def event_ledger(result: Result, inventory: dict[str, Any]) -> dict[str, Any]:
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
    skipped_chunks = list(result.meta.get("skipped", []))
    unreadable = list(inventory.get("skipped", []))  # at preprocessing: entries unknown
    files["expected"] += len(unreadable)
    files["skipped"] += len(unreadable)
    total = sum(f["entries"] for f in expected.values())
    events = {"expected": total, "read": int(result.meta["events"])}
    events["skipped"] = total - events["read"]
    out: dict[str, Any] = {
        "complete": not skipped_chunks and not unreadable,
        "files": files,
        "chunks": chunks,
        "events": events,
    }
    if not inventory["is_data"]:
        sumw_all = inventory["sumw"]
        sumw_read = result.meta.get("sumw_read", sumw_all if out["complete"] else 0.0)
        from_files = not any(f.get("sumw_from") for f in inventory["files"])  # a skim's part:
        # the sum of the events it was selected from (its ledger), not of the events it holds
        if (out["complete"] and from_files
                and not math.isclose(sumw_read, sumw_all, rel_tol=1e-9, abs_tol=1e-9)):  # fmt: skip
            raise InputError(  # the inventory is a record of the files: verified against them
                f"dataset {result.dataset!r}: the sum of genWeight of the events read "
                f"({sumw_read:.10g}) is not the inventory's ({sumw_all:.10g}): a file changed "
                "since preprocessing, or its preprocess record was altered; rerun "
                "preprocessing (snakemake --forcerun preprocess)"
            )
        out["sumw"] = {"all": sumw_all, "read": sumw_read}
        out["fraction"] = sumw_read / sumw_all if sumw_all else 1.0
    else:
        out["fraction"] = events["read"] / total if total else 1.0
    if unreadable:  # their events are unknown: counted as files of the average size
        out["fraction"] *= len(expected) / (len(expected) + len(unreadable))
    if out["complete"]:
        out["fraction"] = 1.0
    out["skipped"] = skipped_chunks + [{**u, "start": None, "stop": None} for u in unreadable]
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
    book = event_ledger(result, inventory)
    if not book["complete"]:
        first = book["skipped"][0]
        raise ValueError(
            f"{result.dataset}: incomplete, {describe(book)}; first skipped: {first['path']!r} "
            f"({first['reason']})"
        )
