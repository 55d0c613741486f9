"""Credentials in URLs: kept out of everything brewflow writes or says, restored only to open.

A URL may carry a credential: user info (``root://user:token@host//file.root``) or a query
parameter whose name looks like one (``https://host/file.root?authz=...``:
:data:`CREDENTIAL_WORDS`, :data:`CREDENTIAL_PREFIXES`). :func:`redact` replaces each with
``***`` in any text, by a rule rather than a list of known URL shapes, so a malformed URL is
redacted too. The config loader keeps the real values here (:func:`conceal`, which hands the
rest of brewflow the redacted config) and notes the files they came from; so inventories,
results, ledgers, logs, reports and error messages only ever see redacted URLs, and the one
function that opens a remote file asks :func:`reveal` for the real URL: from this process's
memory, else read again from the user's config files (named by :data:`ENV`, which worker
processes inherit), never from a file brewflow wrote. Standard library only (PyYAML's
scanner, imported when a YAML config is re-read).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

__all__ = [
    "CREDENTIAL_PREFIXES",
    "CREDENTIAL_WORDS",
    "ENV",
    "MASK",
    "AmbiguousCredential",
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

CREDENTIAL_WORDS = (
    "token", "auth", "sig", "key", "secret", "pass", "pw", "bearer", "cred", "session", "jwt",
    "macaroon", "ticket",
)  # fmt: skip
"""A query parameter whose name contains one of these (any case) holds a credential: XRootD's
and WLCG's ``authz``, ``scitoken``, OAuth2's ``access_token``, ``bearer``, passwords
(``pass``, ``passwd``, ``pwd``), API keys, signatures (Azure's ``sig``, CloudFront's
``Signature``), dCache's macaroons, session ids, ..."""

CREDENTIAL_PREFIXES = ("x-amz-", "x-goog-", "x-ms-")
"""A query parameter whose name starts with one of these (any case) is treated as a credential:
pre-signed S3 (``X-Amz-Signature``, ``X-Amz-Credential``, ...), Google Cloud Storage and Azure
URLs."""

ENV = "BREWFLOW_CREDENTIALS_FROM"
"""The config files (``os.pathsep``-separated) that credentials are read from again in a
process that has not read them itself (a job reading the resolved config, its workers)."""

_STOP = "\\s'\"`<>\\\\"
"""What ends a URL in text (regex class body): whitespace, a quote, a bracket of markup, ``\\``."""
_CANDIDATE = re.compile(rf"(?<![^{_STOP}])[^{_STOP}@=]*+[@=][^{_STOP}]*+")
"""A run of text between stops that holds an ``@`` or ``=``: where a credential can be. Each
run is matched once from its start (possessive, so redaction takes linear time)."""
_PARAMETER = re.compile(r"[?&;]([^=&#?;]*+)=(?!=)")
"""A query parameter's name (not ``==``: a comparison)."""
_VALUE_END = re.compile("[&#]")
"""What ends a parameter's value in a run of text."""
_PHRASE_END = ",;:.)]}"
"""Punctuation that ends a phrase after a URL (``URL: message``, ``(URL),``), not its token."""
_SCHEME = re.compile(r"(?<![\w+.\-])\w[\w+.\-]*+(?::/*+|//++)")
"""A scheme-like word and ``:``, ``:/``, ``://`` or ``//`` (a malformed scheme too)."""


def redact(text: str) -> str:
    """``text`` with the user info of every URL replaced by ``***@`` and the value of every
    credential-like query parameter (:func:`is_token_parameter`) by ``***``; local paths and
    URLs without credentials unchanged. Idempotent; linear in the length of ``text``.

    In each run of text between stops (whitespace, quotes, ``<``, ``>``, ``\\``): a parameter
    value runs to the next ``&`` or ``#`` (commas and brackets included), less the punctuation
    that ends a phrase; user info is all between the first scheme-like word (``root://``,
    ``root:/``, ``root//``, ``user:``) and the last ``@`` (a password may hold ``/``, ``:``,
    ``@``)."""
    if "@" not in text and "=" not in text:
        return text  # the common case: nothing that could be a credential
    return _CANDIDATE.sub(lambda m: _hide(m.group()), text)


def _hide(run: str) -> str:
    """:func:`redact` of one run of text between stops."""
    if "=" in run:
        parts, done = [], 0
        for found in _PARAMETER.finditer(run):
            if found.start() < done or not is_token_parameter(found.group(1)):
                continue  # in a value already hidden, or no credential
            stop = _VALUE_END.search(run, found.end())
            end = stop.start() if stop else len(run)
            while end > found.end() and run[end - 1] in _PHRASE_END:
                end -= 1
            parts += [run[done : found.end()], MASK]
            done = end
        run = "".join([*parts, run[done:]])
    at = run.rfind("@")
    if at >= 0 and (scheme := _SCHEME.search(run, 0, at)) is not None:
        run = f"{run[: scheme.end()]}{MASK}{run[at:]}"
    return run


def is_token_parameter(name: str) -> bool:
    """Whether query parameter ``name`` holds a credential."""
    lowered = name.lower()
    return lowered.startswith(CREDENTIAL_PREFIXES) or any(w in lowered for w in CREDENTIAL_WORDS)


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


class AmbiguousCredential(UnknownCredential):
    """A redacted URL that several credentials of the config fit equally well."""


_KNOWN: dict[str, set[str]] = {}
"""Per process: redacted string -> the real ones, for each string with a credential seen (in
the latest config or file that had it: a config read again, its token renewed, replaces)."""
_FROM: dict[str, set[str]] = {}
"""Per process: redacted string -> the files (absolute paths) it was read from."""
_BY_HOST: dict[tuple, set[str]] = {}
"""Per process: (scheme, host, port) -> the redacted URLs seen with a credential for it."""
_SCANNED: set[str] = set()
"""Per process: the files whose credentials were read again (:func:`reveal`)."""


def _remember(strings: Iterable[str], sources: Iterable[str] = ()) -> None:
    """Keep the real ``strings`` read together (one config, one file) by their redacted form,
    in place of those an earlier read had under the same form."""
    read: dict[str, set[str]] = {}
    for real in strings:
        if (hidden := redact(real)) != real:
            read.setdefault(hidden, set()).add(real)
    for hidden, reals in read.items():
        _KNOWN[hidden] = reals
        _FROM.setdefault(hidden, set()).update(sources)
        for real in reals:
            if (host := _host(real)) is not None:
                _BY_HOST.setdefault(host, set()).add(hidden)


def conceal(value: Any, sources: Iterable[str | Path] = ()) -> Any:
    """``value`` (a config) with every credential redacted (:func:`redact_all`); the real
    strings are kept in this process for :func:`reveal`, noted as read from ``sources`` (the
    config files and file lists they came from; also exported in :data:`ENV` for worker
    processes). ``value`` itself when it holds none."""
    secret = [s for s in _strings(value) if redact(s) != s]
    if not secret:
        return value
    files = [str(Path(s).absolute()) for s in sources]
    _remember(secret, files)
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
    this process concealed, else one read again from the files in :data:`ENV` (see
    :func:`_lookup`). Raises :class:`UnknownCredential` (naming the redacted URL and the
    files) when none has it, :class:`AmbiguousCredential` when several fit equally."""
    if MASK not in url:
        return url
    found = _lookup(url)
    if len(found) != 1 and _scan_pending():
        found = _lookup(url)
    if len(found) == 1:
        return next(iter(found))
    if found:
        given = ", ".join(sorted(set().union(*found.values())))
        raise AmbiguousCredential(
            f"{url}: {len(found)} different credentials in the config fit this URL equally "
            f"(given with {given}); brewflow cannot tell which to send: list this file with its "
            "full URL, credential included, or give each credential its own path on the server "
            "(a redirector with a path prefix, a glob's folder)"
        )
    files = ", ".join(sorted(_SCANNED)) or f"none (${ENV} is not set)"
    raise UnknownCredential(
        f"{url}: no credential for this URL in the config it came from (read again: "
        f"{files}); was the config changed or moved since the run started? Run again"
    )


def _lookup(url: str) -> dict[str, set[str]]:
    """The real URLs that redacted ``url`` may stand for (each with the redacted config strings
    it came from; one: found, several: ambiguous). The real strings seen as ``url`` exactly;
    else ``url`` with the user info and tokens of the real URLs of its server whose prefix
    (:func:`_prefix`: a redirector's path, a glob's folder) is the longest to start its path;
    else of all the real URLs of its server (one credential for the server)."""
    if url in _KNOWN:
        return {real: {url} for real in _KNOWN[url]}
    host = _host(url)
    if host is None:
        return {}
    parts = urlsplit(url)
    seen = {real for hidden in _BY_HOST.get(host, ()) for real in _KNOWN[hidden]}
    filled = {real: rebuilt for real in seen if (rebuilt := _fill(parts, real)) is not None}
    under = {real: len(prefix) for real in filled if parts.path.startswith(prefix := _prefix(real))}
    if under:
        longest = max(under.values())
        filled = {real: filled[real] for real, length in under.items() if length == longest}
    found: dict[str, set[str]] = {}
    for real, rebuilt in filled.items():
        found.setdefault(rebuilt, set()).add(redact(real))
    return found


def _fill(parts: SplitResult, real: str) -> str | None:
    """The redacted URL ``parts`` with the user info and tokens of ``real`` in place of its
    ``***``; None when ``real`` lacks one of them."""
    netloc = parts.netloc
    if netloc.startswith(f"{MASK}@"):
        if (userinfo := _userinfo(real)) is None:
            return None
        netloc = f"{userinfo}@{netloc.removeprefix(f'{MASK}@')}"
    query = []
    for item in parts.query.split("&") if parts.query else []:
        name, eq, value = item.partition("=")
        if eq and value == MASK and is_token_parameter(name):
            if (token := _parameter(real, name)) is None:
                return None
            item = f"{name}={token}"
        query.append(item)
    rebuilt = parts._replace(netloc=netloc, query="&".join(query)).geturl()
    return rebuilt if MASK not in rebuilt else None


def _prefix(real: str) -> str:
    """The paths on its server that real URL ``real`` gives its credential to: those under its
    path (a redirector: ``/``, ``/prefix/``), or under its glob's folder (``//data/*.root``:
    ``//data/``). A file's own path is no folder: it gives its credential to nothing else."""
    path = urlsplit(real).path
    magic = re.search(r"[*?[]", path)
    if magic is None:
        return path.rstrip("/") + "/"
    return path[: path.rfind("/", 0, magic.start()) + 1]


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
        _remember(_urls_in(Path(path)), [path])
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
