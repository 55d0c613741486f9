"""Open TTrees once per process, and their per-branch awkward form without reading any basket.

Parsing the metadata of a NanoAOD ``Events`` tree (about 1500 branches) costs about a second
in uproot, more than reading a few columns of 100k events. Every partition of a file (and
every graph built in the same process) therefore shares one open tree, kept in a small
least-recently-used cache keyed by path, tree name, size and modification time: a file that
is replaced on disk is opened again, never read through a stale handle.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Any

import awkward as ak
import uproot

__all__ = ["branch_form", "clear", "forget", "open_tree", "signature"]

MAX_OPEN = 64
_CACHE: OrderedDict[tuple[str, str], tuple[tuple[int, int], Any]] = OrderedDict()
_LOCK = threading.Lock()


def signature(path: str) -> tuple[int, int]:
    """``(size, mtime_ns)`` of a file: changes when the file is rewritten."""
    stat = os.stat(path)
    return stat.st_size, stat.st_mtime_ns


def open_tree(path: str, tree: str) -> Any:
    """The TTree ``tree`` of ``path``, opened once per process while the file is unchanged."""
    key = (str(path), tree)
    current = signature(key[0])
    with _LOCK:
        cached = _CACHE.get(key)
        if cached is not None and cached[0] == current:
            _CACHE.move_to_end(key)
            return cached[1]
        ttree = uproot.open({key[0]: tree})
        _CACHE[key] = (current, ttree)
        while len(_CACHE) > MAX_OPEN:
            _, (_, old) = _CACHE.popitem(last=False)
            old.file.close()
    return ttree


def forget(path: str, tree: str) -> None:
    """Drop the cached tree of ``path``: reopened on next use (e.g. after a read error). Not
    closed here: other partitions may still be reading through it."""
    with _LOCK:
        _CACHE.pop((str(path), tree), None)


def clear() -> None:
    """Close and forget every cached tree."""
    with _LOCK:
        for _, ttree in _CACHE.values():
            ttree.file.close()
        _CACHE.clear()


def branch_form(ttree: Any) -> ak.forms.RecordForm:
    """One field per top-level branch, with the form uproot reads it as (no basket is read)."""
    if not hasattr(ttree, "branches"):
        raise TypeError(
            f"{ttree.file.file_path}: {ttree.name!r} is not a TTree (brewflow reads TTrees)"
        )
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
