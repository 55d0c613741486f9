"""Partial TTree parsing: the wanted branches exactly as a full parse gives them."""

from __future__ import annotations

import awkward as ak
import pytest
import uproot

from brewflow.nanoevents import partial

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
