"""brewflow's use of uproot's private state: the partial TTree parse gives the wanted branches
exactly as a full parse; the fixed clock of written files; on an uproot outside the verified
range, uproot's public path with a one-line warning (issue 30)."""

from __future__ import annotations

import datetime
import logging
import re
import tomllib
import types
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot
from packaging.requirements import Requirement

from brewflow import uproot_private as partial

ADL = [
    "MET_pt", "MET_phi", "nJet", "Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass", "Jet_btagDeepFlavB",
    "nMuon", "Muon_pt", "Muon_charge", "nElectron", "Electron_pt", "Electron_charge",
]  # fmt: skip
REAL = ["nano_dy.root", "nano_dimuon.root", "nano_tt_v12.root", "missing_luminosityBlock.root"]


def _same_as_full(path: str, wanted: list[str]) -> uproot.TTree:
    full = uproot.open(path)["Events"]
    tree = partial.open_partial(path, "Events", wanted)
    present = [w for w in wanted if w in full]
    assert set(present) <= set(tree.keys())
    assert len(tree.keys()) < len(full.keys())  # the point: most branches never parsed
    assert tree.num_entries == full.num_entries
    assert list(tree.common_entry_offsets()) == list(full.common_entry_offsets())
    for name in present:
        assert str(tree[name].interpretation) == str(full[name].interpretation), name
        assert ak.array_equal(tree[name].array(), full[name].array()), name
    return tree


@pytest.mark.parametrize("name", REAL)
def test_real_nanoaod_reads_as_a_full_parse(shared_data, name):
    path = str(shared_data / "nanoaod" / name)
    _same_as_full(path, ADL)
    _same_as_full(path, ["Jet_pt"])  # a jagged branch without its counter asked for
    tree = _same_as_full(path, ["MET_pt"])
    with pytest.raises(uproot.KeyInFileError):
        tree["Photon_pt"]  # not parsed: absent, as a missing branch is


def test_a_counter_defined_in_a_skipped_branch_is_found(shared_data):
    """nano_tt_v12 gives every jagged branch its own counter leaf (``nJet_pt``), written
    inside a branch nobody asked for: the unresolved reference is detected and that branch
    parsed in a second pass, never read wrongly as a flat branch."""
    path = str(shared_data / "nanoaod" / "nano_tt_v12.root")
    tree = _same_as_full(path, ["Jet_pt"])
    assert tree["Jet_pt"].member("fLeaves")[0].member("fLeafCount") is not None
    assert "nJet_pt" in tree


def test_generated_files_and_every_branch(demo_set):
    path = demo_set["config"]["datasets"]["ttbar"]["files"][0]
    names = uproot.open(path)["Events"].keys()
    _same_as_full(path, names[: len(names) // 2])
    _same_as_full(path, ["Jet_pt", "Muon_eta"])


def test_the_verified_range_is_the_one_pinned():
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    (pin,) = [Requirement(r) for r in project["project"]["dependencies"]
              if Requirement(r).name == "uproot"]  # fmt: skip
    assert pin.specifier == partial.VERIFIED
    assert partial.LOWEST in partial.VERIFIED
    assert partial.supported()  # the environment's uproot: what the suite verifies


def _header_time(path: Path) -> datetime.datetime:
    """The date in a written file's first key header (ROOT's packed TDatime)."""
    with uproot.open(path) as f:
        packed = f.key(f.keys()[0]).fDatime
    return datetime.datetime(
        1995 + (packed >> 26), (packed >> 22) & 0xF, (packed >> 17) & 0x1F,
        (packed >> 12) & 0x1F, (packed >> 6) & 0x3F, packed & 0x3F,
    )  # fmt: skip


def _write(path: Path, stamp: datetime.datetime) -> datetime.datetime:
    with partial.fixed_clock(stamp), uproot.recreate(path) as f:
        f["x"] = np.histogram([1.0], bins=1, range=(0, 2))
    return _header_time(path)


def test_outside_the_verified_range_the_public_path_is_taken(
    shared_data, tmp_path, monkeypatch, caplog
):
    """A version never verified: every branch parsed (a full parse, never a wrong read) and
    written files with the wall clock, each said in one warning line, once."""
    stamp = datetime.datetime(2001, 2, 3, 4, 5, 6)
    assert _write(tmp_path / "fixed.root", stamp) == stamp
    path = str(shared_data / "nanoaod" / "nano_dy.root")
    monkeypatch.setattr(uproot, "__version__", "6.0.0")
    monkeypatch.setattr(partial, "_WARNED", set())
    caplog.set_level(logging.WARNING, logger=partial.__name__)
    for _ in range(2):
        tree = partial.open_partial(path, "Events", ["MET_pt"])
        assert len(tree.keys()) == len(uproot.open(path)["Events"].keys())  # a full parse
        assert ak.array_equal(tree["MET_pt"].array(),
                              uproot.open(path)["Events"]["MET_pt"].array())  # fmt: skip
    assert _write(tmp_path / "wall.root", stamp) != stamp
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines  # one per fallback, not one per call
    assert all(re.fullmatch(r"uproot 6\.0\.0 is outside the versions brewflow was verified "
                            r"on \(.+\): .+", line) for line in lines)  # fmt: skip
    assert "\n" not in "".join(lines)


def test_an_uproot_without_the_private_models_falls_back(shared_data, monkeypatch, caplog):
    """An uproot whose private TBranch models moved: the public path (every branch parsed)
    with the one-line warning, never an ImportError."""
    import builtins

    real = builtins.__import__

    def without_models(name, *args, **kwargs):
        if name == "uproot.models.TBranch":
            raise ImportError("moved")
        return real(name, *args, **kwargs)

    path = str(shared_data / "nanoaod" / "nano_dy.root")
    partial._partial_classes.cache_clear()
    monkeypatch.setattr(builtins, "__import__", without_models)
    monkeypatch.setattr(partial, "_WARNED", set())
    caplog.set_level(logging.WARNING, logger=partial.__name__)
    try:
        tree = partial.open_partial(path, "Events", ["MET_pt"])
    finally:
        partial._partial_classes.cache_clear()
    assert len(tree.keys()) == len(uproot.open(path)["Events"].keys())  # a full parse
    assert len([r for r in caplog.records if "uproot" in r.getMessage()]) == 1


FORKED = """
import logging, sys
import uproot
from brewflow import forked
from brewflow.nanoevents import trees  # what a parent opens files with (as brewflow adl)

logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
uproot.__version__ = "6.0.0"

def entries(path):
    return int(trees.open_tree(path, "Events", branches=["MET_pt"]).num_entries)

graph = {("x", i): (entries, sys.argv[1]) for i in range(3)}
print(forked.compute_keys(graph, list(graph), 3))
"""


def test_the_fallback_is_said_once_by_a_process_and_its_forked_workers(shared_data):
    """Forked workers parse partially; the parent, which imported what opens files but never
    parsed one, says the fallback before it forks them, and they inherit that it was said: one
    line, not one per worker (found by the reviews, `brewflow adl`)."""
    import subprocess
    import sys

    path = str(shared_data / "nanoaod" / "nano_dy.root")
    done = subprocess.run([sys.executable, "-c", FORKED, path], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str([uproot.open(path)["Events"].num_entries] * 3)
    said = [line for line in done.stderr.splitlines() if "outside the versions" in line]
    assert len(said) == 1, done.stderr


@pytest.mark.parametrize("name", ["TLeafF", "T" * 300, "Model_" + "x" * 249])
def test_class_names_read_as_uproot_reads_them(name):
    """brewflow's Cursor.classname (no copy of the chunk's remainder per object) against
    uproot's own: the same string and cursor move, short names and names past the window."""
    data = np.frombuffer(b"ab" + name.encode() + b"\x00" + b"rest" * 100 + b"\x00", dtype=np.uint8)
    source = types.SimpleNamespace(file_path="made.root")  # what an error message names
    chunk = uproot.source.chunk.Chunk.wrap(source, data)
    ours, theirs = uproot.source.cursor.Cursor(2), uproot.source.cursor.Cursor(2)
    assert partial._classname(ours, chunk, {}) == name
    assert partial._UPROOT_CLASSNAME(theirs, chunk, {}) == name
    assert ours.index == theirs.index == 2 + len(name) + 1
    assert partial._classname(ours, chunk, {}, move=False) == "rest" * 100
    assert ours.index == theirs.index
    unterminated = chunk.wrap(source, data[:-1])

    def error(read) -> type:
        with pytest.raises((OSError, IndexError)) as info:  # (IndexError: uproot 5.6)
            read(uproot.source.cursor.Cursor(ours.index), unterminated, {})
        return type(info.value)

    assert error(partial._classname) is error(partial._UPROOT_CLASSNAME)  # (uproot's error)


def test_class_names_are_installed_on_a_verified_uproot_only(monkeypatch, shared_data):
    assert uproot.source.cursor.Cursor.classname is partial._classname  # (this uproot's)
    monkeypatch.setattr(uproot.source.cursor.Cursor, "classname", partial._UPROOT_CLASSNAME)
    assert not partial._install_classname("6.0.0")
    assert uproot.source.cursor.Cursor.classname is partial._UPROOT_CLASSNAME
    path = str(shared_data / "nanoaod" / "nano_dy.root")
    theirs = uproot.open(path, object_cache=None)["Events"]
    assert partial._install_classname(uproot.__version__)
    ours = uproot.open(path, object_cache=None)["Events"]  # a full parse through ours
    assert ours.keys() == theirs.keys()
    assert [b.classname for b in ours.branches] == [b.classname for b in theirs.branches]
    assert [str(b.interpretation) for b in ours.branches] == [
        str(b.interpretation) for b in theirs.branches
    ]


def test_class_names_after_the_module_is_imported_again():
    """importlib.reload (a notebook's autoreload) runs the module again: its fallback must
    still be uproot's own, not the first import's replacement (which then called itself)."""
    import importlib

    importlib.reload(partial)
    importlib.reload(partial)
    data = np.frombuffer(b"T" * 300 + b"\x00", dtype=np.uint8)
    chunk = uproot.source.chunk.Chunk.wrap(types.SimpleNamespace(file_path="made.root"), data)
    assert uproot.source.cursor.Cursor(0).classname(chunk, {}) == "T" * 300
    assert partial._UPROOT_CLASSNAME.__module__ == "uproot.source.cursor"
