"""The workflow's cache of analyze pieces: a file's (or a chunk's) histograms and counts, kept
so that a job rerun after files were added, or to fill in chunks skipped before, computes only
what it has not computed yet (:mod:`brewflow.jobs.pieces` fixes the order they add up in).

A piece is a hint, never a source: it is a :class:`~brewflow.nanoevents.identity.VerifiedCache`
entry keyed by everything its value depends on, and used only when all of it matches:

- the job: the analyze spec's config (:mod:`brewflow.config.specs`), the identity of the code
  (brewflow, packages, the analysis's modules and files), the content of every payload file the
  job reads (golden JSON, corrections, models), the dataset and the systematics;
- the file: its identity read from the file itself for a local file
  (:func:`~brewflow.nanoevents.identity.file_identity`: ROOT UUID and length, real path, inode,
  size, modification and change times), the ROOT UUID and entries of a remote one (which the
  job's preflight has just checked against the file at its replica); the tree;
- the chunks (entry ranges) the piece sums.

A file the job cannot open now (its preflight failed) gives no piece: its events are skipped
like any bad file's, never taken from the cache.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from brewflow.code import brewflow_identity, file_digests, package_versions
from brewflow.config import payload_files
from brewflow.config.projections import SETTINGS
from brewflow.jobs.pieces import Piece
from brewflow.locations import is_url
from brewflow.nanoevents.identity import VerifiedCache, file_identity
from brewflow.secrets import redact

__all__ = ["CACHE", "PieceCache"]

CACHE = Path(".brewflow") / "cache" / "analyze"
"""Where a run keeps its analyze pieces (relative to the run's folder)."""

VERSION = 1
"""Of the pieces' layout."""


LOCATION = ("files", "files_from", "redirectors")
"""A dataset's keys that say which files it has and where: not in the job's identity (each
piece names its file), so that adding a file leaves the other files' pieces valid."""


def job_identity(config: Mapping, dataset: str, systematics: Sequence[str], code: Any) -> str:
    """SHA-256 of what every piece of an analyze job depends on besides its file: the job's
    config (execution settings and the dataset's file list left out), the code's identity
    (``code``: the analysis's modules and files), the payload files' content, the dataset and
    the systematics."""
    settings = {k: v for k, v in config.items() if k not in SETTINGS}
    entry = settings["datasets"][dataset]
    settings["datasets"] = {dataset: {k: v for k, v in entry.items() if k not in LOCATION}}
    document = {
        "config": settings,
        "code": {"brewflow": brewflow_identity(), "packages": package_versions(), "analysis": code},
        "payloads": file_digests(payload_files(config, dataset)),
        "dataset": dataset,
        "systematics": list(systematics),
    }
    text = json.dumps(document, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class PieceCache:
    """The pieces of one analyze job (its :func:`job_identity` ``job``) in ``folder`` (None:
    nothing is kept or found)."""

    def __init__(self, folder: Path | None, job: str) -> None:
        self.entries = VerifiedCache(folder, "analyze-piece", VERSION)
        self.job = job
        self._files: dict[str, Any] = {}

    @property
    def enabled(self) -> bool:
        """Whether pieces are kept and found."""
        return self.entries.folder is not None

    def _file(self, record: Mapping[str, Any]) -> Any:
        """What says this is the file the record describes (None: cannot be told; no piece)."""
        path = record["path"]
        if path not in self._files:
            if record.get("replicas") and is_url(record["replicas"][0]):  # (not
                # locations.reads_remotely: a direct URL's own header says what it is; which
                # of several replicas is read is known only then, each checked against the
                # inventory's UUID when read)
                found: Any = {"uuid": record.get("uuid"), "entries": record["entries"]}
            else:
                found = file_identity(path, record["tree"])
            self._files[path] = found
        return self._files[path]

    def _identity(self, record: Mapping[str, Any], chunks: Sequence[Sequence[int]]) -> Any:
        found = self._file(record)
        if found is None or self.entries.folder is None:
            return None
        identity = [self.job, record["path"], record["tree"], found, [list(c) for c in chunks]]
        return json.loads(redact(json.dumps(identity)))  # as stored: no credential on disk

    def has(self, record: Mapping[str, Any], chunks: Sequence[Sequence[int]]) -> bool:
        """Whether the cache has an intact piece of ``chunks`` of ``record``'s file."""
        identity = self._identity(record, chunks)
        return identity is not None and self.entries.load(identity, _is_piece) is not None

    def load(self, record: Mapping[str, Any], chunks: Sequence[Sequence[int]]) -> Piece | None:
        """The piece of ``chunks`` of ``record``'s file (one chunk, or all the chunks the job
        reads of it), or None."""
        identity = self._identity(record, chunks)
        if identity is None:
            return None
        value = self.entries.load(identity, _is_piece)
        return None if value is None else _decoded(value)

    def store(
        self, record: Mapping[str, Any], chunks: Sequence[Sequence[int]], piece: Piece
    ) -> None:
        """Keep ``piece`` as the value of ``chunks`` of ``record``'s file."""
        identity = self._identity(record, chunks)
        if identity is not None:
            self.entries.store(identity, _encoded(piece))


def _is_piece(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(v, dict) and ("histogram" in v or "value" in v) for v in value.values()
    )


def _encoded(piece: Piece) -> dict[str, Any]:
    """The piece as JSON, credentials in its replicas' URLs redacted (as they are on disk:
    the entry's checksum is of what is stored)."""
    import uhi.io.json

    encoded = {
        name: {"histogram": json.loads(json.dumps(value, default=uhi.io.json.default))}
        if hasattr(value, "axes") else {"value": value}
        for name, value in piece.items()
    }  # fmt: skip
    return json.loads(redact(json.dumps(encoded)))


def _decoded(value: Mapping[str, Any]) -> Piece:
    import hist

    from brewflow.results.model import _decode

    return {
        name: hist.Hist(_decode(item["histogram"])) if "histogram" in item else item["value"]
        for name, item in value.items()
    }
