"""Checks of input files before any event is read, with messages that name the file and say
what to do; and the ``on_bad_file`` policy (fail, or skip and record in the ledger)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import uproot

from brewflow import secrets
from brewflow.errors import InputError
from brewflow.locations import RemoteSettings, is_url
from brewflow.nanoevents import parquet, trees
from brewflow.nanoevents.remote import ReplicasFailed, check_uuid, with_failover

__all__ = [
    "SKIP_HINT",
    "InputError",
    "MissingBranchError",
    "check_branches",
    "check_finite_weights",
    "is_missing_field",
    "one_line",
    "open_checked",
    "open_replica",
    "uuid_of",
]

SKIP_HINT = " (or set on_bad_file: skip to go on without it)"
"""What a bad-file error under ``on_bad_file: fail`` ends with."""


class MissingBranchError(InputError):
    """A file without a branch the analysis reads (``path`` names it)."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


def one_line(error: BaseException) -> str:
    """An error's message on one line (uproot's span several)."""
    return " ".join(str(error).split())


def open_checked(
    path: str, tree: str, *, where: str = "", settings: RemoteSettings | None = None
) -> Any:
    """The tree ``tree`` (TTree or RNTuple) of ``path`` (process cache of
    :mod:`brewflow.nanoevents.trees`), or an :class:`InputError` saying why the file cannot be
    used: missing, not a ROOT file or truncated, no such tree, not an event tree. For a URL,
    an unreachable or failing server raises the client's error, a server answering with
    something else than a ROOT file (an HTML page) :class:`~.remote.NotRootFile` (the caller
    tries the next replica; every one failing is an :class:`InputError` naming each URL,
    credentials redacted); ``settings`` bound its waits."""
    where = f"{where}, file {path!r}" if where else f"file {path!r}"
    remote = is_url(path)
    if not remote and not Path(path).is_file():
        raise InputError(f"{where}: does not exist (moved or deleted?)")
    if not remote and parquet.is_parquet(path):
        try:
            return parquet.Source(path)
        except Exception as err:  # pyarrow's errors for truncated or foreign files
            raise InputError(
                f"{where}: not a readable parquet file ({one_line(err)}); write it again or "
                "remove it"
            ) from None
    try:
        ttree = trees.open_tree(path, tree, settings)
    except uproot.KeyInFileError as err:
        if not remote:
            _diagnose(path, tree, where)
        raise InputError(
            f"{where}: no tree {tree!r} ({one_line(err).split(' in file')[0]}); give the right "
            "tree name (config key 'tree', or --tree), or remove the file"
        ) from None
    except Exception:
        if not remote:
            _diagnose(path, tree, where)
        raise
    if not trees.is_tree(ttree):
        raise InputError(f"{where}: {tree!r} is a {ttree.classname}, not a TTree or an RNTuple")
    size = int(ttree.file.source.num_bytes) if remote else Path(path).stat().st_size
    if size < int(ttree.file.fEND):  # a cut copy opens (metadata first) but cannot be read
        message = (f"{where}: truncated: {size} bytes, its ROOT header says "
                   f"{int(ttree.file.fEND)}")  # fmt: skip
        trees.forget(path, tree)
        if remote:
            raise Truncated(message)  # the next replica is tried
        raise InputError(f"{message}; copy it again or remove it from the dataset")
    return ttree


class Truncated(OSError):
    """A remote replica shorter than its ROOT header says (an interrupted copy)."""


def uuid_of(ttree: Any) -> str:
    """The ROOT file UUID of an open tree's file (a parquet source: its footprint)."""
    if isinstance(ttree, parquet.Source):
        return parquet.footprint(ttree.path)
    return str(ttree.file.uuid)


def open_replica(
    name: str,
    urls: Sequence[str],
    tree: str,
    settings: RemoteSettings,
    *,
    where: str = "",
    uuid: str | None = None,
    then: Callable[[Any, str], Any] | None = None,
) -> tuple[Any, str, list[tuple[str, str]]]:
    """``(tree, url, failures)``: the tree of file ``name`` from the first of its replicas
    ``urls`` that opens (and, with ``uuid``, is that file: same ROOT UUID); with ``then``,
    ``then(tree, url)`` instead of the tree, from the first replica on which it succeeds too
    (a read error there tries the next replica). When none works, an :class:`InputError` names
    the file and each replica's error."""

    def action(url: str) -> Any:
        ttree = open_checked(url, tree, where=where, settings=settings)
        check_uuid(uuid_of(ttree), uuid)
        return ttree if then is None else then(ttree, url)

    try:
        return with_failover(
            name, urls, action, settings, on_error=lambda url: trees.forget(url, tree)
        )
    except ReplicasFailed as err:
        prefix = f"{where}, " if where else ""
        if len(urls) == 1 and not is_url(urls[0]) and err.failures:
            raise InputError(f"{prefix}file {name!r}: {err.failures[0][1]}") from None
        raise InputError(f"{prefix}{err}") from None


def _diagnose(path: str, tree: str, where: str) -> None:
    """Raise the :class:`InputError` that says why ``path`` has no readable ``tree``."""
    try:
        with uproot.open(path) as handle:
            keys = handle.keys(recursive=False, cycle=False)
            present = tree in handle
    except (OSError, ValueError, uproot.deserialization.DeserializationError) as err:
        raise InputError(
            f"{where}: not a readable ROOT file (truncated or not ROOT? {one_line(err)}); "
            "copy it again or remove it from the dataset"
        ) from None
    if not present:
        raise InputError(
            f"{where}: no tree {tree!r} (it has: {', '.join(keys) or 'no keys'}); "
            "give the right tree name (config key 'tree', or --tree), or remove the file"
        )


def is_missing_field(error: BaseException) -> bool:
    """Whether ``error`` is awkward's / dask-awkward's "no such field" (a branch the analysis
    uses is not in the file that defines the event layout)."""
    text = str(error)
    return isinstance(error, AttributeError) and (
        "no field named" in text or "not in fields" in text
    )


def check_branches(ttree: Any, needed: Iterable[str], *, where: str = "") -> None:
    """Raise :class:`MissingBranchError` naming the file (as brewflow names it: a URL's
    credentials redacted) and the ``needed`` branches it lacks."""
    missing = sorted(set(needed) - set(trees.branch_names(ttree)))
    if missing:
        path = secrets.redact(ttree.file.file_path)
        where = f"{where}, file {path!r}" if where else f"file {path!r}"
        raise MissingBranchError(
            f"{where}: no branch(es) {', '.join(missing)} in tree {ttree.name!r}, which the "
            "analysis reads; is it the right kind of file (data/MC, NanoAOD version)?",
            path,
        )


def check_finite_weights(weights: Any, where: str, first_entry: int) -> None:
    """Raise :class:`InputError` if a generator weight is NaN or infinite: one would make every
    histogram of the dataset NaN or its normalisation zero. ``weights`` are the entries from
    ``first_entry`` on of the file named in ``where``."""
    bad = ~np.isfinite(np.asarray(weights, dtype=np.float64))
    if bad.any():
        index = np.flatnonzero(bad)
        first = first_entry + int(index[0])
        value = float(np.asarray(weights)[index[0]])
        raise InputError(
            f"{where}: genWeight is {value} at {len(index)} entr{'y' if len(index) == 1 else 'ies'}"
            f" in entries [{first}, {first_entry + int(index[-1]) + 1}) (first: entry {first}); "
            "the file is damaged or mis-produced; replace it or remove it from the dataset"
        )
