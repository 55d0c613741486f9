"""Preprocessing's cache of file records: a file's inventory record (entries, size, UUID,
chunks, sums of weights, runs) kept in a folder and reused while the file is the one it was
made from, so that adding files to a dataset inspects only the new ones.

A record is a hint, never a source: a :class:`~brewflow.nanoevents.identity.VerifiedCache`
entry keyed by and verified against the file's identity read from the file itself
(:func:`~brewflow.nanoevents.identity.file_identity`: ROOT UUID, length, tree key; a local
file's real path, inode, size, mtime and ctime; a remote file's name and replicas), with the
record's tree, kind (data or MC) and step size; and the record must agree with that identity
(UUID, size, chunks covering its entries). Anything else is inspected again; a record a file
contradicts later (an analyze job found other entries) is dropped (:func:`forget`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from brewflow.errors import InputError
from brewflow.locations import RemoteSettings, is_url
from brewflow.nanoevents import remote as nanoremote
from brewflow.nanoevents.identity import VerifiedCache, file_identity

__all__ = ["CACHE", "RECORD_VERSION", "cached", "forget"]

CACHE = Path(".brewflow") / "cache" / "preprocess"
"""Where the workflow's preprocessing keeps one record per file (relative to the working
directory)."""

log = logging.getLogger(__name__)


RECORD_VERSION = 3
"""Of the cached records' layout (2: keyed by the file's identity read from it; data runs;
3: a skim part's sum of genWeight marked as its ledger's)."""


def _records(cache: Path | None) -> VerifiedCache:
    return VerifiedCache(cache, "preprocess", RECORD_VERSION)


def _record_key(
    path: str,
    tree: str,
    *,
    is_data: bool,
    step_size: int,
    replicas: Sequence[str],
    remote: RemoteSettings,
    dataset: str,
) -> tuple[list[Any] | None, str | None]:
    """``(key, replica)``: what a file's cached record is keyed by and verified against, its
    identity read from the file itself (:func:`~brewflow.nanoevents.identity.file_identity`;
    a remote file's from its first replica that answers, ``replica``) with the record's tree,
    kind and step size; key None when a local file's identity cannot be read (not cached)."""
    if is_url(replicas[0]):
        found, replica = _remote_identity(path, replicas, tree, remote, dataset)
        key = None if found is None else [path, list(replicas), tree, is_data, step_size, found]
        return key, replica
    found = file_identity(path, tree)
    return (None if found is None else [path, tree, is_data, step_size, found]), None


def cached(
    inspect: Callable[[], dict[str, Any]],
    path: str,
    tree: str,
    *,
    is_data: bool,
    dataset: str,
    step_size: int,
    cache: Path,
    replicas: Sequence[str],
    remote: RemoteSettings,
) -> dict[str, Any]:
    """The record of file ``path`` kept in ``cache`` while it is intact and the file is the
    one it was made from (see the module doc); else ``inspect()``'s, then kept."""
    records = _records(cache)
    key, replica = _record_key(path, tree, is_data=is_data, step_size=step_size,
                               replicas=replicas, remote=remote, dataset=dataset)  # fmt: skip
    if key is None:
        return inspect()
    record = records.load(key, functools.partial(_consistent, path=path, found=key[-1]))
    if record is not None:
        log.debug("%s: reusing the inventory of %s", dataset, path)
        if "replica" in record:
            record["replica"] = replica
        return record
    record = inspect()
    records.store(key, record)
    return record


def _consistent(record: dict[str, Any], *, path: str, found: dict[str, Any]) -> bool:
    """Whether a cached record agrees with its file's identity: its path, UUID (a parquet
    file's footprint) and size, and chunks that cut ``[0, entries)`` in consecutive pieces."""
    entries, chunks = record["entries"], record.get("chunks")
    edges = [0, *(b for _, b in chunks or [])]
    return (
        record["path"] == path
        and record["uuid"] == found.get("uuid", found.get("footprint"))
        and record["size"] == found.get("size", found.get("end"))
        and isinstance(entries, int)
        and entries >= 0
        and (chunks is None or ([a for a, _ in chunks] == edges[:-1] and edges[-1] == entries))
    )


def forget(
    path: str,
    tree: str,
    *,
    is_data: bool,
    step_size: int,
    replicas: Sequence[str],
    remote: RemoteSettings,
    dataset: str,
    cache: Path | None = None,
) -> None:
    """Drop the cached record of a file (one the file contradicted: e.g. its entries when an
    analyze job opened it), from ``cache`` (default :data:`CACHE`), so that preprocessing
    inspects the file again. Raises :class:`InputError` where no replica of a remote file
    answers."""
    key, _ = _record_key(path, tree, is_data=is_data, step_size=step_size, replicas=replicas,
                         remote=remote, dataset=dataset)  # fmt: skip
    if key is not None:
        _records(CACHE if cache is None else cache).drop(key)


def _remote_identity(
    path: str, replicas: Sequence[str], tree: str, remote: RemoteSettings, dataset: str
) -> tuple[dict[str, Any] | None, str]:
    """``(identity, replica)`` of a remote file from the ROOT header of its first replica that
    answers (a few small reads; the tree's metadata is not parsed)."""
    try:
        found, replica, _ = nanoremote.with_failover(
            path, replicas, lambda url: file_identity(url, tree, remote), remote
        )
    except nanoremote.ReplicasFailed as err:
        raise InputError(f"dataset {dataset!r}, {err}") from None
    return found, replica
