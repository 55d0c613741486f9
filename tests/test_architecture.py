"""The package's shape, checked: the import layers (import-linter, contracts in pyproject),
the type check (mypy), and what the light entry points load at run time."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("awkward", "dask", "dask_awkward", "uproot", "correctionlib", "numpy", "hist")


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(Path(sys.executable).parent))
    if path is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return path


def test_import_layers_hold():
    """lint-imports: each layer imports only the layers below it, physics modules never read
    the config, and what the Snakefile and the small jobs import loads no array stack."""
    done = subprocess.run([_tool("lint-imports")], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "BROKEN" not in done.stdout
    assert "KEPT" in done.stdout


def test_package_type_checks():
    done = subprocess.run([_tool("mypy")], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:]


@pytest.mark.parametrize(
    ("module", "allowed"),
    [
        ("brewflow.cli", ()),  # brewflow --help, --version
        ("brewflow.config", ()),  # the Snakefile plans a run from these two
        ("brewflow.pipeline", ()),
        ("brewflow.jobs.combine", ("numpy", "hist")),  # merge, scale, stack: no array stack
        ("brewflow.outputs.tables", ("numpy",)),  # cutflow tables: from the files' JSON
    ],
)
def test_light_entry_points_load_no_array_stack(module, allowed):
    """At run time, not only in the import graph: a fresh interpreter imports ``module`` and
    lists what it loaded; the umask is left as it was."""
    code = (
        f"import os, sys; before = os.umask(0o027); os.umask(before); import {module}; "
        "after = os.umask(before); os.umask(after); "
        f"print(*[m for m in {HEAVY!r} if m in sys.modules]); print(after == before)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    loaded, umask_kept = out.stdout.splitlines()
    assert set(loaded.split()) <= set(allowed), f"{module} loads {loaded}"
    assert umask_kept == "True"
