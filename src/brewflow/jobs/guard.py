"""What every job of a run does around its work: it never repeats a configuration failure,
and it never leaves an output that looks made from a spec it was not made from.

- A :class:`~brewflow.errors.ConfigError` (a cut, variable or weight the analysis does not
  define; a wrong correction name) fails the same way every time: it is recorded under
  ``.brewflow/failed/`` with the job's spec fingerprint (config and code), and a retry with the
  same spec (Snakemake's ``retries``, or a later run) stops at once with the same message
  instead of reading data again. Editing the config or the code changes the fingerprint.
- Snakemake decides a job is up to date when its outputs are newer than its spec file
  (:func:`brewflow.pipeline.spec_file`). When the job ends, it records which spec its outputs
  were made from (``.brewflow/made/``), so that the next DAG build knows, whatever other DAG
  builds (a dry run, a second run refused by the lock) did to the spec file meanwhile.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path

from brewflow.config.specs import JobSpec, made_path, spec_path
from brewflow.errors import ConfigError
from brewflow.files import atomic_write

__all__ = ["FAILED", "guarded"]

FAILED = Path(".brewflow") / "failed"

log = logging.getLogger(__name__)


@contextlib.contextmanager
def guarded(
    spec: JobSpec, name: str | None = None, folder: Path = FAILED, *, planned: bool = True
) -> Iterator[None]:
    """Run the body of the job of ``spec`` (``name``: its file in ``folder``, default its
    spec file's name): unless the same spec failed with a configuration error before (raised
    again at once); recording such a failure; and, once the body is done, with ``planned``
    (a job of the workflow, not one run by hand on another config), recording the spec its
    outputs were made from (see the module doc)."""
    path = folder / spec.kind / f"{name or spec_path(spec.kind, **spec.params).stem}.json"
    fingerprint = spec.fingerprint()
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        record = None
    if isinstance(record, dict) and record.get("spec") == fingerprint:
        raise ConfigError(f"{record.get('error')} (failed before with this same config and "
                          "code: not run again until one of them changes)")  # fmt: skip
    try:
        yield
    except ConfigError as err:
        atomic_write(path, json.dumps({"spec": fingerprint, "error": str(err)}) + "\n")
        raise
    path.unlink(missing_ok=True)
    if planned:
        _record_made(spec, fingerprint)


def _record_made(spec: JobSpec, fingerprint: str) -> None:
    """Record that the outputs of the job were made from ``spec`` (what its spec file's time
    is then), for the next DAG build (:func:`brewflow.pipeline.spec_file`)."""
    plan = spec_path(spec.kind, **spec.params)
    try:
        when = plan.stat().st_mtime_ns
    except FileNotFoundError:
        return  # the workflow planned it in another folder
    atomic_write(made_path(plan), json.dumps({"spec": fingerprint, "mtime_ns": when}) + "\n")
