"""The on-disk tree metadata cache: described once, keyed by file identity, safe to damage."""

from __future__ import annotations

import os

import awkward as ak
import pytest
import uproot

from brewflow.errors import InputError
from brewflow.nanoevents import inputs, metadata, trees
from brewflow.nanoevents.reader import lazy_events


def _write(path, values):
    with uproot.recreate(path) as f:
        f.mktree("Events", {"x": "float64"}).extend({"x": ak.Array(values)})


def _entries(folder):
    return sorted(p.name for p in (folder / "trees").glob("*.json"))


def test_second_description_parses_nothing(tmp_path, monkeypatch, demo_set):
    monkeypatch.setenv(metadata.CACHE_ENV, str(tmp_path / "cache"))
    path = demo_set["config"]["datasets"]["dy"]["files"][0]
    trees.clear()
    first = metadata.describe(path, "Events")
    ttree = trees.open_tree(path, "Events")
    assert first.entries == ttree.num_entries
    assert first.clusters == trees.cluster_edges(ttree)
    assert first.record_form() == trees.branch_form(ttree)
    trees.clear()

    def refuse(*args, **kwargs):
        raise AssertionError("the tree was parsed although its description is cached")

    monkeypatch.setattr(inputs.trees, "open_tree", refuse)
    assert metadata.describe(path, "Events") == first
    events = lazy_events([path], step_size=500)  # builds from the cache alone
    assert events.npartitions == -(-first.entries // 500)


def test_a_rewritten_file_is_described_again(tmp_path, monkeypatch):
    monkeypatch.setenv(metadata.CACHE_ENV, str(tmp_path / "cache"))
    path = str(tmp_path / "a.root")
    _write(path, [1.0, 2.0])
    assert metadata.describe(path, "Events").entries == 2
    _write(path, [1.0, 2.0, 3.0])
    os.utime(path, ns=(1, 1))
    trees.clear()
    assert metadata.describe(path, "Events").entries == 3
    assert len(_entries(tmp_path / "cache")) == 2


def test_a_damaged_entry_is_ignored_and_rewritten(tmp_path, monkeypatch):
    monkeypatch.setenv(metadata.CACHE_ENV, str(tmp_path / "cache"))
    path = str(tmp_path / "a.root")
    _write(path, [1.0, 2.0])
    expected = metadata.describe(path, "Events")
    (entry,) = (tmp_path / "cache" / "trees").glob("*.json")
    for damage in ("{not json", '{"version": 1, "entries": 5}', "[]"):
        entry.write_text(damage)
        assert metadata.describe(path, "Events") == expected
    assert metadata.describe(path, "Events") == expected  # rewritten: read back


def test_cache_off_writes_nothing_and_bad_files_still_say_why(tmp_path, monkeypatch):
    monkeypatch.setenv(metadata.CACHE_ENV, "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    path = str(tmp_path / "a.root")
    _write(path, [1.0])
    assert metadata.describe(path, "Events").entries == 1
    assert not (tmp_path / "xdg").exists()
    with pytest.raises(InputError, match="does not exist"):
        metadata.describe(str(tmp_path / "missing.root"), "Events")
    (tmp_path / "text.root").write_text("not ROOT")
    with pytest.raises(InputError, match="not a readable ROOT file"):
        metadata.describe(str(tmp_path / "text.root"), "Events")
