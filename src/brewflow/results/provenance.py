"""What made an output: brewflow's version and git commit, the analysis repository's commit,
the config's hash, the input files (size, ROOT UUID), the correction payloads' hashes and the
key package versions.

Records hold no dates and no host names, so building twice from the same inputs gives the same
bytes; outputs that combine others (merge, stack, tables, plots) carry the union of their
inputs' records.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from brewflow import __version__
from brewflow.code import PACKAGES, brewflow_identity, git_commit, package_versions

__all__ = [
    "PACKAGES",
    "analysis_commit",
    "combine",
    "compact",
    "config_hash",
    "file_hash",
    "of",
    "read",
    "record",
    "stamp",
    "to_text",
]


@functools.cache
def analysis_commit() -> str | None:
    """The commit of the analysis repository: the git work tree of the working directory (the
    run's folder; ``<sha>-dirty`` with uncommitted changes to tracked files), or None."""
    return git_commit(Path.cwd())


@functools.lru_cache(maxsize=64)
def _hash(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"


def file_hash(path: str | Path) -> str:
    """``sha256:<hex>`` of a file's bytes (cached while the file is unchanged)."""
    stat = Path(path).stat()
    return _hash(str(path), stat.st_size, stat.st_mtime_ns)


def config_hash(config: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` of the validated config (as canonical JSON)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return f"sha256:{hashlib.sha256(text.encode()).hexdigest()}"


def record(
    *,
    config: Mapping[str, Any] | None = None,
    inputs: Iterable[Mapping[str, Any]] = (),
    payloads: Iterable[str | Path] = (),
    analysis: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A provenance record: ``inputs`` are inventory records (``path``, ``size``, ``uuid``),
    ``payloads`` files (correction payloads, golden JSON) hashed by content, ``analysis`` the
    analysis's own modules and files with their digests (:mod:`brewflow.code`); brewflow's
    commit (``-dirty`` with the digest of its sources) and the analysis repository's."""
    identity = brewflow_identity()
    out = {
        "brewflow": __version__,
        "git": identity["commit"],
        "analysis_git": analysis_commit(),
        "config": [config_hash(config)] if config is not None else [],
        "inputs": {r["path"]: {"size": r["size"], "uuid": r["uuid"]} for r in inputs},
        "payloads": {str(p): file_hash(p) for p in payloads},
        "packages": package_versions(),
    }
    if identity.get("sources"):
        out["brewflow_sources"] = identity["sources"]
    if analysis:
        out["analysis"] = dict(sorted(analysis.items()))
    return out


def combine(records: Sequence[Mapping[str, Any] | None], **extra: Any) -> dict[str, Any]:
    """One record for an output made from others: their inputs, payloads and config hashes
    (sorted, each once), this process's versions; ``extra`` as for :func:`record`. One file
    under two names (two datasets, two processes) is refused: its events would count twice."""
    out = record(**extra)
    configs = set(out["config"])
    for r in records:
        if not r:
            continue
        configs.update(r.get("config", []))
        if r.get("analysis"):
            out.setdefault("analysis", {}).update(r["analysis"])
        out["inputs"].update(r.get("inputs", {}))
        out["payloads"].update(r.get("payloads", {}))
    out["config"] = sorted(configs)
    out["inputs"] = dict(sorted(out["inputs"].items()))
    _one_name_per_file(out["inputs"])
    out["payloads"] = dict(sorted(out["payloads"].items()))
    if "analysis" in out:
        out["analysis"] = dict(sorted(out["analysis"].items()))
    return out


def _one_name_per_file(inputs: Mapping[str, Mapping[str, Any]]) -> None:
    """Refuse inputs where one file (one ROOT UUID or parquet footer) has two names: its
    events would be counted twice in an output made from both (two datasets, two processes)."""
    seen: dict[str, str] = {}
    for path, info in inputs.items():
        uuid = info.get("uuid")
        if not uuid:
            continue
        first = seen.setdefault(str(uuid), path)
        if first != path:
            from brewflow.errors import InputError

            raise InputError(
                f"{first!r} and {path!r} are the same file (ROOT UUID {uuid}): its events would "
                "be counted twice; keep it in one dataset"
            )


def of(results: Iterable[Any], **extra: Any) -> dict[str, Any]:
    """:func:`combine` of the records that ``results`` (:class:`brewflow.results.model.Result`)
    carry in their metadata."""
    return combine([r.meta.get("provenance") for r in results], **extra)


def compact(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` with its input files summarised (count and SHA-256 of their list with sizes
    and UUIDs), small enough for a plot's or table's metadata."""
    inputs = json.dumps(record.get("inputs", {}), sort_keys=True)
    summary = {
        "files": len(record.get("inputs", {})),
        "sha256": hashlib.sha256(inputs.encode()).hexdigest(),
    }
    return {**record, "inputs": summary}


def to_text(record: Mapping[str, Any]) -> str:
    """One line of JSON (sorted keys) for file metadata and comments."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


def stamp(results: Iterable[Any]) -> str:
    """The :func:`compact` record of ``results``' provenance as one line of JSON: what a plot,
    table, shapes file or datacard made from them carries."""
    return to_text(compact(of(results)))


MARK = "brewflow-provenance"
"""The metadata key (PNG) or prefix (PDF keywords, SVG description, comments) of a record."""


def _pdf_string(data: bytes, start: int) -> str:
    """The PDF literal string that starts after ``(`` at ``start`` (escapes undone)."""
    out, depth, i = bytearray(), 1, start
    while i < len(data):
        c = data[i]
        if c == 0x5C:  # backslash: the next byte is literal
            out.append(data[i + 1])
            i += 2
            continue
        depth += {0x28: 1, 0x29: -1}.get(c, 0)
        if depth == 0:
            break
        out.append(c)
        i += 1
    return out.decode("latin-1")


def read(path: str | Path) -> dict[str, Any]:
    """The provenance record a brewflow output carries: result JSON, inventory, plot (PNG, PDF,
    SVG), table (Markdown, LaTeX; a CSV's is in the Markdown beside it), shapes file (ROOT) or
    datacard. Raises ``ValueError`` if there is none."""
    import html
    import re

    path = Path(path)
    suffix = path.suffix.lower()
    text: str | None = None
    if suffix == ".json":
        from brewflow.results.documents import read_document

        document = read_document(path)
        found = document.get("meta", document).get("provenance")
        if found is not None:
            return found
    elif suffix == ".png":
        from PIL import Image

        with Image.open(path) as image:
            text = getattr(image, "text", {}).get(MARK)  # PNG text chunks
    elif suffix == ".pdf":
        data = path.read_bytes()
        at = data.find(b"/Keywords (")
        text = _pdf_string(data, at + len(b"/Keywords (")) if at >= 0 else None
    elif suffix == ".svg":
        match = re.search(r"<dc:description>(.*?)</dc:description>", path.read_text(), re.S)
        text = html.unescape(match.group(1)) if match else None
    elif suffix == ".root":
        import uproot

        with uproot.open(path) as handle:
            text = str(handle["provenance"]) if "provenance" in handle else None
    elif suffix == ".csv":
        return read(path.with_suffix(".md"))
    else:  # Markdown, LaTeX, datacard: a comment line
        match = re.search(rf"{MARK}: (\{{.*\}})", path.read_text())
        text = match.group(1) if match else None
    if text is None:
        raise ValueError(f"{str(path)!r} carries no brewflow provenance")
    return json.loads(text.split(f"{MARK}: ", 1)[-1])


def read_checked(path: str | Path) -> dict[str, Any]:
    """:func:`read`, with any failure an :class:`~brewflow.errors.InputError` naming ``path``."""
    from brewflow.errors import InputError

    try:
        return read(path)
    except (ValueError, OSError, KeyError) as err:
        raise InputError(f"{path}: {err}") from None
