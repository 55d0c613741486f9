"""The files of a read: globs expanded (local, or on an XRootD server through its folder
listing), each file once (:func:`distinct_files`: a file given twice would have its events
counted twice)."""

from __future__ import annotations

import glob
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path

from brewflow.errors import InputError
from brewflow.locations import file_identity, is_glob, is_url
from brewflow.nanoevents.remote import Locations, expand_glob

__all__ = ["distinct_files", "file_map"]


def file_map(
    files: Mapping[str, str] | Sequence[str] | str, tree: str, locations: Locations
) -> dict[str, str]:
    """``{path: tree}``; globs are expanded (sorted; on an XRootD server through its folder
    listing), other paths and URLs kept as given; each file once (:func:`distinct_files`)."""
    if isinstance(files, Mapping):
        out = {str(k): v for k, v in files.items()}
        distinct_files(out, locations.urls)
        return out
    paths: list[str] = []
    for pattern in map(str, [files] if isinstance(files, str | Path) else files):
        if not is_glob(pattern):
            paths.append(pattern)
        elif is_url(pattern):
            paths += expand_glob(pattern, locations.remote)
        else:
            paths += sorted(glob.glob(pattern))
    return dict.fromkeys(distinct_files(paths, locations.urls), tree)


def distinct_files(paths: Iterable[str], remote: Collection[str] = ()) -> list[str]:
    """``paths``, checked to name each file once: a local file given twice (also under two
    names: ``x.root``, ``./x.root``, a symlink, a hard link; or matched by two globs) is an
    :class:`InputError`, as its events would be counted twice. URLs and the logical names in
    ``remote`` (read from their replicas) are compared by name, never looked up on disk
    (:func:`~brewflow.locations.file_identity`)."""
    seen: dict[tuple, str] = {}
    for path in paths:
        identity = file_identity(path, path in remote)
        if identity in seen:
            first = seen[identity]
            same = "is given twice" if first == path else f"and {path!r} are the same file"
            raise InputError(f"{first!r} {same}; its events would be counted twice (give it once)")
        seen[identity] = path
    return list(seen.values())
