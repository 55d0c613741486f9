"""What code makes an output (brewflow.code): the analysis's own modules found without
importing them, brewflow's commit, and the analysis repository's commit, in a real git clone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from brewflow.code import analysis_modules, find_module
from brewflow.config import load_config
from brewflow.config.specs import job_spec
from tests.helpers import DEMO_CONFIG, ROOT


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def analysis(tmp_path) -> Path:
    """A user's analysis: a module, its own helper, a package with a relative import; and
    imports of the standard library, an installed package and brewflow."""
    _write(tmp_path / "myana.py", "import os\nimport numpy as np\nimport helpers\n"
           "from brewflow.demo import analysis as demo\nfrom mypkg.cuts import tight\n"
           "def analysis(events, context):\n    return demo(events, context)\n")  # fmt: skip
    _write(tmp_path / "helpers.py", "SCALE = 1.0\n")
    _write(tmp_path / "mypkg" / "__init__.py", "")
    _write(tmp_path / "mypkg" / "cuts.py", "from . import numbers\ntight = numbers.X\n")
    _write(tmp_path / "mypkg" / "numbers.py", "X = 3\n")
    _write(tmp_path / "unused.py", "raise RuntimeError('never imported, never hashed')\n")
    return tmp_path


def test_the_analysis_modules_are_found_without_importing_them(analysis):
    found = analysis_modules("myana:analysis", [str(analysis), *sys.path])
    assert set(found) == {"myana", "helpers", "mypkg", "mypkg.cuts", "mypkg.numbers"}
    assert all(v.startswith("sha256:") for v in found.values())
    assert "helpers" not in sys.modules  # nothing was imported
    (analysis / "helpers.py").write_text("SCALE = 1.1\n")  # an edit of an imported module
    edited = analysis_modules("myana:analysis", [str(analysis), *sys.path])
    assert [m for m in found if found[m] != edited[m]] == ["helpers"]
    assert find_module("numpy") is not None
    assert analysis_modules("brewflow.demo:analysis") == {}  # brewflow's: its commit names it


def test_editing_the_analysis_changes_the_analyze_spec_only(analysis, monkeypatch):
    """Regression (issue 27.5): with analysis.callable myana:analysis, an edit of the module
    (or of one it imports) reran nothing; the jobs that run it now depend on its source."""
    monkeypatch.chdir(analysis)  # the run's folder: where the module is looked up
    config = load_config(DEMO_CONFIG)
    config["analysis"]["callable"] = "myana:analysis"
    kinds = {"analyze": {"dataset": "dy"}, "skim": {"skim": "zmumu", "dataset": "dy"},
             "scale": {"dataset": "dy"},
             "plot": {"region": "zmumu", "histogram": "mll"}}  # fmt: skip
    before = {k: job_spec(k, config, **p).fingerprint() for k, p in kinds.items()}
    (analysis / "mypkg" / "numbers.py").write_text("X = 4\n")
    after = {k: job_spec(k, config, **p).fingerprint() for k, p in kinds.items()}
    assert [k for k in kinds if before[k] != after[k]] == ["analyze", "skim"]


def _git(*args: str, cwd: Path) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}  # fmt: skip
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          check=True)  # fmt: skip
    return done.stdout.strip()


def test_provenance_records_the_real_commits_in_a_git_clone(tmp_path, analysis):
    """Regression (issue 27.6): every output recorded "git": null (the repository was looked
    up one folder too low). A clone of brewflow records its HEAD, "-dirty" once edited, and
    the analysis repository (the working directory) its own commit."""
    clone = tmp_path / "brewflow"
    _git("clone", "-q", "--no-hardlinks", str(ROOT), str(clone), cwd=tmp_path)
    head = _git("rev-parse", "HEAD", cwd=clone)
    _git("init", "-q", cwd=analysis)
    _git("add", "myana.py", "helpers.py", cwd=analysis)
    _git("commit", "-q", "-m", "analysis", cwd=analysis)
    analysis_head = _git("rev-parse", "HEAD", cwd=analysis)
    probe = ("import json; from brewflow.results import provenance; r = provenance.record(); "
             "print(json.dumps([r['git'], r['analysis_git'], r['brewflow']]))")  # fmt: skip

    def record() -> list:
        env = {**os.environ, "PYTHONPATH": str(clone / "src")}
        done = subprocess.run([sys.executable, "-c", probe], cwd=analysis, env=env,
                              capture_output=True, text=True, check=True)  # fmt: skip
        return json.loads(done.stdout)

    assert record() == [head, analysis_head, _version(clone)]
    readme = clone / "README.md"
    readme.write_text(readme.read_text() + "\nedited\n")  # not brewflow's code
    assert record()[0] == head
    (analysis / "helpers.py").write_text("SCALE = 2.0\n")
    source = clone / "src" / "brewflow" / "code.py"
    source.write_text(source.read_text() + "\n# an edit\n")
    assert record()[:2] == [f"{head}-dirty", f"{analysis_head}-dirty"]


def _version(clone: Path) -> str:
    text = (clone / "src" / "brewflow" / "__init__.py").read_text()
    return text.split('__version__ = "', 1)[1].split('"', 1)[0]
