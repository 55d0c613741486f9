"""Reading files from XRootD and HTTP servers: bounded waits, replicas tried in order.

uproot reads ``root://`` through its XRootD source (the ``xrootd`` client; a chunk's baskets
in vector reads) and ``http(s)://`` through fsspec's HTTP file system (range requests); globs
on XRootD folders are listed with ``fsspec-xrootd``. Every request is bounded by the config's
``remote.timeout``: the XRootD client reads its timeouts from ``XRD_*`` environment variables
when it loads, so they are set (unless the user set them) before the first remote open; HTTP
requests get uproot's ``timeout`` option.

:func:`with_failover` runs an action (open, read a chunk) on the first replica of a file that
works: each replica gets ``retries + 1`` attempts, then the next is tried; the replica that
worked is remembered per process, so later chunks of the file start there. When every replica
fails, :class:`ReplicasFailed` names the file and each replica's error.

URLs reach this module as brewflow holds them: their credentials redacted
(:mod:`brewflow.secrets`). :func:`open_file` and :func:`expand_glob`, which every remote read
goes through, are the only places that put the real URL (from the user's config) in its
place, for the client; what they report or return is redacted again.
"""

from __future__ import annotations

import contextlib
import glob
import importlib
import json
import logging
import lzma
import os
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import uproot

from brewflow import secrets
from brewflow.errors import BrewflowError, InputError
from brewflow.files import atomic_write
from brewflow.locations import RemoteSettings, is_remote_url, is_url, is_xrootd
from brewflow.uproot_private import open_partial  # (imported here: said before any fork)

__all__ = [
    "READ_ERRORS",
    "CredentialMissing",
    "Health",
    "Locations",
    "NotRootFile",
    "ReplicaChanged",
    "ReplicasFailed",
    "check_uuid",
    "expand_glob",
    "open_file",
    "open_options",
    "prepare_client",
    "remote_errors",
    "server_of",
    "share_health",
    "with_failover",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


def _read_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [
        OSError,
        uproot.deserialization.DeserializationError,
        zlib.error,
        lzma.LZMAError,
    ]
    for module, name in (("lz4.block", "LZ4BlockError"), ("zstandard", "ZstdError")):
        with contextlib.suppress(ImportError, AttributeError):
            errors.append(getattr(importlib.import_module(module), name))
    return tuple(errors)


READ_ERRORS = _read_errors()
"""What reading a damaged file raises: I/O errors, undecodable bytes, failed decompression."""


def remote_errors() -> tuple[type[BaseException], ...]:
    """What a failing replica raises: :data:`READ_ERRORS`, timeouts, HTTP client errors (XRootD's
    errors and timeouts are OSErrors). aiohttp's are added once something imported it (only
    an HTTP read raises them), so a local run never pays its import (~0.1 s)."""
    aiohttp = sys.modules.get("aiohttp")
    return READ_ERRORS if aiohttp is None else (*READ_ERRORS, aiohttp.ClientError)


class ReplicaChanged(BrewflowError):
    """A replica whose ROOT file UUID is not the inventory's: a different file (changed, or a
    wrong copy); never read."""


class NotRootFile(BrewflowError, OSError):
    """A server that answers a ROOT file's URL with something else (an HTML login or error
    page; a server without range requests): a failing replica (the next one is tried), named
    with its URL."""


class CredentialMissing(BrewflowError, OSError):
    """A URL whose credential (redacted in everything brewflow wrote) is no longer in the
    user's config: a failing replica, named with its redacted URL."""


class ReplicasFailed(BrewflowError, OSError):
    """Every replica of a file failed (``failures``: ``[(url, error), ...]``)."""

    def __init__(self, name: str, failures: Sequence[tuple[str, str]], what: str = "") -> None:
        self.name, self.failures = name, list(failures)
        tried = "; ".join(f"{url}: {error}" for url, error in failures)
        count = len({url for url, _ in failures})
        super().__init__(f"file {name!r}{what}: every replica failed ({count} tried): {tried}")


def prepare_client(settings: RemoteSettings) -> None:
    """Bound the XRootD client's waits by ``settings.timeout`` (environment variables it reads
    when it loads; a variable the user set is kept): a request, a connection attempt and the
    check of timeouts every second (its default is every 15 s)."""
    seconds = str(settings.seconds)
    for name, value in (
        ("XRD_REQUESTTIMEOUT", seconds),
        ("XRD_STREAMTIMEOUT", seconds),
        ("XRD_CONNECTIONWINDOW", seconds),
        ("XRD_CONNECTIONRETRY", "1"),
        ("XRD_TIMEOUTRESOLUTION", "1"),
    ):
        os.environ.setdefault(name, value)


def open_options(url: str, settings: RemoteSettings) -> dict[str, Any]:
    """uproot's options for opening ``url``: the request timeout, and for ``root://`` uproot's
    own XRootD source, which passes it to every request (XRootD takes whole seconds) and
    coalesces the baskets of a chunk into vector reads."""
    if is_xrootd(url):
        return {"timeout": settings.seconds, "handler": uproot.source.xrootd.XRootDSource}
    return {"timeout": float(settings.timeout)}


def open_file(
    path: str,
    settings: RemoteSettings | None = None,
    tree: str | None = None,
    branches: Iterable[str] | None = None,
) -> Any:
    """``uproot.open`` of a local path or a URL (a URL's waits bounded by ``settings``, its
    redacted credentials restored: :func:`real_url`); with ``tree``, that object of the file;
    with ``branches`` too, a TTree with only those branches parsed (:mod:`.partial`). A server
    that answers with something else than a ROOT file raises :class:`NotRootFile`."""
    if not is_url(path):
        return _open(path, tree, branches, {})
    settings = settings or RemoteSettings()
    prepare_client(settings)
    try:
        return _open(real_url(path, settings), tree, branches, open_options(path, settings))
    except ValueError as err:  # uproot's "not a ROOT file", fsspec's "no range requests"
        text = " ".join(str(err).split()).split(" in file ")[0]
        if not text.startswith("not a ROOT file") and "range requests" not in text:
            raise
        page = ": an HTML page (the server's error or login page?)" if "b'<" in text else ""
        raise NotRootFile(
            f"{path}: the server's answer is not a ROOT file ({text.split(': ', 1)[-1]}){page}; "
            "check the URL and its credentials"
        ) from None


def _open(path: str, tree: str | None, branches: Iterable[str] | None, options: dict) -> Any:
    if tree is not None and branches is not None:
        return open_partial(path, tree, branches, **options)
    return uproot.open({path: tree} if tree is not None else path, **options)


def real_url(url: str, settings: RemoteSettings | None = None) -> str:
    """The URL to give the client for ``url`` as brewflow holds it (credentials redacted):
    the user's, credentials restored (:func:`brewflow.secrets.reveal`, from the files
    ``settings.credentials_from`` too); raises :class:`CredentialMissing` when the user's
    config no longer has them."""
    if settings is not None:
        secrets.expect(settings.credentials_from)
    try:
        return secrets.reveal(url)
    except secrets.UnknownCredential as err:
        raise CredentialMissing(str(err)) from None


def check_uuid(found: str, expected: str | None) -> None:
    """Raise :class:`ReplicaChanged` unless a replica's ROOT file UUID ``found`` is the
    inventory's ``expected`` one (None: nothing to check)."""
    if expected is not None and found != expected:
        raise ReplicaChanged(
            f"ROOT file UUID {found}, the inventory has {expected}: a different file (changed "
            "since preprocessing?); rerun preprocessing (snakemake --forcerun preprocess)"
        )


def expand_glob(pattern: str, settings: RemoteSettings) -> list[str]:
    """The files (sorted URLs) an XRootD URL with a glob matches; [] when none. The pattern's
    credentials (user info, a token query) are the files' too, redacted when the pattern's
    are. A file name with ``@`` is an :class:`~brewflow.errors.InputError`: its URL would
    read as user info (:func:`brewflow.secrets.redact`)."""
    import fnmatch
    import posixpath

    import fsspec

    prepare_client(settings)
    real, mark, query = real_url(pattern, settings).partition("?")  # a query is no part of the glob
    fs, path = fsspec.core.url_to_fs(real, timeout=settings.seconds)
    found = [p for p in fs.glob(path) if fs.isfile(p)]
    folder, name = posixpath.split(path)
    if not found and not glob.has_magic(folder):  # fsspec-xrootd names the export's top
        fs.invalidate_cache()  # folder's files "//name": match them by hand
        entries = fs.ls(folder or "/", detail=True)
        found = [
            posixpath.join(folder, posixpath.basename(e["name"]))
            for e in entries
            if e["type"] == "file" and fnmatch.fnmatchcase(posixpath.basename(e["name"]), name)
        ]
    if named := sorted(p for p in found if "@" in p):
        raise InputError(
            f"{pattern}: matches {', '.join(named)}: a file name with '@' cannot be read by "
            "URL (all before a URL's last '@' is taken as a credential and redacted); rename "
            "the file, or read it from a local copy"
        )
    urls = [fs.unstrip_protocol(p) + mark + query for p in found]
    return sorted(secrets.redact(u) if secrets.MASK in pattern else u for u in urls)


@dataclass(frozen=True)
class Locations:
    """Where the files of a read are: each logical file's replicas (URLs, tried in order) and
    the ROOT UUID its inventory recorded; a file without an entry is a local path, its own
    only replica. ``remote``: how remote replicas are read."""

    urls: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    uuids: Mapping[str, str] = field(default_factory=dict)
    remote: RemoteSettings = field(default_factory=RemoteSettings)

    def replicas(self, name: str) -> list[str]:
        return list(self.urls.get(name) or (name,))

    def identity(self, name: str) -> tuple:
        """What a read of ``name`` depends on besides its local file (dask tokens)."""
        return tuple(self.urls.get(name, ())), self.uuids.get(name)


_PREFERRED: dict[str, str] = {}
"""Per process: the replica of a file that last worked (later chunks start there)."""


@dataclass(frozen=True)
class Health:
    """Which replica servers failed, shared by the jobs of a run (one small JSON file per
    server in ``folder``: when it last failed, and why, redacted): a server that failed less
    than ``retry_after`` seconds ago is tried after every other replica of a file, so the
    jobs that follow the first to meet a dead server start at the replica that answered; once
    a read from it works again, it is marked so. Hints only: a replica is never skipped
    (when every other one fails it is still tried), so no read depends on them."""

    folder: Path
    retry_after: float = 300.0

    def _path(self, url: str) -> Path:
        return self.folder / f"{quote(server_of(url), safe='')}.json"

    def failed_recently(self, url: str) -> bool:
        try:
            state = json.loads(self._path(url).read_text())
            return time.time() - float(state["failed_at"]) < self.retry_after
        except (OSError, ValueError, KeyError, TypeError):
            return False

    def failed(self, url: str, error: str) -> None:
        document = {"server": server_of(url), "failed_at": time.time(), "error": error}
        with contextlib.suppress(OSError):  # a hint: never fails a read
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic_write(self._path(url), json.dumps(document) + "\n")

    def answered(self, url: str) -> None:
        path = self._path(url)
        if path.exists():
            with contextlib.suppress(OSError):
                path.unlink()


_HEALTH: Health | None = None


def share_health(folder: str | Path | None, retry_after: float = 300.0) -> None:
    """Share replica health with the other processes using ``folder`` (a workflow's jobs:
    ``.brewflow/health``); None: this process only (the default)."""
    global _HEALTH
    _HEALTH = None if folder is None else Health(Path(folder), retry_after)


def server_of(url: str) -> str:
    """``scheme://host:port`` of a URL, without credentials (a path for a local file)."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]  # no user info: it may hold a password
    return f"{parts.scheme}://{host.lower()}"


def preferred(name: str, urls: Sequence[str]) -> list[str]:
    """``urls`` with the one that last worked for ``name`` first, and replicas whose server
    failed recently (:class:`Health`, shared by a run's jobs) last."""
    good = _PREFERRED.get(name)
    ordered = list(urls) if good is None or good not in urls else [
        good, *(u for u in urls if u != good)]  # fmt: skip
    if _HEALTH is None or len(ordered) < 2:
        return ordered
    down = [u for u in ordered if is_remote_url(u) and _HEALTH.failed_recently(u)]
    return [u for u in ordered if u not in down] + down


def with_failover(
    name: str,
    urls: Sequence[str],
    action: Callable[[str], T],
    settings: RemoteSettings,
    *,
    local: tuple[int, float] = (0, 0.0),
    on_error: Callable[[str], None] | None = None,
    what: str = "",
) -> tuple[T, str, list[tuple[str, str]]]:
    """``(action(url), url, failures)`` for the first replica ``url`` of file ``name`` on which
    ``action`` succeeds. A remote replica gets ``settings.attempts`` attempts (with backoff),
    a local path ``local[0] + 1`` (backoff from ``local[1]``); ``on_error(url)`` runs after
    each failure (e.g. drop a cached handle). A :class:`ReplicaChanged` is not retried.
    Raises :class:`ReplicasFailed` when no replica works."""
    failures: list[tuple[str, str]] = []
    for url in preferred(name, urls):
        remote = is_remote_url(url)
        attempts, backoff = (settings.attempts, settings.backoff) if remote else (
            local[0] + 1, local[1])  # fmt: skip
        for attempt in range(attempts):
            started = time.monotonic()
            try:
                value = action(url)
            except ReplicaChanged as err:
                failures.append((url, str(err)))
                break
            except remote_errors() as err:
                if on_error is not None:
                    on_error(url)
                message = secrets.redact(" ".join(str(err).split())) or type(err).__name__
                failures.append((url, f"{message} (after {time.monotonic() - started:.1f} s)"))
                if remote and _HEALTH is not None and attempt + 1 == attempts:
                    _HEALTH.failed(url, message)
                if attempt + 1 < attempts:
                    wait = backoff * 2**attempt
                    log.warning("%s%s: %s; reading again in %.1f s", url, what, message, wait)
                    time.sleep(wait)
                else:
                    log.warning("%s%s: %s", url, what, message)
                continue
            if failures:
                log.warning("file %r%s: read from %s after %d failure(s)", name, what, url,
                            len(failures))  # fmt: skip
            _PREFERRED[name] = url
            if remote and _HEALTH is not None:
                _HEALTH.answered(url)
            return value, url, failures
    raise ReplicasFailed(name, failures, what)
