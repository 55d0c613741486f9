"""Where a dataset's files are: local paths, ``root://`` and ``http(s)://`` URLs, and CMS logical
file names (``/store/...``) read through redirectors, tried in order.

A URL may carry a credential (user info, or a query parameter whose name looks like one:
:func:`brewflow.secrets.is_token_parameter`); brewflow keeps it out of everything it writes and
says (:mod:`brewflow.secrets`). Standard library only: the config validation (and so the
Snakefile) uses it.
"""

from __future__ import annotations

import glob
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from brewflow.secrets import expected, is_token_parameter

__all__ = [
    "SCHEMES",
    "RemoteSettings",
    "file_identity",
    "is_glob",
    "is_lfn",
    "is_url",
    "is_xrootd",
    "reads_remotely",
    "replicas",
    "url_problem",
]

SCHEMES = ("root", "roots", "http", "https")
"""URL schemes brewflow reads: XRootD (``root``, ``roots``) and HTTP (``http``, ``https``)."""

LFN_PREFIXES = ("/store/",)
"""How a CMS logical file name starts (``dasgoclient`` prints them this way)."""


def is_url(entry: str) -> bool:
    """Whether ``entry`` is a URL (``scheme://...``), not a local path or a logical name."""
    return "://" in entry


def reads_remotely(record: Mapping[str, Any]) -> bool:
    """Whether the file of an inventory record is read over the network: a URL, or a file
    read through its replicas (a logical name resolved at redirectors)."""
    return is_url(record["path"]) or bool(record.get("replicas"))


def is_remote_url(entry: str) -> bool:
    """Whether ``entry`` is a URL brewflow reads remotely (:data:`SCHEMES`)."""
    return is_url(entry) and entry.split("://", 1)[0].lower() in SCHEMES


def is_xrootd(entry: str) -> bool:
    """Whether ``entry`` is an XRootD URL (``root://``, ``roots://``)."""
    return entry.lower().startswith(("root://", "roots://"))


def is_glob(entry: str) -> bool:
    """Whether ``entry`` is a glob: a wildcard (``*``, ``?``, ``[``) in a local path or in a
    URL's path (not its host, nor its query: ``?authz=...`` is a token, not a wildcard)."""
    if is_url(entry):
        entry = entry.split("://", 1)[1].partition("/")[2].partition("?")[0]
    return glob.has_magic(entry)


def is_lfn(entry: str) -> bool:
    """Whether ``entry`` looks like a CMS logical file name (``/store/...``)."""
    return entry.startswith(LFN_PREFIXES)


def file_identity(entry: str, by_name: bool = False) -> tuple:
    """What two names of one file share: a URL, or a logical name read through redirectors
    (``by_name``), its name (never looked up on disk: a mount may hang); a local file its
    device and inode (``x.root``, ``./x.root``, a symlink, a hard link), or its resolved path
    where it cannot be looked up (the read that fails names it)."""
    if by_name or is_url(entry):
        return ("name", entry)
    try:
        found = os.stat(entry)
    except OSError:
        return ("path", os.path.realpath(entry))
    return ("file", found.st_dev, found.st_ino)


def url_problem(url: str) -> str | None:
    """What is wrong with ``url`` as a file to read (None: nothing): an unknown scheme, an
    ``@`` after the host, no host, a bad port, no file path. Never quotes the URL's parts: the
    caller names the URL, redacted."""
    scheme, _, rest = url.partition("://")
    if scheme.lower() not in SCHEMES:
        return f"unsupported URL scheme {scheme!r}: brewflow reads {', '.join(SCHEMES)}"
    if "@" in rest.partition("/")[2].partition("?")[0]:
        return (
            "an '@' after the host: a '/' in the user info must be percent-encoded (%2F), and a "
            "file path may not hold '@' (all before the last '@' is taken as a credential)"
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # its message may quote a password taken for a port
        return (
            "malformed URL: a bad host or port (root://HOST[:PORT]//path; percent-encode the "
            "user info)"
        )
    del port
    if not parts.hostname:
        return "no host (root://HOST[:PORT]//path/file.root)"
    if parts.path.strip("/") == "":
        return "no file path after the host (root://HOST[:PORT]//path/file.root)"
    if parts.fragment:
        return "a fragment (#...) in a file URL is not supported"
    others = [name for name, _, _ in (p.partition("=") for p in parts.query.split("&") if p)
              if not is_token_parameter(name)]  # fmt: skip
    if others:
        return (
            f"a query parameter ({', '.join(others)}) in a file URL is not supported (only "
            "credentials: a name with token, auth, sig, key, pass, ...; see the README)"
        )
    return None


def redirector_problem(redirector: str) -> str | None:
    """What is wrong with a redirector (None: nothing): a URL of a host, no file path."""
    if not is_url(redirector):
        return "a redirector is a URL (root://host[:port]/ or https://host[:port]/)"
    problem = url_problem(join(redirector, "/store/x.root"))
    if problem is None and urlsplit(redirector).path.strip("/"):
        # a path prefix is allowed (e.g. https://host/prefix/): logical names are appended
        return None
    return problem


def join(redirector: str, lfn: str) -> str:
    """The URL of logical file name ``lfn`` at ``redirector``: ``root://host/`` +
    ``/store/x.root`` -> ``root://host//store/x.root`` (XRootD wants the absolute path after
    the host's slash); a token in the redirector's query stays at the end
    (``https://host/?authz=T`` -> ``https://host//store/x.root?authz=T``)."""
    base, mark, query = redirector.partition("?")
    return base.rstrip("/") + "/" + lfn + mark + query


def replicas(entry: str, redirectors: Sequence[str] = ()) -> list[str]:
    """The URLs to try, in order, for one ``files`` entry: a logical name at each redirector,
    or the entry itself (a URL or a local path)."""
    if redirectors and not is_url(entry):
        return [join(r, entry) for r in redirectors]
    return [entry]


@dataclass(frozen=True)
class RemoteSettings:
    """How remote files are read (config key ``remote``): ``timeout`` seconds per request,
    ``retries`` further attempts per replica after a failed one, ``backoff`` seconds before the
    first retry (doubled for each further one). A server that never answers costs at most
    ``timeout x (retries + 1)`` per replica before the next replica is tried.
    ``credentials_from``: the user's config files the reads restore URL credentials from
    (:func:`brewflow.secrets.expected` of the process that made the settings), so that a
    worker on another node, which does not inherit its environment, reads as it would."""

    timeout: float = 30.0
    retries: int = 1
    backoff: float = 1.0
    credentials_from: tuple[str, ...] = field(default_factory=expected)

    @classmethod
    def of(cls, config: Mapping) -> RemoteSettings:
        spec = config.get("remote") or {}
        return cls(**{k: spec[k] for k in ("timeout", "retries", "backoff") if k in spec})

    @property
    def attempts(self) -> int:
        return self.retries + 1

    @property
    def seconds(self) -> int:
        """``timeout`` in whole seconds, at least 1 (what the XRootD client takes)."""
        return max(1, math.ceil(self.timeout))
