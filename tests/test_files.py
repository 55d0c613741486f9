"""brewflow.files: the one atomic writer, the glob expander and the sweep of temporary files."""

from __future__ import annotations

import os
import stat
import uuid

import numpy as np
import pytest
import uproot

from brewflow.files import atomic_output, atomic_write, expand_glob, sweep_temporary


def _hidden(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_a_failed_write_leaves_the_old_output_and_no_temporary(tmp_path):
    out = tmp_path / "a.json"
    atomic_write(out, "old\n")

    def killed() -> None:
        with atomic_output(out) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed while writing")

    with pytest.raises(RuntimeError):
        killed()
    assert out.read_text() == "old\n"
    assert _hidden(tmp_path) == []


def test_permissions_follow_the_umask(tmp_path):
    before = os.umask(0o027)
    try:
        atomic_write(tmp_path / "a.txt", b"x")
    finally:
        os.umask(before)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o640


def test_the_temporary_has_the_outputs_name_so_root_files_are_reproducible(tmp_path):
    """ROOT files record their own name: written through the atomic writer they are
    byte-identical to a direct write of the same name."""
    identity = uuid.UUID(int=7)

    def write(path):
        with uproot.recreate(path, uuid_function=lambda: identity) as f:
            f["h"] = np.histogram([1.0, 2.0, 2.5], bins=3, range=(0, 3))

    (tmp_path / "direct").mkdir()
    write(tmp_path / "direct" / "shapes.root")
    with atomic_output(tmp_path / "shapes.root") as tmp:
        assert tmp.name == "shapes.root"
        write(tmp)
    assert (tmp_path / "shapes.root").read_bytes() == (
        tmp_path / "direct" / "shapes.root"
    ).read_bytes()


def test_a_folder_output_is_replaced_whole_and_stale_parts_are_cleared(tmp_path):
    out = tmp_path / "skim"
    with atomic_output(out, directory=True) as tmp:
        (tmp / "part-0.parquet").write_text("first run")
        (tmp / "part-1.parquet").write_text("first run")
    stale = tmp_path / ".skim.0123456789ab.tmp"  # a killed writer's folder
    stale.mkdir()
    (stale / "part-9.parquet").write_text("killed")
    with atomic_output(out, directory=True, clear_stale=True) as tmp:
        (tmp / "part-0.parquet").write_text("second run")
    assert sorted(p.name for p in out.iterdir()) == ["part-0.parquet"]
    assert _hidden(tmp_path) == []


def test_sweep_removes_what_killed_writers_left(tmp_path):
    (tmp_path / "merge").mkdir()
    (tmp_path / "merge" / "dy.json").write_text("{}")
    left = [tmp_path / "merge" / ".dy.json.0123456789ab.tmp", tmp_path / ".skim.abc.tmp"]
    for folder in left:
        folder.mkdir()
        (folder / "x").write_text("partial")
    assert sorted(sweep_temporary(tmp_path)) == sorted(left)
    assert (tmp_path / "merge" / "dy.json").is_file()
    assert _hidden(tmp_path / "merge") == []


def test_expand_glob(tmp_path):
    for name in ("a/x.root", "a/b/y.root", "a/c.root/z.root"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    found = expand_glob(str(tmp_path / "a" / "**" / "*.root"))
    assert [os.path.relpath(f, tmp_path) for f in found] == [
        "a/b/y.root",
        "a/c.root/z.root",
        "a/x.root",
    ]  # recursive, sorted, the folder c.root left out
    assert expand_glob(str(tmp_path / "missing.root")) == [str(tmp_path / "missing.root")]
    assert expand_glob(str(tmp_path / "*.none")) == []
