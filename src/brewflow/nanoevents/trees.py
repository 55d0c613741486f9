"""Open event trees once per process, and their per-branch awkward form without reading data.

An ``Events`` tree is a TTree or an RNTuple (CMS's new format; uproot reads both): the helpers
here (:func:`branch_names`, :func:`read`, :func:`cluster_edges`, :func:`branch_form`) treat
them alike, so everything above reads both; an RNTuple in CMSSW's grouped layout is seen under
NanoAOD's flat branch names (:mod:`.grouped`).

Parsing the metadata of a NanoAOD ``Events`` tree (about 1500 branches) costs about a second
in uproot, more than reading a few columns of 100k events. Every partition of a file (and
every graph built in the same process) therefore shares one open tree, kept in a small
least-recently-used cache keyed by path (or URL) and tree name; a local file is also keyed by
device, inode, size, modification and change time (``ctime``: any write changes it, and it
cannot be set back), so a file replaced or rewritten on disk is opened again, never read
through a stale handle (a remote file's identity, its ROOT UUID, is checked against the
inventory by the caller: :mod:`brewflow.nanoevents.remote`).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import awkward as ak
import uproot

from brewflow.locations import RemoteSettings, is_url
from brewflow.nanoevents import grouped, remote

__all__ = [
    "branch_form",
    "branch_names",
    "clear",
    "cluster_edges",
    "forget",
    "is_rntuple",
    "open_tree",
    "read",
    "signature",
]

MAX_OPEN = 64
_CACHE: OrderedDict[tuple[str, str], _Open] = OrderedDict()
_LOCK = threading.Lock()
_OPENING: dict[tuple[str, str], threading.Lock] = {}  # one opener per file at a time


class _Open(NamedTuple):
    signature: tuple[int, ...] | None
    tree: Any
    branches: frozenset[str] | None  # the branches parsed; None: all


def signature(path: str) -> tuple[int, ...] | None:
    """``(device, inode, size, mtime_ns, ctime_ns)`` of a local file: changes when the file is
    replaced or rewritten (even with its ``mtime`` set back); None for a URL."""
    if is_url(path):
        return None
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns


def open_tree(
    path: str,
    tree: str,
    settings: RemoteSettings | None = None,
    branches: Iterable[str] | None = None,
) -> Any:
    """The tree (TTree or RNTuple) ``tree`` of ``path`` (a local path or a URL), opened once per
    process while the file is unchanged; ``settings`` bound the waits of a remote open. With
    ``branches``, a TTree may hold only those (and the ones parsed before): what reading
    them needs, parsed in a fraction of the time (:mod:`.partial`)."""
    key = (str(path), tree)
    wanted = None if branches is None else frozenset(branches)
    current = signature(key[0])
    with _LOCK:
        opening = _OPENING.setdefault(key, threading.Lock())
    with opening:  # two partitions of one file: the second waits for the first's parse
        with _LOCK:
            cached = _CACHE.get(key)
            if cached is not None and cached.signature == current:
                _CACHE.move_to_end(key)
                if cached.branches is None or (wanted is not None and wanted <= cached.branches):
                    return cached.tree
                if wanted is not None:
                    wanted |= cached.branches
        # outside the global lock: a remote open may wait
        ttree = remote.open_file(key[0], settings, tree, wanted)
        parsed = wanted if wanted is not None and not is_rntuple(ttree) else None
        with _LOCK:
            _CACHE[key] = _Open(current, ttree, parsed)
            while len(_CACHE) > MAX_OPEN:
                _, old = _CACHE.popitem(last=False)
                old.tree.file.close()
    return ttree


def is_rntuple(ttree: Any) -> bool:
    """Whether ``ttree`` is an RNTuple (else a TTree)."""
    return getattr(ttree, "classname", "").startswith("ROOT::RNTuple")


def is_tree(obj: Any) -> bool:
    """Whether ``obj`` holds events: a TTree or an RNTuple."""
    return hasattr(obj, "branches") or is_rntuple(obj)


def branch_names(ttree: Any) -> list[str]:
    """The top-level branches (TTree) or the flat names of an RNTuple's fields (``nMuon``,
    ``Muon_pt`` for CMSSW's collection ``Muon``: :mod:`.grouped`)."""
    if is_rntuple(ttree):
        return list(grouped.layout(ttree))
    return list(ttree.keys(recursive=False))


def read(ttree: Any, branches: Sequence[str], start: int, stop: int) -> dict[str, Any]:
    """``{branch: awkward array}`` of entries ``[start, stop)`` of a TTree or an RNTuple."""
    if is_rntuple(ttree):
        return grouped.read(ttree, branches, start, stop)
    # no array cache: each chunk is read once (uproot's default, 100 MB a file, only grew a
    # job's memory with the chunks it read)
    return ttree.arrays(
        list(branches), entry_start=start, entry_stop=stop, how=dict, array_cache=None
    )


def cluster_edges(ttree: Any) -> list[int]:
    """Entry numbers where the tree's clusters start, and its number of entries: ``[0, ...,
    entries]`` (a chunk cut there decompresses no basket or page twice)."""
    if is_rntuple(ttree):
        starts = [int(c.num_first_entry) for c in ttree.cluster_summaries]
        return sorted({0, *starts, int(ttree.num_entries)})
    return [int(x) for x in ttree.common_entry_offsets()]


def forget(path: str, tree: str) -> None:
    """Drop the cached tree of ``path``: reopened on next use (e.g. after a read error). Not
    closed here: other partitions may still be reading through it."""
    with _LOCK:
        _CACHE.pop((str(path), tree), None)


def clear() -> None:
    """Close and forget every cached tree."""
    with _LOCK:
        for entry in _CACHE.values():
            entry.tree.file.close()
        _CACHE.clear()


def branch_form(ttree: Any) -> ak.forms.RecordForm:
    """One field per top-level branch, with the form uproot reads it as (no basket is read)."""
    if is_rntuple(ttree):
        return grouped.form(ttree)
    if not is_tree(ttree):
        raise TypeError(f"{ttree.file.file_path}: {ttree.name!r} is not a TTree or an RNTuple")
    names, contents = [], []
    for branch in ttree.branches:
        try:
            form = branch.interpretation.awkward_form(ttree.file)
        except (
            uproot.interpretation.objects.CannotBeAwkward,
            uproot.interpretation.identify.UnknownInterpretation,
            NotImplementedError,
        ):
            continue  # not columnar (e.g. a streamed object); NanoAOD has none
        names.append(branch.name)
        contents.append(form)
    return ak.forms.RecordForm(contents, names)
