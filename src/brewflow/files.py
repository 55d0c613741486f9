"""Files: one atomic writer for every output, one glob expander, the sweep of temporary files.

Every output brewflow writes (JSON, ROOT, PNG/PDF, parquet folders, gzipped payloads) goes
through :func:`atomic_output`: the writer gets a hidden temporary path beside the output, which
is renamed over the output once it is complete, or removed if writing fails, so a reader never
sees a half-written file and a killed job leaves only ``.<name>.*.tmp`` files that
:func:`sweep_temporary` removes. Text written through :func:`atomic_write` has every URL's
credentials redacted (:func:`brewflow.secrets.redact`): no output holds one. Imports nothing
beyond the standard library.
"""

from __future__ import annotations

import glob
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from brewflow.secrets import redact

__all__ = ["atomic_output", "atomic_write", "expand_glob", "sweep_temporary", "temporary_folder"]


def temporary_folder(path: str | Path) -> Path:
    """A hidden, unique folder beside ``path`` to write it in: ``.<name>.<random>.tmp``."""
    path = Path(path)
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")


@contextmanager
def atomic_output(
    path: str | Path, *, directory: bool = False, clear_stale: bool = False
) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s content to; move it to ``path`` when the
    block ends without an error (replacing a previous file or folder whole), else remove it.

    The temporary path has ``path``'s own name, inside a hidden folder beside it (see
    :func:`temporary_folder`), so writers that record their file's name (ROOT files do) or
    pick a format by extension write exactly what they would write to ``path``. It is
    absolute, so workers in other processes can write into it. ``directory=True`` creates it
    as a folder (e.g. for parquet or ROOT parts). ``clear_stale=True`` first removes what
    killed writers of ``path`` left (for outputs that one job writes, as in a workflow).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)  # errors name the path as given
    path = path.absolute()
    if clear_stale:
        for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
            _remove(stale)
    folder = temporary_folder(path)
    folder.mkdir()
    tmp = folder / path.name
    if directory:
        tmp.mkdir()
    try:
        yield tmp
        if directory and path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)  # never mix the parts of two runs
        os.replace(tmp, path)
    finally:
        _remove(folder)


def atomic_write(path: str | Path, data: str | bytes) -> None:
    """Write ``data`` (text, its credentials redacted, or bytes) to ``path`` atomically, with
    the permissions of a plainly created file (0666 less the umask)."""
    with atomic_output(path) as tmp:
        tmp.write_bytes(redact(data).encode() if isinstance(data, str) else data)


def expand_glob(pattern: str) -> list[str]:
    """The files a pattern names: a glob's matching files, sorted (``**`` recurses; folders
    are left out); a plain path as given (whether it exists is the caller's question)."""
    if not glob.has_magic(pattern):
        return [pattern]
    return [m for m in sorted(glob.glob(pattern, recursive=True)) if os.path.isfile(m)]


def sweep_temporary(root: str | Path) -> list[Path]:
    """Remove the hidden temporary files and folders (``.<name>.*.tmp*``) that jobs killed
    while writing left under ``root``; call only while no job writes there (the workflow's
    start)."""
    removed = []
    for path in sorted(Path(root).rglob(".*.tmp*")):
        if not path.exists() and not path.is_symlink():
            continue  # inside a folder removed above
        _remove(path)
        removed.append(path)
    return removed


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
