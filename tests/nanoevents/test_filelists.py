"""A read's files: each file once, whatever its names."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from brewflow.errors import InputError
from brewflow.nanoevents.filelists import distinct_files
from brewflow.nanoevents.reader import lazy_events


def test_a_file_given_twice_is_refused(demo_set, tmp_path):
    """Under one name, two names, a symlink or two overlapping globs: its events would be
    counted twice."""
    path = Path(demo_set["config"]["datasets"]["ww"]["files"][0])
    link = tmp_path / "link.root"
    link.symlink_to(path)
    for files in ([path, path], [path, path.parent / "." / path.name], [path, link],
                  [str(path), str(path.parent / "*.root")]):  # fmt: skip
        with pytest.raises(InputError, match="counted twice"):
            lazy_events(files, step_size=700)
    with pytest.raises(InputError, match="are the same file"):
        lazy_events({str(path): "Events", str(link): "Events"})
    hard = tmp_path / "hard.root"
    os.link(path, hard)
    with pytest.raises(InputError, match="are the same file"):
        distinct_files([str(path), str(hard)])
    assert distinct_files([str(path), str(tmp_path / "other.root")]) == [
        str(path),
        str(tmp_path / "other.root"),
    ]


def test_logical_names_read_from_replicas_are_compared_by_name(monkeypatch):
    """Never looked up on disk (a /store mount may hang); given twice, refused all the same."""
    names = ["/store/mc/a.root", "/store/mc/b.root"]
    monkeypatch.setattr(os, "stat", lambda *_: pytest.fail("looked up on disk"))
    monkeypatch.setattr(os.path, "realpath", lambda *_: pytest.fail("looked up on disk"))
    assert distinct_files(names, remote=names) == names
    with pytest.raises(InputError, match="given twice"):
        distinct_files([*names, names[0]], remote=names)
