"""Per-dataset file inventory: entries per file, sum of generator weights (MC), ROOT file UUID."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from brewflow.config import dataset_files, dataset_spec, on_bad_file
from brewflow.files import atomic_write
from brewflow.nanoevents import parquet, trees
from brewflow.nanoevents.inputs import (
    SKIP_HINT,
    InputError,
    check_finite_weights,
    open_checked,
)
from brewflow.nanoevents.reader import READ_ERRORS
from brewflow.results import provenance
from brewflow.weights import weight_sums

__all__ = [
    "CACHE",
    "InputError",
    "chunks",
    "inspect_file",
    "preprocess",
]

CACHE = Path(".brewflow") / "cache" / "preprocess"
"""Where :func:`preprocess` keeps one record per file (relative to the working directory)."""

log = logging.getLogger(__name__)


def chunks(clusters: list[int], step_size: int) -> list[list[int]]:
    """``[start, stop)`` chunks of about ``step_size`` entries, cut at cluster boundaries.

    ``clusters`` are the tree's cluster (basket) boundaries ``[0, ..., entries]``. Whole clusters
    are grouped until a chunk holds at least ``step_size`` entries, so no basket is decompressed
    by two chunks; a cluster larger than ``step_size`` is split evenly (parallelism first).
    """
    out: list[list[int]] = []
    start = clusters[0]
    for low, high in itertools.pairwise(clusters):
        if high - low > step_size:
            if start < low:
                out.append([start, low])
            parts = -(-(high - low) // step_size)
            cuts = [low + (high - low) * i // parts for i in range(parts + 1)]
            out += [[a, b] for a, b in itertools.pairwise(cuts)]
            start = high
        elif high - start >= step_size:
            out.append([start, high])
            start = high
    if start < clusters[-1]:
        out.append([start, clusters[-1]])
    return out


def inspect_file(
    path: str, tree: str, *, is_data: bool, dataset: str, step_size: int | None = None
) -> dict[str, Any]:
    """Entries, sum of ``genWeight`` (and of its square) for MC, size and UUID of one file;
    with ``step_size``, its chunks: ``[start, stop)`` cut at cluster boundaries."""
    where = f"dataset {dataset!r}, file {path!r}"
    ttree = open_checked(path, tree, where=f"dataset {dataset!r}")
    if parquet.is_parquet(path):
        return _inspect_parquet(path, ttree, is_data=is_data, step_size=step_size)
    record: dict[str, Any] = {
        "path": path,
        "tree": tree,
        "entries": int(ttree.num_entries),
        "size": Path(path).stat().st_size,
        "uuid": str(ttree.file.uuid),
    }
    try:
        if step_size is not None:
            clusters = [int(x) for x in ttree.common_entry_offsets()]
            record["chunk_size"], record["chunks"] = step_size, chunks(clusters, step_size)
        if not is_data and (skimmed := _skimmed_from(path)):
            record.update(skimmed)
        elif not is_data:
            if "genWeight" not in ttree:
                raise InputError(
                    f"{where}: MC file without a 'genWeight' branch; if this is collision data "
                    "set 'is_data: true' for the dataset"
                )
            sumw, sumw2 = 0.0, 0.0
            for chunk in ttree.iterate(
                ["genWeight"], library="np", step_size="100 MB", report=True
            ):
                arrays, report = chunk
                check_finite_weights(arrays["genWeight"], where, int(report.tree_entry_start))
                chunk_sums = weight_sums(arrays["genWeight"])
                sumw, sumw2 = sumw + chunk_sums[0], sumw2 + chunk_sums[1]
            record["sumw"], record["sumw2"] = sumw, sumw2
    except READ_ERRORS as err:
        trees.forget(path, tree)
        raise InputError(f"{where}: damaged, cannot read genWeight ({err})") from None
    return record


def _inspect_parquet(
    path: str, source: Any, *, is_data: bool, step_size: int | None
) -> dict[str, Any]:
    """The record of a parquet file: one chunk (the whole file). For MC, the sum of genWeight
    of a skim's part is that of the events it was skimmed from (:func:`_skimmed_from`); a
    parquet file without a ledger sums its own genWeight."""
    record: dict[str, Any] = {
        "path": path,
        "tree": "parquet",
        "entries": source.num_entries,
        "size": Path(path).stat().st_size,
        "uuid": parquet.footprint(path),
    }
    if step_size is not None:
        record["chunk_size"], record["chunks"] = step_size, [[0, source.num_entries]]
    if not is_data and (skimmed := _skimmed_from(path)):
        record.update(skimmed)
    elif not is_data:
        import awkward as ak

        w = ak.from_parquet(path, columns=["genWeight"])["genWeight"]
        check_finite_weights(ak.to_numpy(w), f"file {path!r}", 0)
        record["sumw"], record["sumw2"] = weight_sums(w)
    return record


def _skimmed_from(path: str) -> dict[str, float]:
    """For a part of a brewflow skim (parquet or ROOT), the sums of genWeight of the events it
    was selected from (its ledger, :mod:`brewflow.jobs.skims`): normalisation is the original's.
    Empty for any other file."""
    from brewflow.jobs import skims

    part = skims.part_of(path)
    return {} if part is None else {"sumw": part["sumw"], "sumw2": part["sumw2"]}


def _cached_inspect(
    path: str, tree: str, *, is_data: bool, dataset: str, step_size: int, cache: Path | None
) -> dict[str, Any]:
    """:func:`inspect_file`, reusing the record kept in ``cache`` while the file is unchanged
    (same absolute path, size and modification time; same tree, kind and step size)."""
    if cache is None:
        return inspect_file(path, tree, is_data=is_data, dataset=dataset, step_size=step_size)
    try:
        size, mtime_ns = trees.signature(path)
    except OSError as err:
        raise InputError(f"dataset {dataset!r}, file {path!r}: {err.strerror}") from err
    identity = [os.path.abspath(path), size, mtime_ns, tree, is_data, step_size]
    key = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:32]
    entry = cache / f"{key}.json"
    try:
        record = json.loads(entry.read_text())
        if record.get("path") == path:
            log.debug("%s: reusing the inventory of %s", dataset, path)
            return record
    except (OSError, ValueError):
        pass  # not cached yet, or a damaged entry: inspect again
    record = inspect_file(path, tree, is_data=is_data, dataset=dataset, step_size=step_size)
    atomic_write(entry, json.dumps(record, sort_keys=True) + "\n")
    return record


def preprocess(config: Mapping, dataset: str, *, cache: Path | None = None) -> dict[str, Any]:
    """Inventory of a dataset's files (globs expanded), in a JSON-serialisable dict: per file
    entries, size, UUID, sums of weights (MC) and chunks of ``step_size`` events at cluster
    boundaries (what the analysis partitions are).

    With ``cache`` (a folder; the workflow uses :data:`CACHE`), each file's record is kept
    there and reused while the file is unchanged, so adding files to a dataset inspects only
    the new ones."""
    spec = dataset_spec(config, dataset)
    tree = spec.get("tree", config["tree"])
    step = config["step_size"]
    paths = dataset_files(config, dataset)
    policy = on_bad_file(config, dataset)
    files, skipped = [], []
    for i, path in enumerate(paths):
        try:
            record = _cached_inspect(
                path, tree, is_data=spec["is_data"], dataset=dataset, step_size=step, cache=cache
            )
        except InputError as err:
            if policy == "fail":
                raise InputError(f"{err}{SKIP_HINT}") from None
            log.warning("skipping (on_bad_file: skip): %s", err)
            skipped.append({"path": path, "reason": str(err)})
            continue
        files.append(record)
        if len(paths) > 20 and (i + 1) % max(1, len(paths) // 10) == 0:
            log.info("%s: %d/%d files inventoried", dataset, i + 1, len(paths))
    if not files:
        raise InputError(f"dataset {dataset!r}: none of its {len(paths)} file(s) is readable")
    _refuse_copies(dataset, files)
    out: dict[str, Any] = {
        "dataset": dataset,
        "is_data": spec["is_data"],
        "entries": sum(f["entries"] for f in files),
        "files": files,
        "skipped": skipped,
    }
    out["provenance"] = provenance.record(inputs=files)
    if not spec["is_data"]:
        out["sumw"] = sum(f["sumw"] for f in files)
        if out["sumw"] == 0 and out["entries"] > 0:
            raise InputError(
                f"dataset {dataset!r}: the sum of genWeight over {out['entries']} events is "
                "zero; cannot normalise to the cross section (is genWeight filled?)"
            )
    log.info(
        "%s: %d files, %d events%s",
        dataset,
        len(files),
        out["entries"],
        f", {len(skipped)} file(s) skipped" if skipped else "",
    )
    return out


def _refuse_copies(dataset: str, files: Sequence[Mapping[str, Any]]) -> None:
    """Two files with one ROOT UUID are copies of one file (``cp``, a second download): their
    events would be counted twice. Refused naming both (validation already refuses two names of
    one file)."""
    seen: dict[str, str] = {}
    for record in files:
        first = seen.setdefault(record["uuid"], record["path"])
        if first != record["path"]:
            raise InputError(
                f"dataset {dataset!r}: files {first!r} and {record['path']!r} are copies of one "
                f"file (same ROOT UUID {record['uuid']}); its events would be counted twice: "
                "list one of them"
            )
