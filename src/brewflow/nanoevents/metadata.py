"""What building a graph needs to know of an event file, cached on disk by file identity.

Building the lazy events of a file needs its number of entries, its cluster edges and the
awkward form of its branches, not its baskets. Parsing that from a NanoAOD ``Events`` tree
costs 0.5-1 s (about 1500 ``TBranch`` objects); the second time a file is seen it comes from
a small JSON document instead (a safe format: nothing is unpickled or executed), so a graph
builds without parsing the tree at all, and reading a chunk later parses only the branches
it reads (:mod:`.partial`).

The cache is a :class:`~brewflow.nanoevents.identity.VerifiedCache`: an entry is keyed by and
verified against the file's identity read from the file itself (ROOT UUID, length and the
tree key's position; for a local file also its real path, inode, size, ``mtime`` and
``ctime``) and checksummed; a rewritten, replaced or copied file, or a damaged or edited entry,
is a miss, described again. Entries that are consistent but wrong (forged with a valid
checksum) are caught when a chunk is read (the tree's real entries against the graph's) and
dropped (:func:`forget`). It lives in ``$BREWFLOW_CACHE`` (default
``$XDG_CACHE_HOME/brewflow``, else ``~/.cache/brewflow``), in ``trees/``;
``BREWFLOW_CACHE=off`` turns it off; a cache that cannot be written is skipped.
"""

from __future__ import annotations

import itertools
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import awkward as ak

from brewflow.locations import RemoteSettings, is_url
from brewflow.nanoevents import trees
from brewflow.nanoevents.identity import VerifiedCache, file_identity
from brewflow.nanoevents.inputs import open_checked

__all__ = ["CACHE_ENV", "TreeInfo", "cache_dir", "describe", "forget", "identity"]

log = logging.getLogger(__name__)

CACHE_ENV = "BREWFLOW_CACHE"
VERSION = 2  # of the entries' layout


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


def identity(path: str, tree: str, settings: RemoteSettings | None = None) -> list | None:
    """What an entry of ``tree`` in ``path`` is keyed by and verified against (see the module
    doc); None when the file's identity cannot be read (not cached)."""
    found = file_identity(path, tree, settings)
    return None if found is None else [tree, path if is_url(path) else None, found]


def _cache() -> VerifiedCache:
    return VerifiedCache(cache_dir(), "tree", VERSION)


def describe(path: str, tree: str, settings: RemoteSettings | None = None) -> TreeInfo:
    """Entries, cluster edges and branch form of ``tree`` in ``path`` (a local path or a URL):
    from the cache when this file was described before, else from its tree (opened once per
    process, :func:`brewflow.nanoevents.trees.open_tree`; a file that cannot be used raises
    :class:`~brewflow.errors.InputError` saying why), then cached."""
    cache = _cache()
    key = None
    if not is_url(path) and not os.path.isfile(path):
        open_checked(path, tree, settings=settings)  # raises the InputError that says why
    if cache.folder is not None:
        key = identity(path, tree, settings)
        value = None if key is None else cache.load(key, _consistent)
        if value is not None:
            return TreeInfo(int(value["entries"]), [int(c) for c in value["clusters"]],
                            dict(value["form"]))  # fmt: skip
    ttree = open_checked(path, tree, settings=settings)  # InputError: what is wrong with it
    info = TreeInfo(
        int(ttree.num_entries), trees.cluster_edges(ttree), trees.branch_form(ttree).to_dict()
    )
    if key is not None:
        cache.store(key, {"entries": info.entries, "clusters": info.clusters, "form": info.form})
        if not is_url(path) and not trees.is_rntuple(ttree):
            trees.forget(path, tree)  # reading parses only what it reads: do not keep the
            # ~1500 branches alive (tens of MB a file; interpreter exit paid for them too)
    return info


def forget(path: str, tree: str, settings: RemoteSettings | None = None) -> None:
    """Drop the cached description of ``tree`` in ``path`` (one the file contradicted)."""
    cache = _cache()
    if cache.folder is not None and (key := identity(path, tree, settings)) is not None:
        cache.drop(key)


def _consistent(value: dict[str, Any]) -> bool:
    """An entry's clusters run from 0 to its entries, in order; its form is a record's."""
    clusters = value["clusters"]
    entries = value["entries"]
    return (
        isinstance(entries, int)
        and entries >= 0
        and all(isinstance(c, int) for c in clusters)
        and clusters[0] == 0
        and clusters[-1] == entries
        and all(a <= b for a, b in itertools.pairwise(clusters))
        and isinstance(value["form"], dict)
        and value["form"].get("class") == "RecordArray"
    )
