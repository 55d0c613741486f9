"""A dataset's inventory (what ``preprocess`` writes): its files with entries, chunks, ROOT UUID
and sum of generator weights; and the chunk groups that ``events_per_job`` makes of it.
Standard library only: the Snakefile reads inventories to plan the analyze jobs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from brewflow.results.documents import read_document, write_document

__all__ = ["group_chunks", "read_inventory", "write_inventory"]


def group_chunks(
    files: Sequence[Mapping[str, Any]], events_per_job: int | None
) -> list[list[dict]]:
    """The dataset's chunks in job-sized groups: each group is a list of file records (copies)
    whose ``chunks`` are the ones the job reads. Whole chunks, in file order, at least
    ``events_per_job`` events per group (the last may be smaller); every chunk is in exactly one
    group. ``events_per_job=None``: one group with everything."""
    out: list[list[dict]] = [[]]
    size = 0
    for record in files:
        for start, stop in record.get("chunks") or [[0, record["entries"]]]:
            if events_per_job is not None and size >= events_per_job:
                out.append([])
                size = 0
            group = out[-1]
            if not group or group[-1]["path"] != record["path"]:
                group.append({**record, "chunks": []})
            group[-1]["chunks"].append([start, stop])
            size += stop - start
    return out


def write_inventory(inventory: Mapping[str, Any], path: str | Path) -> None:
    """Write an inventory as JSON (atomically, with a checksum)."""
    write_document(path, dict(inventory))


def read_inventory(path: str | Path) -> dict[str, Any]:
    """Read an inventory written by :func:`write_inventory` (checksum verified)."""
    return read_document(path, what="brewflow inventory")
