"""Analyze jobs that skipped chunks (``on_bad_file: skip``), so that a later run fills them in.

A workflow's analyze job that skipped chunks of remote files leaves a note,
``.brewflow/incomplete/analyze/<dataset>/<job>.json``, naming the spec it ran for; one that
read everything removes its note. When a run is planned, the spec file of a dataset with a note
for its current spec is marked for a rerun (:func:`brewflow.config.specfiles.spec_file`):
Snakemake reruns the dataset's analyze jobs, which take every chunk computed before from the
cache of pieces (:mod:`brewflow.jobs.piececache`) and read only the chunks skipped, now that
their replica may answer again. Until they are all read, each run tries again, up to
:data:`ATTEMPTS` runs in a row that skip the same chunks.

Standard library only: the Snakefile imports it to plan a run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from brewflow.files import atomic_write

__all__ = ["ATTEMPTS", "INCOMPLETE", "newest", "record"]

INCOMPLETE = Path(".brewflow") / "incomplete" / "analyze"
"""Where a run keeps the notes of its analyze jobs that skipped chunks."""


ATTEMPTS = 3
"""Runs in a row that may skip the same chunks before they are no longer retried by themselves
(a file broken at its site, not a server down: ``snakemake --forcerun`` the job to retry)."""


def record(dataset: str, job: str, spec: str, skipped: list[list[Any]]) -> int:
    """Note (``skipped``: ``[path, start, stop]`` of the chunks of remote files the job
    skipped) or clear (none) that analyze job ``job`` of ``dataset``, made for the spec with
    fingerprint ``spec``, skipped chunks a later run may read. Returns how many runs in a row
    skipped these chunks (0: cleared); from :data:`ATTEMPTS` on, the note no longer asks for
    a rerun. Chunks of local files are not noted: a file fixed in place is a new input, which
    reruns its jobs anyway."""
    note = INCOMPLETE / dataset / f"{job}.json"
    if not skipped:
        note.unlink(missing_ok=True)
        return 0
    chunks = sorted(skipped)
    try:
        before = json.loads(note.read_text())
    except (OSError, ValueError):
        before = {}
    same = isinstance(before, dict) and before.get("spec") == spec and before.get(
        "chunks") == chunks  # fmt: skip
    attempts = int(before.get("attempts", 0)) + 1 if same else 1
    atomic_write(note, json.dumps({"spec": spec, "chunks": chunks, "attempts": attempts}) + "\n")
    return attempts


def newest(dataset: str, spec: str) -> int | None:
    """When (ns) the newest note of ``dataset``'s analyze jobs made for ``spec`` was written;
    None without one (notes for another spec are of jobs made from an older config, which
    rerun anyway, or no longer planned)."""
    try:
        entries = list(os.scandir(INCOMPLETE / dataset))
    except OSError:
        return None
    times = []
    for entry in entries:
        try:
            note = json.loads(Path(entry.path).read_text())
            if (isinstance(note, dict) and note.get("spec") == spec
                    and int(note.get("attempts", 1)) < ATTEMPTS):  # fmt: skip
                times.append(entry.stat().st_mtime_ns)
        except (OSError, ValueError):
            continue
    return max(times, default=None)
