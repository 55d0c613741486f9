"""Measured analyze rates: what an analyze job asks a batch system for, from what it took before.

Each analyze job records, when it ends, the events it read per second and thread
(``.brewflow/rates/<dataset>.<systematics>.json``: ``all`` for a fused job, else its
systematic), and :func:`brewflow.pipeline.analyze_resources` derives a job's runtime request
from its own measured rate where there is one (else config key
``resources.events_per_second``). A hint for the scheduler only: it changes what a job asks
for, never what it computes (no job's spec or inputs read it), and a record that is not a
positive rate is ignored.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from brewflow.files import atomic_write

__all__ = ["RATES", "measured", "record"]

RATES = Path(".brewflow") / "rates"


def _path(dataset: str, systematics: str, folder: Path | None) -> Path:
    return (RATES if folder is None else folder) / f"{dataset}.{systematics}.json"


def record(
    dataset: str, systematics: str, events: int, seconds: float, threads: int,
    folder: Path | None = None,
) -> None:  # fmt: skip
    """Keep the rate of a finished job (jobs that read nothing, or took no time, teach
    nothing and are not kept)."""
    if events <= 0 or seconds <= 0 or threads <= 0:
        return
    path = _path(dataset, systematics, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"events": int(events), "seconds": round(seconds, 3), "threads": int(threads)}
    atomic_write(path, json.dumps(document) + "\n")


def measured(dataset: str, systematics: str, folder: Path | None = None) -> float | None:
    """Events per second and thread the last job of ``dataset`` x ``systematics`` read, or
    None (never measured, or a record that does not hold a positive rate)."""
    try:
        document = json.loads(_path(dataset, systematics, folder).read_text())
        rate = document["events"] / (document["seconds"] * document["threads"])
    except (OSError, ValueError, KeyError, TypeError, ZeroDivisionError):
        return None
    return rate if math.isfinite(rate) and rate > 0 else None
