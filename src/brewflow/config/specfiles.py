"""Spec files: a job's spec as a rule's input file, whose time says what its outputs are up to
date with (:func:`spec_file`). Standard library only: the Snakefile imports it to plan a run.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from brewflow.config import incomplete
from brewflow.config.specs import JobSpec, job_spec, made_path, spec_path
from brewflow.files import atomic_write

__all__ = ["RERUN_MARK", "planning", "spec_file"]


def spec_file(config: Mapping, kind: str, **params: Any) -> str:
    """The file holding the spec of the ``kind`` job with ``params``
    (:func:`brewflow.config.specs.job_spec`: the part of the config it reads and the identity
    of its code): a rule's input, so that Snakemake reruns the job when its spec changes.

    Its modification time says what the job's outputs are up to date with, decided against
    the spec they were made from (recorded by each job when it ends,
    :func:`brewflow.jobs.guard.guarded`, in :data:`brewflow.config.specs.MADE`):

    - made from this spec: the file is kept (its content rewritten if another DAG build
      wrote another, its time set back to what it was when they were made), so a dry run or a
      second run refused by the lock, planned with another config, leaves the jobs up to date;
    - made from another spec: the file is written now, newer than the outputs: they rerun
      (also when that other spec's run made them after this config was last planned), unless
      it already holds this spec, written after they were made (then its time decides: a
      ``snakemake --touch`` after the edit makes them up to date);
    - no record (a new checkout, ``.brewflow`` removed, outputs ``snakemake --touch``-ed):
      written now when missing or when it holds another spec, else kept;
    - an analyze job of this spec skipped chunks (:mod:`brewflow.config.incomplete`): written
      now with a fill-in mark, unless it already holds one written after that job ended, so
      that the dataset's analyze jobs rerun and read the chunks skipped.

    Rules carry their config dependencies this way rather than as ``params``: Snakemake compares
    params through pandas whenever pandas is installed, which costs every DAG build 0.5 s.
    The file is decided at every call (the spec itself is computed once for the config a DAG
    build plans: :func:`planning`).
    """
    path = spec_path(kind, **params)
    spec = _job_spec(config, kind, params)
    text = spec.document()
    try:
        current: str | None = path.read_text()
    except FileNotFoundError:
        current = None
    planned = None if current is None else current.split(RERUN_MARK, 1)[0]  # the spec it holds
    made, recorded = _made(path)
    if kind == "analyze" and _fill_in(path, current, spec, params["dataset"]):
        return str(path)
    if made is not None and made.get("spec") == spec.fingerprint():
        if current != text:
            atomic_write(path, text)
        when = made.get("mtime_ns")
        if isinstance(when, int) and path.stat().st_mtime_ns != when:
            os.utime(path, ns=(when, when))  # what the outputs are up to date with
    elif made is not None and (planned != text or path.stat().st_mtime_ns <= recorded):
        # made from another spec: newer than the outputs, and other bytes than Snakemake
        # recorded when they were made (it reruns a job for a newer input only when its
        # checksum differs), so they rerun
        rerun = {"outputs_made_from": made.get("spec"), "planned_ns": time.time_ns()}
        atomic_write(path, f"{text}{RERUN_MARK}{json.dumps(rerun)}\n")
    elif planned != text:
        atomic_write(path, text)  # newer than any output: they rerun
    return str(path)


_PLANNED: list[Mapping] = []
"""The config a DAG build plans (:func:`planning`): its job specs are computed once."""

_SPECS: dict[tuple, JobSpec] = {}
"""``(kind, params)`` -> the job spec of the planned config, computed in this process."""


def planning(config: Mapping) -> None:
    """``config`` is the one a DAG build plans and nothing edits from now on: the spec of
    each of its jobs is computed once (a 10k-job DAG asks for a dataset's spec once a job)."""
    _PLANNED[:] = [config]
    _SPECS.clear()


def _job_spec(config: Mapping, kind: str, params: Mapping[str, Any]) -> JobSpec:
    """:func:`~brewflow.config.specs.job_spec`; once per process for the planned config,
    every time for any other."""
    if not _PLANNED or _PLANNED[0] is not config:
        return job_spec(kind, config, **params)
    key = (kind, tuple(sorted(params.items())))
    if key not in _SPECS:
        _SPECS[key] = job_spec(kind, config, **params)
    return _SPECS[key]


def _fill_in(path: Path, current: str | None, spec: JobSpec, dataset: str) -> bool:
    """Mark ``dataset``'s analyze spec file for a rerun when one of its jobs skipped chunks
    after it was last marked (whether the file holds a fill-in mark)."""
    fingerprint = spec.fingerprint()
    skipped = incomplete.newest(dataset, fingerprint)
    if skipped is None:
        return False
    note = {} if current is None or RERUN_MARK not in current else _note(current)
    if note.get("fill_in") == fingerprint and note.get("planned_ns", 0) > skipped:
        return True  # marked after that job ended: the outputs are older, they rerun
    rerun = {"fill_in": fingerprint, "planned_ns": time.time_ns()}
    atomic_write(path, f"{spec.document()}{RERUN_MARK}{json.dumps(rerun)}\n")
    return True


def _note(current: str) -> dict[str, Any]:
    try:
        note = json.loads(current.split(RERUN_MARK, 1)[1])
    except ValueError:
        return {}
    return note if isinstance(note, dict) else {}


RERUN_MARK = "\n# rerun: "
"""Where a spec file's note of a forced rerun starts (after the spec's JSON)."""


def _made(spec: Path) -> tuple[dict | None, int]:
    """The record of what the outputs of ``spec``'s jobs were made from, and when it was
    written (None, 0 without). A spec file written after that for another spec was planned
    after those outputs were made: its time decides, as Snakemake's rule is (outputs touched
    by ``snakemake --touch`` are up to date)."""
    record = made_path(spec)
    try:
        made = json.loads(record.read_text())
        recorded = record.stat().st_mtime_ns
    except (OSError, ValueError):
        return None, 0
    return (made, recorded) if isinstance(made, dict) else (None, 0)
