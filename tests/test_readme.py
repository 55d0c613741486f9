"""The README's names stay true: every ``from brewflow... import ...`` of its code blocks and
every dotted ``brewflow.`` name it mentions resolves in the package."""

from __future__ import annotations

import importlib
import re

import pytest

from tests.helpers import ROOT

README = (ROOT / "README.md").read_text()


def _resolve(dotted: str) -> object:
    """The module or attribute named ``dotted`` (``brewflow.corrected.CorrectedEvents``)."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for name in parts[i:]:
            target = getattr(target, name)
        return target
    raise ModuleNotFoundError(dotted)


IMPORTS = sorted(set(re.findall(r"^from (brewflow[\w.]*) import ([\w, ]+)$", README, re.M)))
NAMES = sorted(set(re.findall(r"`(brewflow(?:\.[A-Za-z_]\w*)+)", README)))


@pytest.mark.parametrize(("module", "names"), IMPORTS)
def test_readme_imports_work(module, names):
    loaded = importlib.import_module(module)
    for name in (n.strip() for n in names.split(",")):
        assert hasattr(loaded, name), f"from {module} import {name}"
    assert not module.startswith("brewflow._"), f"the README imports a private module: {module}"


@pytest.mark.parametrize("dotted", NAMES)
def test_readme_names_resolve(dotted):
    _resolve(dotted)


def test_the_readme_was_read():
    assert len(IMPORTS) >= 5
    assert len(NAMES) >= 10
