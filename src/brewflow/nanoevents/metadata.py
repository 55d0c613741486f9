"""What building a graph needs to know of an event file, cached on disk by file identity.

Building the lazy events of a file needs its number of entries, its cluster edges and the
awkward form of its branches, not its baskets. Parsing that from a NanoAOD ``Events`` tree
costs 0.5-1 s (about 1500 ``TBranch`` objects); the second time a file is seen it comes from
a small JSON document instead (a safe format: nothing is unpickled or executed), so a graph
builds without parsing the tree at all, and reading a chunk later parses only the branches
it reads (:mod:`.partial`).

The cache is keyed by the file's identity: a local file by its real path, device, inode, size
and modification time (a file rewritten or replaced is a new entry); a URL by its ROOT file
UUID, its length (``fEND``) and the position of the tree's key, read from the file's header.
It lives in ``$BREWFLOW_CACHE`` (default ``$XDG_CACHE_HOME/brewflow``, else
``~/.cache/brewflow``), in ``trees/``; ``BREWFLOW_CACHE=off`` turns it off. A damaged or
foreign entry is ignored and written again; a cache that cannot be written is skipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import awkward as ak

from brewflow.files import atomic_write
from brewflow.locations import RemoteSettings, is_url
from brewflow.nanoevents import remote, trees
from brewflow.nanoevents.inputs import open_checked

__all__ = ["CACHE_ENV", "TreeInfo", "cache_dir", "describe", "identity"]

log = logging.getLogger(__name__)

CACHE_ENV = "BREWFLOW_CACHE"
VERSION = 1  # of the document's layout


@dataclass(frozen=True)
class TreeInfo:
    """A tree's entries, cluster edges (``[0, ..., entries]``) and branch form (a dict)."""

    entries: int
    clusters: list[int]
    form: dict

    def record_form(self) -> ak.forms.RecordForm:
        return ak.forms.from_dict(self.form)


def cache_dir() -> Path | None:
    """Where the documents are kept; None when the cache is off."""
    value = os.environ.get(CACHE_ENV)
    if value is not None and value.strip().lower() in ("", "0", "off", "none", "false"):
        return None
    if value:
        return Path(value) / "trees"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "brewflow" / "trees"


def identity(path: str, tree: str, settings: RemoteSettings | None = None) -> str:
    """A digest that changes whenever the file's content may have (see the module doc)."""
    if is_url(path):
        with remote.open_file(path, settings) as handle:  # the header and top directory
            key = handle.key(tree)
            file = handle.file
            parts: tuple = (path, str(file.uuid), int(file.fEND), int(key.fSeekKey))
    else:
        stat = os.stat(path)
        parts = (os.path.realpath(path), stat.st_dev, stat.st_ino, stat.st_size,
                 stat.st_mtime_ns)  # fmt: skip
    text = json.dumps([VERSION, tree, *parts])
    return hashlib.sha256(text.encode()).hexdigest()


def describe(path: str, tree: str, settings: RemoteSettings | None = None) -> TreeInfo:
    """Entries, cluster edges and branch form of ``tree`` in ``path`` (a local path or a URL):
    from the cache when this file was described before, else from its tree (opened once per
    process, :func:`brewflow.nanoevents.trees.open_tree`; a file that cannot be used raises
    :class:`~brewflow.errors.InputError` saying why), then cached."""
    folder = cache_dir()
    entry = None
    if not is_url(path) and not os.path.isfile(path):
        open_checked(path, tree, settings=settings)  # raises the InputError that says why
    if folder is not None:
        entry = folder / f"{identity(path, tree, settings)}.json"
        info = _load(entry)
        if info is not None:
            return info
    ttree = open_checked(path, tree, settings=settings)  # InputError: what is wrong with it
    info = TreeInfo(
        int(ttree.num_entries), trees.cluster_edges(ttree), trees.branch_form(ttree).to_dict()
    )
    if entry is not None:
        _store(entry, info)
        if not is_url(path) and not trees.is_rntuple(ttree):
            trees.forget(path, tree)  # reading parses only what it reads: do not keep the
            # ~1500 branches alive (tens of MB a file; interpreter exit paid for them too)
    return info


def _load(entry: Path) -> TreeInfo | None:
    try:
        document = json.loads(entry.read_text())
        if document.get("version") != VERSION:
            return None
        return TreeInfo(int(document["entries"]), [int(c) for c in document["clusters"]],
                        dict(document["form"]))  # fmt: skip
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        log.debug("ignoring the damaged tree cache entry %s: %s", entry, err)
        return None


def _store(entry: Path, info: TreeInfo) -> None:
    document: dict[str, Any] = {"version": VERSION, "entries": info.entries,
                                "clusters": info.clusters, "form": info.form}  # fmt: skip
    try:
        atomic_write(entry, json.dumps(document, separators=(",", ":")))
    except OSError as err:  # a read-only home, a full disk: go on without the cache
        log.debug("cannot write the tree cache entry %s: %s", entry, err)
