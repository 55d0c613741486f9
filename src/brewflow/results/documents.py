"""brewflow's JSON documents (results, inventories, ledgers): written atomically with a SHA-256
checksum in their first key, read back verified, so a truncated or altered file is named, never
summed. Standard library only (histograms are serialised by ``uhi`` when a document holds some).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from brewflow.errors import InputError
from brewflow.files import atomic_write
from brewflow.secrets import redact

_CHECKSUM = '{"checksum": "sha256:'


class DamagedFileError(InputError, ValueError):
    """A brewflow JSON file that is truncated, altered or not brewflow's: named, never summed."""


def write_document(path: str | Path, document: dict[str, Any]) -> None:
    """Write ``document`` as JSON (sorted keys), atomically, with a leading ``checksum`` key:
    the SHA-256 of the rest, which :func:`read_document` checks. Still plain JSON; no URL in
    it holds a credential (:func:`brewflow.secrets.redact`, before the checksum)."""
    try:
        body = redact(json.dumps(document, default=_to_json, sort_keys=True, allow_nan=False))
    except ValueError as err:  # json's "Out of range float values are not JSON compliant"
        raise NonFiniteError(
            f"{str(path)!r} not written: a number in it is NaN or infinite"
        ) from err
    digest = hashlib.sha256(body.encode()).hexdigest()
    atomic_write(path, f'{_CHECKSUM}{digest}", {body[1:]}\n')


def regenerate(path: str | Path) -> str:
    """What to run to rebuild the workflow output ``path`` and what was made from it. A plain
    rerun does not: Snakemake sees the outputs made from it as up to date, even when it was
    deleted."""
    return (
        f"regenerate it with `snakemake --cores 2 --forcerun {path}` (with your run's --config "
        "and --directory; a plain rerun keeps it, as what was made from it is up to date)"
    )


def read_document(path: str | Path, *, what: str = "brewflow file", hook: Any = None) -> dict:
    """Read a file written by :func:`write_document`, verifying its checksum; a truncated or
    altered file raises :class:`DamagedFileError` naming it and what to do."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise DamagedFileError(f"cannot read {what} {str(path)!r}: {err}") from None
    fix = regenerate(path)
    if not text.startswith(_CHECKSUM):
        raise DamagedFileError(f"{str(path)!r} is not a {what} (no brewflow checksum); {fix}")
    start = len(_CHECKSUM)
    digest, body = text[start : start + 64], "{" + text[start + 67 :].rstrip("\n")
    if hashlib.sha256(body.encode()).hexdigest() != digest:
        raise DamagedFileError(
            f"{what} {str(path)!r} is damaged (truncated or altered: checksum mismatch); {fix}"
        )
    document = json.loads(body, object_hook=hook)
    return document


def _to_json(value: Any) -> Any:
    import uhi.io.json  # only documents that hold histograms need it

    return uhi.io.json.default(value)


class NonFiniteError(InputError, ValueError):
    """A NaN or infinite number where a sum of weights or a scale factor must be finite."""
