"""The on-disk tree metadata cache: described once, keyed by and verified against the file's
identity, safe to damage or edit."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import awkward as ak
import numpy as np
import pytest
import uproot

from brewflow.errors import InputError
from brewflow.nanoevents import inputs, metadata, trees
from brewflow.nanoevents.reader import FileChangedError, lazy_events
from tests.helpers import forge_cache_entry


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


# --- issue 27.2: the cache is a hint, verified against the file --------------------------------

SIZE = 60_000  # bytes: every file image below, padded (ROOT ignores bytes past its fEND)


def _image(folder, n: int) -> bytes:
    """The bytes of a ROOT file whose ``Events`` has ``x = 0, 1, ..., n - 1``, padded to SIZE."""
    path = folder / f"image-{n}.root"
    _write(path, np.arange(n, dtype=np.float64))
    data = path.read_bytes()
    assert len(data) < SIZE
    return data + b"\0" * (SIZE - len(data))


def _rewrite_in_place(path, data: bytes) -> None:
    """Overwrite ``path`` in place (same inode, same size) and set its mtime back: the review's
    file that the old cache key (path, device, inode, size, mtime) could not tell apart."""
    before = os.stat(path)
    time.sleep(0.05)  # past the kernel's timestamp granularity
    with open(path, "r+b") as handle:
        handle.write(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino, before.st_size, before.st_mtime_ns)  # fmt: skip


def _read_x(path) -> np.ndarray:
    return ak.to_numpy(lazy_events([str(path)], step_size=150).x.compute())


def _forge(folder, edit, *, fix_checksum: bool) -> None:
    """Edit the one tree cache entry in ``folder`` by hand."""
    (entry,) = (folder / "trees").glob("*.json")
    forge_cache_entry(entry, edit, fix_checksum=fix_checksum)


@pytest.mark.parametrize(("first", "second"), [(200, 400), (400, 200)])
def test_a_file_rewritten_in_place_with_its_mtime_set_back_is_read_whole(
    first, second, tmp_path, monkeypatch
):
    """Regression (issue 27.2): the cached 200 entries of a file rewritten with 400 read 200 of
    its events, exit 0; the reverse was a TypeError traceback."""
    monkeypatch.setenv(metadata.CACHE_ENV, str(tmp_path / "cache"))
    path = tmp_path / "a.root"
    path.write_bytes(_image(tmp_path, first))
    assert metadata.describe(str(path), "Events").entries == first
    trees.clear()
    _rewrite_in_place(path, _image(tmp_path, second))
    np.testing.assert_array_equal(_read_x(path), np.arange(second, dtype=np.float64))
    trees.clear()


def _halve(value: dict) -> None:
    value["entries"] //= 2


def _halve_consistently(value: dict) -> None:
    value["entries"] //= 2
    value["clusters"] = [0, value["entries"]]


def _double_consistently(value: dict) -> None:
    value["entries"] *= 2
    value["clusters"] = [0, value["entries"]]


@pytest.mark.parametrize(
    ("edit", "fix_checksum"),
    [(_halve, False), (_halve, True), (_halve_consistently, False), (_double_consistently, False)],
)
def test_an_entry_edited_by_hand_is_a_miss(edit, fix_checksum, tmp_path, monkeypatch):
    """Regression (issue 27.2): an entry with its entries halved was trusted (200 of 400
    events read, exit 0). A broken checksum or an entry that contradicts itself is a miss."""
    monkeypatch.setenv(metadata.CACHE_ENV, str(tmp_path / "cache"))
    path = tmp_path / "a.root"
    _write(path, np.arange(400, dtype=np.float64))
    metadata.describe(str(path), "Events")
    _forge(tmp_path / "cache", edit, fix_checksum=fix_checksum)
    trees.clear()
    assert metadata.describe(str(path), "Events").entries == 400
    _forge(tmp_path / "cache", edit, fix_checksum=fix_checksum)
    np.testing.assert_array_equal(_read_x(path), np.arange(400, dtype=np.float64))
    trees.clear()


@pytest.mark.parametrize(("entries", "edit"), [(400, _halve_consistently),
                                               (200, _double_consistently)])  # fmt: skip
def test_a_forged_entry_with_a_valid_checksum_is_a_named_error_then_dropped(
    entries, edit, tmp_path, monkeypatch
):
    """An entry forged consistently, checksum recomputed, passes every check the cache can
    make; reading a chunk compares the tree's real entries: a named error (never part of the
    file, never a TypeError), and the entry is dropped, so the next run reads it all."""
    monkeypatch.setenv(metadata.CACHE_ENV, str(tmp_path / "cache"))
    path = tmp_path / "a.root"
    _write(path, np.arange(entries, dtype=np.float64))
    metadata.describe(str(path), "Events")
    _forge(tmp_path / "cache", edit, fix_checksum=True)
    trees.clear()
    forged = metadata.describe(str(path), "Events").entries
    assert forged != entries  # trusted: nothing in the cache contradicts it
    message = (rf"file '{path}', tree 'Events': has {entries} entries, the graph was built "
               rf"for {forged}: the file changed .*dropped.*rerun")  # fmt: skip
    with pytest.raises(FileChangedError, match=message) as raised:
        _read_x(path)
    assert isinstance(raised.value, InputError)
    assert not list((tmp_path / "cache" / "trees").glob("*.json"))  # dropped
    trees.clear()
    np.testing.assert_array_equal(_read_x(path), np.arange(entries, dtype=np.float64))
    trees.clear()


def test_adl_command_with_a_forged_entry_fails_in_one_line_then_recovers(shared_data, tmp_path):
    """``brewflow adl`` on real NanoAOD whose tree cache entry claims half its events: exit 2
    and one line naming the file (no traceback, no partial result); the rerun reads all 40."""
    path = tmp_path / "nano_dy.root"
    shutil.copyfile(shared_data / "nanoaod" / "nano_dy.root", path)
    env = {**os.environ, metadata.CACHE_ENV: str(tmp_path / "cache")}

    def adl(output: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "brewflow", "adl", "--output", output, str(path)]
        return subprocess.run(command, capture_output=True, text=True, env=env, check=False)

    first = adl(str(tmp_path / "first.json"))
    assert first.returncode == 0, first.stderr
    _forge(tmp_path / "cache", _halve_consistently, fix_checksum=True)
    forged = adl(str(tmp_path / "forged.json"))
    assert forged.returncode == 2
    assert "Traceback" not in forged.stderr
    assert "has 40 entries, the graph was built for 20: the file changed" in forged.stderr
    assert not (tmp_path / "forged.json").exists()
    again = adl(str(tmp_path / "again.json"))
    assert again.returncode == 0, again.stderr
    document = json.loads((tmp_path / "again.json").read_text())
    assert document == json.loads((tmp_path / "first.json").read_text())
    assert uproot.open(path)["Events"].num_entries == 40
