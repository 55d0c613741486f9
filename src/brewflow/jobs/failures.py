"""A job that failed for its configuration is not run again until its spec changes.

A :class:`~brewflow.errors.ConfigError` (a cut, variable or weight the analysis does not
define; a wrong correction name) fails the same way every time: :func:`not_repeated` records
it under ``.brewflow/failed/`` with the job's spec fingerprint (config and code), and a retry
of that job with the same spec (Snakemake's ``retries``, or a later run) stops at once with
the same message instead of reading data again. Editing the config or the analysis code
changes the fingerprint: the job then runs.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

from brewflow.config.specs import JobSpec
from brewflow.errors import ConfigError
from brewflow.files import atomic_write

__all__ = ["FAILED", "not_repeated"]

FAILED = Path(".brewflow") / "failed"


@contextlib.contextmanager
def not_repeated(spec: JobSpec, name: str, folder: Path = FAILED) -> Iterator[None]:
    """Run the body of the job ``name`` of ``spec``, unless the same spec failed with a
    configuration error before (raised again at once); record such a failure."""
    path = folder / spec.kind / f"{name}.json"
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
