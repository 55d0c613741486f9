"""Lepton scale factors (brewflow.leptonsf) in the layouts the POGs publish, on real NanoAOD
against correctionlib called lepton by lepton: the Run 3 MUO payload (no year, ``eta`` and
``scale_factors``), the 2023 EGM payload (binned in phi too), the reconstruction SFs split in pT
(Run 3: three working points), and a trigger SF on the muon that fired the trigger (2018 UL).
The Run 3 payloads are real (tests/data/payloads/README.md names their sources)."""

from __future__ import annotations

import math

import awkward as ak
import correctionlib
import numpy as np
import pytest
import uproot

from brewflow.corrections import CorrectionError, load
from brewflow.leptonsf import (
    electron_reco_sf_weights,
    electron_sf_weights,
    muon_sf_weights,
    trigger_sf_weights,
)
from brewflow.nanoevents.reader import eager_events, lazy_events
from tests.helpers import ROOT, computed

PAYLOADS = ROOT / "tests" / "data" / "payloads"
MUON_2022 = (PAYLOADS / "MUO" / "2022_Summer22" / "muon_Z.json.gz", "NUM_TightID_DEN_TrackerMuons")
ELECTRON_2022 = PAYLOADS / "EGM" / "2022_Summer22" / "electron.json.gz"
ELECTRON_2023 = PAYLOADS / "EGM" / "2023_Summer23" / "electron.json.gz"


def _direct(path, name):
    return correctionlib.CorrectionSet.from_file(str(path))[name]


def _events(path: str, lazy: bool):
    return lazy_events([path], step_size=70) if lazy else eager_events(path)


def _rows(path: str, collection: str, fields) -> list[list[dict]]:
    with uproot.open(path) as f:
        a = {x: f["Events"][f"{collection}_{x}"].array().tolist() for x in fields}
    return [[{x: a[x][i][j] for x in fields} for j in range(len(a[fields[0]][i]))]
            for i in range(len(a[fields[0]]))]  # fmt: skip


@pytest.fixture
def ttbar(shared_data) -> str:
    return str(shared_data / "nanoaod" / "nano_tt_v12.root")


@pytest.mark.parametrize("lazy", [False, True])
def test_run3_muon_payload_without_a_year(ttbar, lazy):
    correction = load(*MUON_2022)
    direct = _direct(*MUON_2022)
    events = _events(ttbar, lazy)
    muons = events.Muon[(events.Muon.pt > 15) & (np.abs(events.Muon.eta) < 2.4)]
    weights = muon_sf_weights(correction, muons)
    rows = [[m for m in event if m["pt"] > 15 and abs(m["eta"]) < 2.4]
            for event in _rows(ttbar, "Muon", ("pt", "eta"))]  # fmt: skip
    assert sum(map(len, rows)) > 100
    for key, value in (("nominal", "nominal"), ("up", "systup"), ("down", "systdown")):
        expected = [math.prod(direct.evaluate(m["eta"], m["pt"], value) for m in event)
                    for event in rows]  # fmt: skip
        np.testing.assert_allclose(ak.to_numpy(computed(weights[key])), expected, rtol=1e-12)
    assert len({round(x, 9) for x in expected}) > 10


def test_a_year_given_or_missing_is_named(shared_data, ttbar):
    muons = eager_events(ttbar).Muon
    with pytest.raises(CorrectionError, match="takes no year"):
        muon_sf_weights(load(*MUON_2022), muons, "2022")
    run2 = load(shared_data / "corrections" / "2018_UL" / "muon_Z.json.gz",
                "NUM_TightID_DEN_genTracks")  # fmt: skip
    with pytest.raises(CorrectionError, match="needs a year; accepted: 2018_UL"):
        muon_sf_weights(run2, muons)
    electron = load(ELECTRON_2022, "Electron-ID-SF")
    with pytest.raises(CorrectionError, match="not a muon scale factor's"):
        muon_sf_weights(electron, muons)


@pytest.mark.parametrize("lazy", [False, True])
def test_2023_electron_payload_binned_in_phi(ttbar, lazy):
    correction = load(ELECTRON_2023, "Electron-ID-SF")
    direct = _direct(ELECTRON_2023, "Electron-ID-SF")
    events = _events(ttbar, lazy)
    keep = lambda e: (e.pt > 10) & (np.abs(e.eta) < 2.5)  # noqa: E731
    weights = electron_sf_weights(correction, events.Electron[keep(events.Electron)],
                                  "2023PromptC", "Tight")  # fmt: skip
    rows = [[e for e in event if e["pt"] > 10 and abs(e["eta"]) < 2.5]
            for event in _rows(ttbar, "Electron", ("pt", "eta", "phi", "deltaEtaSC"))]  # fmt: skip
    for key, value in (("nominal", "sf"), ("up", "sfup"), ("down", "sfdown")):
        expected = [math.prod(direct.evaluate("2023PromptC", value, "Tight",
                                              e["eta"] + e["deltaEtaSC"], e["pt"], e["phi"])
                              for e in event) for event in rows]  # fmt: skip
        np.testing.assert_allclose(ak.to_numpy(computed(weights[key])), expected, rtol=1e-12)
    assert [i.name for i in direct.inputs][-1] == "phi"  # the layout with phi


@pytest.mark.parametrize("lazy", [False, True])
def test_reconstruction_sfs_take_the_working_point_of_each_electrons_pt(ttbar, lazy):
    correction = load(ELECTRON_2022, "Electron-ID-SF")
    direct = _direct(ELECTRON_2022, "Electron-ID-SF")
    events = _events(ttbar, lazy)
    keep = lambda e: (e.pt > 10) & (np.abs(e.eta) < 2.5)  # noqa: E731
    weights = electron_reco_sf_weights(correction, events.Electron[keep(events.Electron)],
                                       "2022Re-recoBCD")  # fmt: skip
    rows = [[e for e in event if e["pt"] > 10 and abs(e["eta"]) < 2.5]
            for event in _rows(ttbar, "Electron", ("pt", "eta", "deltaEtaSC"))]  # fmt: skip

    def point(pt: float) -> str:
        return "RecoBelow20" if pt < 20 else "Reco20to75" if pt < 75 else "RecoAbove75"

    used = {point(e["pt"]) for event in rows for e in event}
    assert used == {"RecoBelow20", "Reco20to75", "RecoAbove75"}
    for key, value in (("nominal", "sf"), ("up", "sfup"), ("down", "sfdown")):
        expected = [math.prod(direct.evaluate("2022Re-recoBCD", value, point(e["pt"]),
                                              e["eta"] + e["deltaEtaSC"], e["pt"])
                              for e in event) for event in rows]  # fmt: skip
        np.testing.assert_allclose(ak.to_numpy(computed(weights[key])), expected, rtol=1e-12)
    with pytest.raises(CorrectionError, match="no pT-split reconstruction working points"):
        electron_reco_sf_weights(load(*MUON_2022), events.Electron, None)


@pytest.mark.parametrize("lazy", [False, True])
def test_the_trigger_sf_is_the_firing_muons(shared_data, lazy):
    """2018 UL IsoMu24 SF on Drell-Yan: per event the SF of the leading muon matched (Delta R <
    0.1) to a muon trigger object with the Iso and 1mu bits, 1 without; two-muon events get one
    SF, not the product; muons from 15 GeV selected: a firing one below the payload's 26 GeV
    gets its first bin's SF (it was an error)."""
    payload = shared_data / "corrections" / "2018_UL" / "muon_Z.json.gz"
    name = "NUM_IsoMu24_DEN_CutBasedIdTight_and_PFIsoTight"
    path = str(shared_data / "nanoaod" / "nano_dy.root")
    events = _events(path, lazy)
    cut = lambda m: m.tightId & (m.pt > 15) & (np.abs(m.eta) < 2.4)  # noqa: E731
    weights = trigger_sf_weights(load(payload, name), events.Muon[cut(events.Muon)],
                                 events.TrigObj, "2018_UL")  # fmt: skip
    direct = _direct(payload, name)
    muons = [[m for m in event if m["tightId"] and m["pt"] > 15 and abs(m["eta"]) < 2.4]
             for event in _rows(path, "Muon", ("pt", "eta", "phi", "tightId"))]  # fmt: skip
    objects = _rows(path, "TrigObj", ("id", "eta", "phi", "filterBits"))

    def fired(m, objs) -> bool:
        return any(o["id"] == 13 and o["filterBits"] & 2 and o["filterBits"] & 8
                   and math.hypot(m["eta"] - o["eta"], (m["phi"] - o["phi"] + math.pi)
                                  % (2 * math.pi) - math.pi) < 0.1 for o in objs)  # fmt: skip

    firing = [max((m for m in event if fired(m, objs)), key=lambda m: m["pt"], default=None)
              for event, objs in zip(muons, objects, strict=True)]  # fmt: skip
    assert sum(f is not None for f in firing) >= 3
    assert any(len(event) == 2 and f is not None for event, f in zip(muons, firing, strict=True))
    for key, value in (("nominal", "sf"), ("up", "systup"), ("down", "systdown")):
        expected = [1.0 if m is None else direct.evaluate("2018_UL", abs(m["eta"]),
                                                          max(m["pt"], 26.0), value)
                    for m in firing]  # the payload starts at 26 GeV: its first bin  # fmt: skip
        np.testing.assert_allclose(ak.to_numpy(computed(weights[key])), expected, rtol=1e-12)
