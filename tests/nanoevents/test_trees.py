"""The process-wide tree cache: one open per file, a rewritten file is opened again."""

from __future__ import annotations

import os

import awkward as ak
import uproot

from brewflow.nanoevents import trees


def _write(path, values):
    with uproot.recreate(path) as f:
        f.mktree("Events", {"x": "float64"}).extend({"x": ak.Array(values)})


def test_one_open_per_file_until_it_changes(tmp_path, monkeypatch):
    path = str(tmp_path / "a.root")
    _write(path, [1.0, 2.0])
    opened = []
    real_open = uproot.open
    monkeypatch.setattr(uproot, "open", lambda *a, **k: opened.append(a) or real_open(*a, **k))
    trees.clear()
    first = trees.open_tree(path, "Events")
    assert trees.open_tree(path, "Events") is first
    assert len(opened) == 1
    _write(path, [1.0, 2.0, 3.0])
    os.utime(path, ns=(1, 1))  # a different mtime even on coarse clocks
    again = trees.open_tree(path, "Events")
    assert again is not first
    assert again.num_entries == 3
    assert len(opened) == 2
    trees.clear()


def test_branch_form_needs_no_basket(tmp_path):
    path = str(tmp_path / "b.root")
    data = {"x": ak.Array([1.5, 2.5]), "J": ak.zip({"pt": ak.Array([[1.0], []])})}
    with uproot.recreate(path) as f:
        f.mktree("Events", {k: v.type for k, v in data.items()}).extend(data)
    form = trees.branch_form(trees.open_tree(path, "Events"))
    assert set(form.fields) == {"nJ", "J_pt", "x"}
    assert str(form.content("x").primitive) == "float64"
    trees.clear()
