"""Analyze jobs that skipped chunks (``on_bad_file: skip``), so that a later run fills them in.

A workflow's analyze job that skipped chunks leaves a note,
``.brewflow/incomplete/analyze/<dataset>/<job>.json``, naming the spec it ran for; one that
read everything removes its note. When a run is planned, the spec file of a dataset with a note
for its current spec is marked for a rerun (:func:`brewflow.config.specfiles.spec_file`):
Snakemake reruns the dataset's analyze jobs, which take every chunk computed before from the
cache of pieces (:mod:`brewflow.jobs.piececache`) and read only the chunks skipped, now that
their replica may answer again. Until they are all read, each run tries again.

Standard library only: the Snakefile imports it to plan a run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from brewflow.files import atomic_write

__all__ = ["INCOMPLETE", "newest", "record"]

INCOMPLETE = Path(".brewflow") / "incomplete" / "analyze"
"""Where a run keeps the notes of its analyze jobs that skipped chunks."""


def record(dataset: str, job: str, spec: str, skipped: int) -> None:
    """Note (``skipped`` > 0) or clear (0) that analyze job ``job`` of ``dataset``, made for
    the spec with fingerprint ``spec``, skipped chunks."""
    note = INCOMPLETE / dataset / f"{job}.json"
    if skipped:
        atomic_write(note, json.dumps({"spec": spec, "skipped_chunks": skipped}) + "\n")
    else:
        note.unlink(missing_ok=True)


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
            if isinstance(note, dict) and note.get("spec") == spec:
                times.append(entry.stat().st_mtime_ns)
        except (OSError, ValueError):
            continue
    return max(times, default=None)
