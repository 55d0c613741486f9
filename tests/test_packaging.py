"""The conda environment file stays in sync with pyproject.toml."""

from __future__ import annotations

import re
import tomllib

import yaml

from tests.helpers import ROOT

CONDA_NAMES = {
    "matplotlib": "matplotlib-base",
    "snakemake": "snakemake-minimal",
    "xgboost-cpu": "py-xgboost-cpu",
}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ ;\[]", requirement, maxsplit=1)[0].lower()


def test_conda_env_lists_every_runtime_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "envs" / "brewflow.yaml").read_text())
    conda = {_name(d) for d in env["dependencies"] if isinstance(d, str)}
    for requirement in project["dependencies"]:
        name = _name(requirement)
        assert CONDA_NAMES.get(name, name) in conda, name
