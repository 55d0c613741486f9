"""Jet quality (brewflow.jetquality) on the real Run 3 ttbar (NanoAOD v12) against loops over the
branches read with uproot: the jet ID recomputed by JME's v12 recipe, and the real Summer22 jet
veto map (tests/data/payloads, its source in the README there) evaluated jet by jet."""

from __future__ import annotations

import math

import awkward as ak
import numpy as np
import pytest
import uproot

from brewflow.corrections import CorrectionError, load
from brewflow.jetquality import (
    recomputed_jet_id,
    veto_map_jets,
    veto_map_selected,
)
from brewflow.nanoevents.reader import eager_events, lazy_events
from tests.helpers import ROOT

VETO_MAP = ROOT / "tests" / "data" / "payloads" / "JME" / "2022_Summer22" / "jetvetomaps.json.gz"
VETO_MAP_NAME = "Summer22_23Sep2023_RunCD_V1"
JET = ("pt", "eta", "phi", "jetId", "neHEF", "neEmEF", "chEmEF", "muEF")


@pytest.fixture
def ttbar(shared_data) -> str:
    return str(shared_data / "nanoaod" / "nano_tt_v12.root")


def _read(path: str) -> dict[str, list]:
    names = [f"Jet_{f}" for f in JET] + ["Muon_eta", "Muon_phi", "Muon_isPFcand"]
    with uproot.open(path) as f:
        return {n: f["Events"][n].array().tolist() for n in names}


def _loop_id(jet: dict) -> int:
    """JME's recipe for NanoAOD v12, written out as the twiki states it."""
    abseta, stored = abs(jet["eta"]), jet["jetId"]
    if abseta <= 2.7:
        tight = bool(stored & 2)
    elif abseta <= 3.0:
        tight = bool(stored & 2) and jet["neHEF"] < 0.99
    else:
        tight = bool(stored & 2) and jet["neEmEF"] < 0.4
    veto = tight and (jet["muEF"] < 0.8 and jet["chEmEF"] < 0.8) if abseta <= 2.7 else tight
    return (stored & 1) + 2 * tight + 4 * veto


def _jets(read: dict, event: int) -> list[dict]:
    return [{f: read[f"Jet_{f}"][event][j] for f in JET} for j in range(len(read["Jet_pt"][event]))]


def _computed(array):
    return array.compute(scheduler="sync") if hasattr(array, "compute") else array


@pytest.mark.parametrize("lazy", [False, True])
def test_jet_id_is_recomputed_as_the_recipe_says(ttbar, lazy):
    read = _read(ttbar)
    expected = [[_loop_id(j) for j in _jets(read, i)] for i in range(len(read["Jet_pt"]))]
    events = lazy_events([ttbar], step_size=70) if lazy else eager_events(ttbar)
    found = ak.to_list(_computed(recomputed_jet_id(events.Jet)))
    assert found == expected
    changed = sum(a != b for e, s in zip(expected, read["Jet_jetId"], strict=True)
                  for a, b in zip(e, s, strict=True))  # fmt: skip
    assert changed > 10  # the sample has forward jets whose stored ID the recipe corrects


def _near_pf_muon(read: dict, event: int, jet: dict) -> bool:
    for eta, phi, pf in zip(read["Muon_eta"][event], read["Muon_phi"][event],
                            read["Muon_isPFcand"][event], strict=True):  # fmt: skip
        dphi = (jet["phi"] - phi + math.pi) % (2 * math.pi) - math.pi
        if pf and math.hypot(jet["eta"] - eta, dphi) < 0.2:
            return True
    return False


@pytest.mark.parametrize("lazy", [False, True])
def test_the_veto_map_vetoes_the_events_a_jet_by_jet_loop_does(ttbar, lazy):
    correction = load(VETO_MAP, VETO_MAP_NAME)
    read = _read(ttbar)
    in_map, vetoed = [], []
    for i in range(len(read["Jet_pt"])):
        cells = []
        for jet in _jets(read, i):
            eta = min(max(jet["eta"], -5.19), 5.19)
            phi = min(max(jet["phi"], -3.1415), 3.1415)
            cells.append(correction.evaluate("jetvetomap", eta, phi) > 0)
        selected = [
            j["pt"] > 15 and j["jetId"] & 2 and j["chEmEF"] + j["neEmEF"] < 0.9
            and not _near_pf_muon(read, i, j)
            for j in _jets(read, i)
        ]  # fmt: skip
        in_map.append(cells)
        vetoed.append(any(c and s for c, s in zip(cells, selected, strict=True)))
    events = lazy_events([ttbar], step_size=70) if lazy else eager_events(ttbar)
    cells = veto_map_jets(events.Jet, correction)
    assert ak.to_list(_computed(cells)) == in_map
    found = ak.any(cells & veto_map_selected(events.Jet, events.Muon), axis=1)
    assert ak.to_list(_computed(found)) == vetoed
    assert 5 < sum(vetoed) < 50  # the real map vetoes some of the 200 events


def test_a_correction_that_is_not_a_veto_map_is_named(shared_data, ttbar):
    jec = load(shared_data / "corrections" / "jet_jerc_Summer22_V3.json.gz",
               "Summer22_22Sep2023_V3_MC_L1FastJet_AK4PFPuppi")  # fmt: skip
    with pytest.raises(CorrectionError, match="not a jet veto map's"):
        veto_map_jets(eager_events(ttbar).Jet, jec)


def test_phi_on_the_maps_edge_is_in_its_last_cell(ttbar):
    """NanoAOD stores phi in [-pi, pi]; the maps' edges are +-3.1416 (float32 pi rounds up)."""
    correction = load(VETO_MAP, VETO_MAP_NAME)
    jets = ak.Array([[{"pt": 50.0, "eta": 0.5, "phi": float(np.float32(np.pi))}]])
    assert ak.to_list(veto_map_jets(jets, correction)) == [
        [correction.evaluate("jetvetomap", 0.5, 3.1415) > 0]
    ]
