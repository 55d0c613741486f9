"""Detector conditions (brewflow.detector) on real NanoAOD against loops over the branches read
with uproot: the HEM15/16 veto of 2018 data (by run) and MC (by a reproducible draw), the
per-event draw itself, and the L1 prefiring weights."""

from __future__ import annotations

import dataclasses

import awkward as ak
import pytest
import uproot

from brewflow.detector import HEM, hem_veto, prefiring_weights
from brewflow.draws import event_uniforms
from brewflow.nanoevents.reader import eager_events, lazy_events
from tests.helpers import computed


def _loop_hem(path: str) -> list[bool]:
    """Per event: a tight jet above 30 GeV or an electron above 10 GeV in the HEM sectors."""
    names = ["Jet_pt", "Jet_eta", "Jet_phi", "Jet_jetId", "Electron_pt", "Electron_eta",
             "Electron_phi"]  # fmt: skip
    with uproot.open(path) as f:
        a = {n: f["Events"][n].array().tolist() for n in names}

    def inside(eta: float, phi: float) -> bool:
        return -3.2 < eta < -1.3 and -1.57 < phi < -0.87

    return [
        any(pt > 30 and jid & 2 and inside(eta, phi) for pt, eta, phi, jid in zip(
            a["Jet_pt"][i], a["Jet_eta"][i], a["Jet_phi"][i], a["Jet_jetId"][i], strict=True))
        or any(pt > 10 and inside(eta, phi) for pt, eta, phi in zip(
            a["Electron_pt"][i], a["Electron_eta"][i], a["Electron_phi"][i], strict=True))
        for i in range(len(a["Jet_pt"]))
    ]  # fmt: skip


@pytest.mark.parametrize("lazy", [False, True])
def test_data_are_vetoed_from_the_first_affected_run(shared_data, lazy):
    """SingleMuon 2018, run 315267: before the failure, nothing vetoed; with the failure
    placed before that run, exactly the events with a HEM object."""
    path = str(shared_data / "nanoaod" / "nano_dimuon.root")
    in_hem = _loop_hem(path)
    assert sum(in_hem) >= 1
    events = lazy_events([path], step_size=15) if lazy else eager_events(path)
    assert ak.all(computed(hem_veto(events, is_data=True)))
    earlier = dataclasses.replace(HEM, first_run=315000)
    assert ak.to_list(computed(hem_veto(events, True, earlier))) == [not h for h in in_hem]


def test_mc_is_vetoed_in_the_affected_share_of_events(shared_data):
    path = str(shared_data / "nanoaod" / "nano_dy.root")
    in_hem = _loop_hem(path)
    assert sum(in_hem) >= 1
    events = eager_events(path)
    every = dataclasses.replace(HEM, mc_fraction=1.0)
    none = dataclasses.replace(HEM, mc_fraction=0.0)
    assert ak.to_list(hem_veto(events, False, every)) == [not h for h in in_hem]
    assert ak.all(hem_veto(events, False, none))
    draws = ak.to_numpy(event_uniforms(events, salt=0x4E3))
    expected = [not (h and u < HEM.mc_fraction) for h, u in zip(in_hem, draws, strict=True)]
    assert ak.to_list(hem_veto(events, is_data=False)) == expected


def test_prefiring_weights_are_the_branches_and_a_missing_one_is_named(shared_data):
    events = eager_events(str(shared_data / "nanoaod" / "nano_dy.root"))
    with pytest.raises(KeyError, match="L1PreFiringWeight_Nom"):
        prefiring_weights(events)  # 2018 pre-UL NanoAOD has none
    values = {"Nom": events.genWeight * 0 + 0.98, "Up": events.genWeight * 0 + 0.99,
              "Dn": events.genWeight * 0 + 0.97}  # fmt: skip
    with_branches = ak.with_field(events, ak.zip(values), "L1PreFiringWeight")
    found = prefiring_weights(with_branches)
    assert ak.to_list(found["nominal"]) == ak.to_list(values["Nom"])
    assert ak.to_list(found["up"]) == ak.to_list(values["Up"])
    assert ak.to_list(found["down"]) == ak.to_list(values["Dn"])
