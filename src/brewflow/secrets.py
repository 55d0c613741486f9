"""Credentials in URLs: kept out of everything brewflow writes or says, restored only to open.

A URL may carry a credential: user info (``root://user:token@host//file.root``) or a token
parameter of its query (``https://host/file.root?authz=...``; :data:`TOKEN_PARAMETERS`).
:func:`redact` replaces each with ``***`` in any text. The config loader keeps the real
values here (:func:`conceal`, which hands the rest of brewflow the redacted config) and notes
the files they came from; so inventories, results, ledgers, logs, reports and error messages
only ever see redacted URLs, and the one function that opens a remote file asks
:func:`reveal` for the real URL: from this process's memory, else read again from the user's
config files (named by :data:`ENV`, which worker processes inherit), never from a file brewflow
wrote. Standard library only (PyYAML's scanner, imported when a YAML config is re-read).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "ENV",
    "MASK",
    "TOKEN_FAMILIES",
    "TOKEN_PARAMETERS",
    "RedactingFormatter",
    "UnknownCredential",
    "conceal",
    "credential_sources",
    "expect",
    "expected",
    "holds_secret",
    "is_token_parameter",
    "redact",
    "redact_all",
    "reveal",
]

MASK = "***"
"""What a credential is replaced with."""

TOKEN_PARAMETERS = (
    "authz", "access_token", "bearer_token", "token", "refresh_token", "id_token",
    "client_secret", "password", "passwd", "pwd", "api_key", "apikey", "sig", "signature",
)  # fmt: skip
"""Query parameters whose value is a credential (compared without regard to case): XRootD's
and WLCG's ``authz``, OAuth2 tokens, passwords and API keys, Azure's and CloudFront's
signatures."""

TOKEN_FAMILIES = ("x-amz-", "x-goog-")
"""Prefixes of query parameters that are all treated as credentials: pre-signed S3
(``X-Amz-Signature``, ``X-Amz-Credential``, ``X-Amz-Security-Token``, ...) and Google Cloud
Storage (``X-Goog-Signature``, ...) URLs."""

ENV = "BREWFLOW_CREDENTIALS_FROM"
"""The config files (``os.pathsep``-separated) that credentials are read from again in a
process that has not read them itself (a job reading the resolved config, its workers)."""

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^\s/?#\"'<>\\]+@")
_NAMES = "|".join(
    [*(re.escape(n) for n in TOKEN_PARAMETERS), *(re.escape(f) + r"[a-z0-9_\-]*"
                                                  for f in TOKEN_FAMILIES)]
)  # fmt: skip
_TOKEN = re.compile(rf"(?i)([?&;](?:{_NAMES})=)(?:[^&#\s\"'<>\\,;)\]}}:]|:(?=\S))*")
"""A token parameter and its value: up to the next parameter, a quote, a space or a bracket, or a
colon that ends a phrase (``URL: message``)."""


def redact(text: str) -> str:
    """``text`` with the user info of every URL replaced by ``***@`` and the value of every
    token parameter (:data:`TOKEN_PARAMETERS`, :data:`TOKEN_FAMILIES`) by ``***``; anything
    else unchanged (local paths, URLs without credentials). Idempotent."""
    if "@" not in text and "=" not in text:
        return text  # the common case: nothing that could be a credential
    return _TOKEN.sub(rf"\g<1>{MASK}", _USERINFO.sub(rf"\g<1>{MASK}@", text))


def is_token_parameter(name: str) -> bool:
    """Whether query parameter ``name`` holds a credential."""
    lowered = name.lower()
    return lowered in TOKEN_PARAMETERS or lowered.startswith(TOKEN_FAMILIES)


def _strings(value: Any) -> Iterator[str]:
    """Every string in a JSON-like value (mapping keys too)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _strings(item)


def holds_secret(value: Any) -> bool:
    """Whether a string, or any string of a JSON-like value, holds a credential."""
    return any(redact(s) != s for s in _strings(value))


def redact_all(value: Any) -> Any:
    """A copy of a JSON-like value with every string (mapping keys too) redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {redact_all(k): redact_all(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_all(v) for v in value)
    return value


class RedactingFormatter(logging.Formatter):
    """A log formatter whose every line (message and traceback) is :func:`redact`-ed."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class UnknownCredential(LookupError):
    """A redacted URL whose credential this process cannot restore (its config changed)."""


_KNOWN: dict[str, str] = {}
"""Per process: redacted string -> the real one, for each string with a credential seen."""
_FROM: dict[str, set[str]] = {}
"""Per process: redacted string -> the files (absolute paths) it was read from."""
_BY_HOST: dict[tuple, set[str]] = {}
"""Per process: (scheme, host, port) -> the real URLs seen with a credential for it."""
_SCANNED: set[str] = set()
"""Per process: the files whose credentials were read again (:func:`reveal`)."""


def _remember(real: str, sources: Iterable[str] = ()) -> None:
    hidden = redact(real)
    if hidden != real:
        _KNOWN[hidden] = real
        _FROM.setdefault(hidden, set()).update(sources)
        if (host := _host(real)) is not None:
            _BY_HOST.setdefault(host, set()).add(real)


def conceal(value: Any, sources: Iterable[str | Path] = ()) -> Any:
    """``value`` (a config) with every credential redacted (:func:`redact_all`); the real
    strings are kept in this process for :func:`reveal`, noted as read from ``sources`` (the
    config files and file lists they came from; also exported in :data:`ENV` for worker
    processes). ``value`` itself when it holds none."""
    secret = [s for s in _strings(value) if redact(s) != s]
    if not secret:
        return value
    files = [str(Path(s).absolute()) for s in sources]
    for real in secret:
        _remember(real, files)
    expect(files)
    return redact_all(value)


def credential_sources(value: Any) -> list[str]:
    """The files the credentials of a concealed ``value`` were read from (sorted)."""
    out: set[str] = set()
    for text in _strings(value):
        out.update(_FROM.get(text, ()))
    return sorted(out)


def expect(files: Iterable[str | Path]) -> None:
    """Note ``files`` (a resolved config's ``credentials_from``) as where this process and its
    workers read credentials again, when :func:`reveal` needs them."""
    known = list(expected())
    added = [str(f) for f in files if str(f) not in known]
    if added:
        os.environ[ENV] = os.pathsep.join([*known, *added])


def expected() -> tuple[str, ...]:
    """The files this process reads credentials from again (:data:`ENV`), to hand to workers
    that do not inherit its environment (e.g. on other nodes of a dask cluster)."""
    return tuple(p for p in os.environ.get(ENV, "").split(os.pathsep) if p)


def reveal(url: str) -> str:
    """The real URL of a redacted ``url`` (``url`` itself when it has no ``***``): the string
    this process concealed, else one read again from the files in :data:`ENV`. Raises
    :class:`UnknownCredential` (naming the redacted URL and the files) when none has it."""
    if MASK not in url:
        return url
    real = _lookup(url)
    if real is None and _scan_pending():
        real = _lookup(url)
    if real is None:
        files = ", ".join(sorted(_SCANNED)) or f"none (${ENV} is not set)"
        raise UnknownCredential(
            f"{url}: no credential for this URL in the config it came from (read again: "
            f"{files}); was the config changed or moved since the run started? Run again"
        )
    return real


def _lookup(url: str) -> str | None:
    """The real URL of redacted ``url``: a string seen as such, else ``url`` with the user info
    and each token of the one real URL seen for its host (a redirector's logical names, an
    XRootD folder's files)."""
    if url in _KNOWN:
        return _KNOWN[url]
    host = _host(url)
    if host is None:
        return None
    parts, seen = urlsplit(url), _BY_HOST.get(host, set())
    netloc = parts.netloc
    if netloc.startswith(f"{MASK}@"):
        users = {_userinfo(real) for real in seen} - {None}
        if len(users) != 1:
            return None
        netloc = f"{users.pop()}@{netloc.removeprefix(f'{MASK}@')}"
    query = []
    for item in parts.query.split("&") if parts.query else []:
        name, eq, value = item.partition("=")
        if eq and value == MASK and is_token_parameter(name):
            values = {_parameter(real, name) for real in seen} - {None}
            if len(values) != 1:
                return None
            item = f"{name}={values.pop()}"
        query.append(item)
    rebuilt = parts._replace(netloc=netloc, query="&".join(query)).geturl()
    return rebuilt if MASK not in rebuilt else None


def _host(url: str) -> tuple[str, str | None, int | None] | None:
    """``(scheme, host, port)`` of a URL; None for anything else."""
    try:
        parts = urlsplit(url)
        return (parts.scheme.lower(), parts.hostname, parts.port) if parts.scheme else None
    except ValueError:
        return None


def _userinfo(url: str) -> str | None:
    netloc = urlsplit(url).netloc
    return netloc.rpartition("@")[0] if "@" in netloc else None


def _parameter(url: str, name: str) -> str | None:
    """The value of query parameter ``name`` of ``url`` as written (percent-encoded)."""
    for item in urlsplit(url).query.split("&"):
        key, eq, value = item.partition("=")
        if eq and key.lower() == name.lower():
            return value
    return None


def _scan_pending() -> bool:
    """Read the credentials of the files in :data:`ENV` not read yet; whether there were any."""
    pending = [p for p in os.environ.get(ENV, "").split(os.pathsep) if p and p not in _SCANNED]
    for path in pending:
        _SCANNED.add(path)
        for real in _urls_in(Path(path)):
            _remember(real, [path])
    return bool(pending)


def _urls_in(path: Path) -> list[str]:
    """The URLs with a credential in a config file (its YAML/JSON scalars, read with PyYAML's
    scanner: nothing is constructed, no alias expanded) or a file list (one a line)."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return []  # reveal() names the files when the URL is not found
    found = [line.strip() for line in text.splitlines()]
    if path.suffix.lower() in (".yaml", ".yml", ".json"):
        import yaml

        with contextlib.suppress(yaml.YAMLError):  # the scalars before a syntax error
            for token in yaml.scan(text, Loader=yaml.SafeLoader):
                if isinstance(token, yaml.ScalarToken):
                    found.append(token.value)
    return [s for s in found if "://" in s and not any(c.isspace() for c in s)
            and redact(s) != s]  # fmt: skip
