"""What code makes an output: brewflow's version and commit, and the analysis's own modules.

A job is up to date only if it was made by today's code. Two kinds of code make it:

- **brewflow**: its version and, installed from a git checkout, the commit (``<sha>-dirty``
  with uncommitted changes to its package files; then also the SHA-256 of its sources, so that
  every edit of brewflow is a new identity, and an edit of the demo config is none);
- **the analysis**: the module of ``analysis.callable`` and the user's own modules it imports,
  found *without importing them* (a module's file is looked up on the search path, its imports
  read with :mod:`ast`, and followed into every module that is neither in the standard library,
  nor an installed package, nor brewflow itself), each with the SHA-256 of its source (an
  analysis installed as a package: its version); the files of ``analysis.files`` (what it reads
  or imports by name at run time) by content;
- **the libraries**: the versions of :data:`PACKAGES`.

Modules are looked up on ``sys.path`` and then in the working directory (the run's folder),
the same search :func:`import_analysis` uses, so a module next to the config works without
``PYTHONPATH``. Standard library only: the Snakefile's planning imports it.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import os
import subprocess
import sys
import sysconfig
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

__all__ = [
    "PACKAGE",
    "PACKAGES",
    "analysis_modules",
    "brewflow_identity",
    "file_digests",
    "find_module",
    "git_commit",
    "import_analysis",
    "package_versions",
    "search_path",
]

PACKAGE = Path(__file__).resolve().parent
"""brewflow's package folder (``src/brewflow`` in a checkout)."""

_CHECKOUT = PACKAGE.parents[1]


def git_commit(folder: str | Path, only: str | Path | None = None) -> str | None:
    """The commit checked out in the git work tree containing ``folder`` (``<sha>-dirty``
    when tracked files differ from it; with ``only``, tracked files under that path), or None
    when it is in none (or git is missing)."""
    try:
        run = functools.partial(subprocess.run, capture_output=True, text=True, check=True,
                                timeout=20, cwd=folder)  # fmt: skip
        commit = run(["git", "rev-parse", "HEAD"]).stdout.strip()
        status = ["git", "status", "--porcelain", "--untracked-files=no"]
        dirty = run([*status, *(["--", str(only)] if only else [])]).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def _sources_digest(folder: Path) -> str:
    """SHA-256 of every Python file and schema under ``folder`` (names and contents)."""
    digest = hashlib.sha256()
    files = sorted(p for p in folder.rglob("*") if p.suffix in (".py", ".yaml", ".json"))
    for path in files:
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return f"sha256:{digest.hexdigest()}"


@functools.cache
def brewflow_identity() -> dict[str, str | None]:
    """``{"version", "commit", "sources"}`` of the running brewflow: ``commit`` from its
    checkout (None when not installed from one; ``-dirty`` when its package files differ from
    it: an edit of the demo config or the README is not an edit of brewflow), ``sources`` the
    digest of its package files when they have uncommitted changes or there is no commit to
    name the code."""
    from brewflow import __version__

    commit = git_commit(_CHECKOUT, PACKAGE) if (_CHECKOUT / ".git").exists() else None
    out: dict[str, str | None] = {"version": __version__, "commit": commit}
    if commit is None or commit.endswith("-dirty"):
        out["sources"] = _sources_digest(PACKAGE)
    return out


def search_path() -> list[str]:
    """Where analysis modules are looked up, in order: ``sys.path``, then the working
    directory."""
    cwd = os.getcwd()
    return [*(p or cwd for p in sys.path), cwd]


def find_module(name: str, path: Iterable[str] | None = None) -> Path | None:
    """The source file of module ``name`` (dotted) on ``path`` (:func:`search_path`), found
    without importing anything; None when there is none (or it is not a Python source)."""
    parts = name.split(".")
    for base in search_path() if path is None else path:
        folder = Path(base, *parts[:-1])
        for candidate in (folder / f"{parts[-1]}.py", folder / parts[-1] / "__init__.py"):
            if candidate.is_file():
                return candidate.resolve()
    return None


@functools.cache
def _installed() -> tuple[Path, ...]:
    """Folders of the standard library and of installed packages, and brewflow's own."""
    names = ("stdlib", "platstdlib", "purelib", "platlib")
    paths = {Path(p).resolve() for key in names if (p := sysconfig.get_paths().get(key))}
    return (*sorted(paths), PACKAGE)


def _is_own(path: Path) -> bool:
    """A user's module: not in the standard library, an installed package or brewflow."""
    return not any(path.is_relative_to(folder) for folder in _installed())


def _imported(path: Path, module: str) -> set[str]:
    """The modules that the source at ``path`` (module ``module``) imports, as dotted names
    (``from a import b`` gives ``a`` and ``a.b``; relative imports resolved)."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".") if package else []
                anchor = anchor[: len(anchor) - (node.level - 1)] if node.level > 1 else anchor
                base = ".".join([*anchor, *([base] if base else [])])
            if base:
                out.add(base)
            out.update(f"{base}.{alias.name}" if base else alias.name for alias in node.names)
    return out


_FOUND: dict[tuple[str, tuple[str, ...]], tuple[dict[str, str], tuple[tuple, ...]]] = {}


def _stamp(files: Iterable[Path]) -> tuple[tuple, ...]:
    """What changes when one of ``files`` is edited, replaced or removed."""
    out: list[tuple] = []
    for f in files:
        try:
            st = f.stat()
        except OSError:
            out.append((str(f), None))
            continue
        out.append((str(f), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return tuple(out)


def analysis_modules(callable_spec: str, path: Iterable[str] | None = None) -> dict[str, str]:
    """Module name -> ``sha256:<hex>`` of its source, for the module of ``callable_spec``
    (``'module:function'``) and every user module it imports, directly or not (see the module
    doc). A module inside brewflow or an installed package is not listed (brewflow's identity
    and the package versions name it); an analysis module that cannot be found gives ``{}``
    (the job then fails naming it). Planning a run asks once per job: the answer is kept while
    none of the files it read changes (and no module appears earlier on the path: the
    folders searched are part of the key)."""
    search = tuple(search_path() if path is None else path)
    key = (callable_spec, search)
    if key in _FOUND:
        found, stamp = _FOUND[key]
        files = [Path(entry[0]) for entry in stamp]
        if _stamp(files) == stamp:
            return dict(found)
    found, read = _analysis_modules(callable_spec, search)
    _FOUND[key] = (found, _stamp(read))
    return dict(found)


def _analysis_modules(
    callable_spec: str, search: tuple[str, ...]
) -> tuple[dict[str, str], list[Path]]:
    """:func:`analysis_modules`, and the source files it read."""
    start = callable_spec.partition(":")[0]
    out: dict[str, str] = {}
    read: list[Path] = []
    pending, seen = [start], set()
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        source = find_module(module, search)
        installed = module == start and module.split(".")[0] != "brewflow"  # brewflow's:
        if source is not None and not _is_own(source) and installed:  # its identity names it
            out[module] = _installed_version(module)  # an installed analysis: its version
        if source is None or not _is_own(source):
            continue
        read.append(source)
        out[module] = f"sha256:{hashlib.sha256(source.read_bytes()).hexdigest()}"
        pending.extend(sorted(_imported(source, module)))
        parent = module.rpartition(".")[0]
        if parent:  # a package's __init__ runs before its modules
            pending.append(parent)
    return dict(sorted(out.items())), read


def _installed_version(module: str) -> str:
    """``<distribution> <version>`` of the installed package providing ``module``."""
    from importlib import metadata

    top = module.split(".")[0]
    names = metadata.packages_distributions().get(top, [])
    return ", ".join(f"{n} {metadata.version(n)}" for n in names) or "installed (no version)"


PACKAGES = (
    "awkward",
    "boost-histogram",
    "correctionlib",
    "dask",
    "dask-awkward",
    "hist",
    "matplotlib",
    "mplhep",
    "numpy",
    "pandas",
    "pyhf",
    "snakemake",
    "uproot",
    "vector",
)
"""The packages whose versions name what code made an output (a spec holds them: an upgrade
reruns; every provenance record lists them)."""


@functools.cache
def package_versions() -> dict[str, str]:
    """Name -> version of each of :data:`PACKAGES` installed."""
    from importlib import metadata

    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def file_digests(paths: Iterable[str | Path]) -> dict[str, str]:
    """Path -> ``sha256:<hex>`` of each file's content (``missing`` for one that is not);
    each file hashed once per process while unchanged (device, inode, size, modification and
    change time: any write changes ``ctime``, which cannot be set back)."""
    out = {}
    for path in paths:
        try:
            stat = os.stat(path)
            key = (str(path), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns,
                   stat.st_ctime_ns)  # fmt: skip
            if key not in _DIGESTS:
                _DIGESTS[key] = f"sha256:{hashlib.sha256(Path(path).read_bytes()).hexdigest()}"
            out[str(path)] = _DIGESTS[key]
        except OSError:
            out[str(path)] = "missing"
    return out


_DIGESTS: dict[tuple[str | int, ...], str] = {}


def import_analysis(module: str) -> ModuleType:
    """Import the analysis module ``module``, looked up as :func:`find_module` does (the
    working directory after ``sys.path``)."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.append(cwd)
    return importlib.import_module(module)
