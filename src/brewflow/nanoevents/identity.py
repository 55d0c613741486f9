"""A file's identity read from the file itself, and the on-disk caches verified against it.

A cache is a hint, never a source. Every cache brewflow keeps on disk (the tree descriptions
of :mod:`.metadata`, preprocessing's per-file records in :mod:`brewflow.jobs.preprocess`) is
a :class:`VerifiedCache`: an entry is keyed by, and holds, the identity of the file it
describes (:func:`file_identity`): the ROOT file's UUID and length (``fEND``) and the position
of the tree's key, read from its header and top directory (a few hundred bytes, for a local
file too), and for a local file also its real path, device, inode, size, modification and
change times (``ctime`` changes with every write and cannot be set back, unlike ``mtime``).
Each entry holds the SHA-256 of its body, as brewflow's result documents do. An entry is used
only when its checksum, kind, layout version and stored identity all match and its value
passes the caller's consistency check; anything else (a file rewritten, replaced or copied, an
entry truncated, edited or moved) is a miss: computed again and written again.

A checksum is no signature: whoever can write the cache folder can write an entry with a valid
checksum. What such an entry claims is checked again where it matters (the reader compares
each tree's real number of entries with the number the graph was built for, and drops the
entry on a mismatch: :mod:`.reader`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uproot

from brewflow.files import atomic_write
from brewflow.locations import RemoteSettings, is_url
from brewflow.nanoevents import parquet, remote

__all__ = ["VerifiedCache", "file_identity"]

log = logging.getLogger(__name__)

_CHECKSUM = '{"checksum":"sha256:'
_UNREADABLE: tuple[type[BaseException], ...] = (*remote.READ_ERRORS, ValueError, KeyError)
"""What reading a local file's identity may raise: missing, not ROOT, no such tree, damaged."""


def file_identity(
    path: str, tree: str, settings: RemoteSettings | None = None
) -> dict[str, Any] | None:
    """What says ``path`` (a local path or a URL) is the file a cache entry describes: its ROOT
    ``uuid``, ``end`` (``fEND``) and the ``seek`` position of ``tree``'s key, from its header;
    for a local file also ``path`` (real), ``device``, ``inode``, ``size``, ``mtime_ns`` and
    ``ctime_ns`` (a parquet file: its footer's footprint instead of the ROOT header). None for a
    local file that cannot be read now or changes while it is read (never cached); a URL's
    errors are raised (the caller tries the next replica)."""
    if is_url(path):
        with remote.open_file(path, settings) as handle:
            try:
                return _header(handle, tree)
            except KeyError:  # no such tree: opening it says so
                return None
    try:
        before = _stat(path)
        if parquet.is_parquet(path):  # pyarrow's errors are OSErrors and ValueErrors
            found: dict[str, Any] = {"footprint": parquet.footprint(path)}
        else:
            with uproot.open(path) as handle:
                found = _header(handle, tree)
        after = _stat(path)
    except _UNREADABLE as err:
        log.debug("no identity for %s (not cached): %s", path, err)
        return None
    return {**found, **after} if before == after else None


def _header(handle: Any, tree: str) -> dict[str, Any]:
    file = handle.file
    return {"uuid": str(file.uuid), "end": int(file.fEND), "seek": int(handle.key(tree).fSeekKey)}


def _stat(path: str) -> dict[str, Any]:
    stat = os.stat(path)
    return {"path": os.path.realpath(path), "device": stat.st_dev, "inode": stat.st_ino,
            "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "ctime_ns": stat.st_ctime_ns}  # fmt: skip


class VerifiedCache:
    """A folder of JSON entries of one ``kind`` (layout ``version``), each keyed by and verified
    against an identity (a JSON-serialisable value: :func:`file_identity` and what else the
    value depends on). ``folder`` None: no cache (every lookup misses, nothing is written)."""

    def __init__(self, folder: Path | None, kind: str, version: int) -> None:
        self.folder, self.kind, self.version = folder, kind, version

    def entry(self, identity: Any) -> Path | None:
        """The file of ``identity``'s entry (None without a folder)."""
        if self.folder is None:
            return None
        text = json.dumps([self.kind, self.version, identity], sort_keys=True)
        return self.folder / f"{hashlib.sha256(text.encode()).hexdigest()}.json"

    def load(self, identity: Any, check: Callable[[Any], bool] | None = None) -> Any | None:
        """The value stored for ``identity``, or None: no entry, or one that is damaged, of
        another kind or layout, stored for another identity, or whose value fails ``check``
        (a miss, logged)."""
        entry = self.entry(identity)
        if entry is None:
            return None
        try:
            text = entry.read_text()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as err:
            log.debug("ignoring the unreadable cache entry %s: %s", entry, err)
            return None
        reason = _verify(text, self.kind, self.version, identity)
        if isinstance(reason, str):
            log.info("ignoring the cache entry %s: %s", entry, reason)
            return None
        value = reason["value"]
        try:
            consistent = check is None or check(value)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError):
            consistent = False
        if not consistent:
            log.info("ignoring the cache entry %s: its content is inconsistent", entry)
            return None
        return value

    def store(self, identity: Any, value: Any) -> None:
        """Keep ``value`` for ``identity`` (atomically, checksummed); a cache that cannot be
        written is skipped (logged)."""
        entry = self.entry(identity)
        if entry is None or identity is None:
            return
        document = {"identity": identity, "kind": self.kind, "value": value,
                    "version": self.version}  # fmt: skip
        body = json.dumps(document, sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(body.encode()).hexdigest()
        try:
            atomic_write(entry, f'{_CHECKSUM}{digest}",{body[1:]}\n')
        except OSError as err:  # a read-only or full disk: go on without the cache
            log.debug("cannot write the cache entry %s: %s", entry, err)

    def drop(self, identity: Any) -> None:
        """Remove ``identity``'s entry (e.g. one the file contradicted); quietly if absent."""
        entry = self.entry(identity)
        if entry is not None:
            try:
                entry.unlink(missing_ok=True)
            except OSError as err:
                log.debug("cannot remove the cache entry %s: %s", entry, err)


def _verify(text: str, kind: str, version: int, identity: Any) -> dict[str, Any] | str:
    """The entry's document when ``text`` is intact and made for ``identity``; else why not."""
    if not text.startswith(_CHECKSUM):
        return "no checksum (damaged, or not brewflow's)"
    start = len(_CHECKSUM)
    digest, body = text[start : start + 64], "{" + text[start + 66 :].rstrip("\n")
    if hashlib.sha256(body.encode()).hexdigest() != digest:
        return "checksum mismatch (truncated or edited)"
    try:
        document = json.loads(body)
    except ValueError:
        return "not JSON"
    if not isinstance(document, dict) or "value" not in document:
        return "not a cache entry"
    if (document.get("kind"), document.get("version")) != (kind, version):
        return "another kind or layout version"
    if document.get("identity") != json.loads(json.dumps(identity)):
        return "made for another file (or another version of it)"
    return document
