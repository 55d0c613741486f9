"""A file's identity read from the file, and the caches verified against it."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import uproot

from brewflow.nanoevents.identity import VerifiedCache, file_identity
from tests.helpers import forge_cache_entry


def _write(path, n: int) -> str:
    with uproot.recreate(path) as f:
        f.mktree("Events", {"x": "float64"}).extend({"x": np.arange(n, dtype=np.float64)})
    return str(path)


def test_identity_is_read_from_the_file_and_its_stat(tmp_path):
    path = _write(tmp_path / "a.root", 5)
    found = file_identity(path, "Events")
    with uproot.open(path) as handle:  # independently: the header and the tree's key
        assert found["uuid"] == str(handle.file.uuid)
        assert found["end"] == handle.file.fEND
        assert found["seek"] == handle.key("Events").fSeekKey
    stat = os.stat(path)
    assert (found["inode"], found["size"], found["ctime_ns"]) == (
        stat.st_ino, stat.st_size, stat.st_ctime_ns)  # fmt: skip
    assert found["path"] == os.path.realpath(path)


def test_same_bytes_written_again_with_mtime_set_back_is_another_identity(tmp_path):
    """ctime changes with every write and cannot be set back: the review's in-place rewrite
    (same inode, size and mtime) is seen even when the ROOT header is the same."""
    path = _write(tmp_path / "a.root", 5)
    before = file_identity(path, "Events")
    stat = os.stat(path)
    data = Path(path).read_bytes()
    time.sleep(0.05)  # past the kernel's timestamp granularity (a few ms on some systems)
    with open(path, "r+b") as handle:
        handle.write(data)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    after = file_identity(path, "Events")
    assert after["uuid"] == before["uuid"]
    assert after["mtime_ns"] == before["mtime_ns"]
    assert after["ctime_ns"] != before["ctime_ns"]
    assert after != before


def test_unreadable_files_have_no_identity(tmp_path):
    (tmp_path / "text.root").write_text("not ROOT")
    assert file_identity(str(tmp_path / "text.root"), "Events") is None
    assert file_identity(str(tmp_path / "missing.root"), "Events") is None
    assert file_identity(_write(tmp_path / "a.root", 1), "Tree") is None  # no such tree


def test_verified_cache_misses_on_any_mismatch(tmp_path):
    cache = VerifiedCache(tmp_path / "c", "k", 1)
    identity = {"uuid": "u", "size": 3}
    cache.store(identity, {"entries": 400})
    assert cache.load(identity) == {"entries": 400}
    entry = cache.entry(identity)
    text = entry.read_text()
    body = "{" + text.split(",", 1)[1].rstrip("\n")  # what follows the checksum member
    assert json.loads(text)["checksum"] == f"sha256:{hashlib.sha256(body.encode()).hexdigest()}"
    assert json.loads(body)["identity"] == identity
    assert cache.load({"uuid": "u", "size": 4}) is None  # another file
    assert VerifiedCache(tmp_path / "c", "k", 2).load(identity) is None  # another layout
    assert VerifiedCache(tmp_path / "c", "other", 1).load(identity) is None  # another kind
    forge_cache_entry(entry, lambda v: v.update(entries=200), fix_checksum=False)
    assert cache.load(identity) is None  # edited: checksum mismatch
    cache.store(identity, {"entries": 400})
    forge_cache_entry(entry, lambda v: v.update(entries=200), fix_checksum=True)
    assert cache.load(identity, lambda v: v["entries"] == 400) is None  # fails the check
    assert cache.load(identity, lambda v: v["missing"]) is None  # a check that raises: miss
    other = {"uuid": "v", "size": 3}
    cache.store(other, {"entries": 1})
    cache.entry(other).replace(entry)  # an entry moved under another key
    assert cache.load(identity) is None
    entry.write_text(entry.read_text()[:40])  # truncated
    assert cache.load(identity) is None
    cache.drop(identity)
    assert not entry.exists()
    cache.drop(identity)  # quietly when absent


def test_no_cache_or_an_unwritable_one_is_skipped(tmp_path):
    VerifiedCache(None, "k", 1).store({"a": 1}, {"b": 2})  # no folder: nothing written
    assert VerifiedCache(None, "k", 1).load({"a": 1}) is None
    (tmp_path / "file").write_text("")  # a folder that cannot be made (even as root)
    cache = VerifiedCache(tmp_path / "file" / "c", "k", 1)
    cache.store({"a": 1}, {"b": 2})
    assert cache.load({"a": 1}) is None
    assert list(tmp_path.iterdir()) == [tmp_path / "file"]
