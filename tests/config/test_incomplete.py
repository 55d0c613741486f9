"""Notes of analyze jobs that skipped chunks of remote files (issue 29: fill-in)."""

from __future__ import annotations

import pytest

from brewflow.config import incomplete


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def test_a_note_asks_for_a_rerun_until_the_chunks_are_read():
    assert incomplete.newest("dy", "spec") is None
    chunks = [["root://a//f.root", 0, 10]]
    assert incomplete.record("dy", "dy.all", "spec", chunks) == 1
    assert incomplete.newest("dy", "spec") is not None
    assert incomplete.newest("dy", "other spec") is None  # a job of another config
    assert incomplete.record("dy", "dy.all", "spec", []) == 0  # read everything
    assert incomplete.newest("dy", "spec") is None


def test_the_same_chunks_skipped_run_after_run_are_no_longer_retried():
    """Regression (issue 29 review): a file broken for good made every run rerun its jobs
    and everything after them."""
    chunks = [["root://a//f.root", 0, 10]]
    for attempt in range(1, incomplete.ATTEMPTS):
        assert incomplete.record("dy", "dy.all", "spec", chunks) == attempt
        assert incomplete.newest("dy", "spec") is not None
    assert incomplete.record("dy", "dy.all", "spec", chunks) == incomplete.ATTEMPTS
    assert incomplete.newest("dy", "spec") is None
    other = [["root://a//f.root", 10, 20]]  # other chunks skipped now: tried again
    assert incomplete.record("dy", "dy.all", "spec", other) == 1
    assert incomplete.newest("dy", "spec") is not None


def test_a_damaged_note_is_ignored(tmp_path):
    folder = incomplete.INCOMPLETE / "dy"
    folder.mkdir(parents=True)
    (folder / "dy.all.json").write_text("{not json")
    assert incomplete.newest("dy", "spec") is None
    assert incomplete.record("dy", "dy.all", "spec", [["root://a//f.root", 0, 1]]) == 1
