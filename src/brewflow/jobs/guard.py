"""What every job of a run does around its work: it never repeats a configuration failure,
and it never leaves an output that looks made from a spec it was not made from.

- A :class:`~brewflow.errors.ConfigError` (a cut, variable or weight the analysis does not
  define; a wrong correction name) fails the same way every time: it is recorded under
  ``.brewflow/failed/`` with the job's spec fingerprint (config and code), and a retry with the
  same spec (Snakemake's ``retries``, or a later run) stops at once with the same message
  instead of reading data again. Editing the config or the code changes the fingerprint.
- Snakemake decides a job is up to date when its outputs are newer than its spec file
  (:func:`brewflow.pipeline.spec_file`), which every DAG build rewrites when the spec changed:
  also a dry run or a run refused by the lock while this job runs. So a job compares, when it
  ends, the spec file with the spec it ran (from the run's resolved config): when they differ
  it fails (:class:`SpecChanged`), so that no output looks made from a spec it was not made
  from; the next run makes them.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path

from brewflow.config.specs import JobSpec, spec_path
from brewflow.errors import BrewflowError, ConfigError
from brewflow.files import atomic_write

__all__ = ["FAILED", "SpecChanged", "guarded"]

FAILED = Path(".brewflow") / "failed"

log = logging.getLogger(__name__)


class SpecChanged(BrewflowError):
    """The spec a job was planned with changed while it ran: its outputs are refused (the
    failed job's outputs are removed by Snakemake), the next run makes them again."""


@contextlib.contextmanager
def guarded(
    spec: JobSpec, name: str | None = None, folder: Path = FAILED, *, planned: bool = True
) -> Iterator[None]:
    """Run the body of the job of ``spec`` (``name``: its file in ``folder``, default its
    spec file's name): unless the same spec failed with a configuration error before (raised
    again at once); recording such a failure; and, once the body is done, with ``planned``
    (a job of the workflow, not one run by hand on another config), checking its planned
    spec file (see the module doc)."""
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
    if not planned:
        return
    plan = spec_path(spec.kind, **spec.params)
    try:
        text = plan.read_text()
    except FileNotFoundError:
        return  # the workflow planned it in another folder
    if text != spec.document():
        raise SpecChanged(
            f"the config or the code changed while this job ran ({plan} holds another "
            "spec: a dry run or a second run planned another config); its outputs would not "
            "match it: run snakemake again"
        )
