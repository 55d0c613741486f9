"""Jet quality (brewflow.jetquality) on the real Run 3 ttbar (NanoAOD v12) against loops over the
branches read with uproot: the jet ID recomputed by JME's v12 recipe, and the real Summer22 jet
veto map (tests/data/payloads, its source in the README there) evaluated jet by jet."""

from __future__ import annotations

import math

import awkward as ak
import dask_awkward as dak
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
from tests.helpers import ROOT, computed

VETO_MAP = ROOT / "tests" / "data" / "payloads" / "JME" / "2022_Summer22" / "jetvetomaps.json.gz"
VETO_MAP_NAME = "Summer22_23Sep2023_RunCD_V1"
JET = ("pt", "eta", "phi", "jetId", "neHEF", "neEmEF", "chEmEF", "muEF")


@pytest.fixture
def ttbar(shared_data) -> str:
    return str(shared_data / "nanoaod" / "nano_tt_v12.root")


def _read(path: str) -> dict[str, list]:
    names = [f"Jet_{f}" for f in JET] + ["Jet_chHEF", "Muon_eta", "Muon_phi", "Muon_isPFcand"]
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


@pytest.mark.parametrize("lazy", [False, True])
def test_jet_id_is_recomputed_as_the_recipe_says(ttbar, lazy):
    read = _read(ttbar)
    expected = [[_loop_id(j) for j in _jets(read, i)] for i in range(len(read["Jet_pt"]))]
    events = lazy_events([ttbar], step_size=70) if lazy else eager_events(ttbar)
    found = ak.to_list(computed(recomputed_jet_id(events.Jet)))
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
    assert ak.to_list(computed(cells)) == in_map
    found = ak.any(cells & veto_map_selected(events.Jet, events.Muon), axis=1)
    assert ak.to_list(computed(found)) == vetoed
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


# JME's Run 3 AK4 PUPPI criteria (twiki JetID13p6TeV): the test's own payload of jetid.json.gz's
# schema (the POG's file is not public here), a multi-binning over the nine inputs whose bins are
# the criteria's thresholds, filled from the criteria written out below
ID_EDGES = {
    "eta": [-6.0, -3.0, -2.7, -2.6, 2.6, 2.7, 3.0, 6.0], "chHEF": [-1.0, 0.01, 2.0],
    "neHEF": [-1.0, 0.9, 0.99, 2.0], "chEmEF": [-1.0, 0.8, 2.0],
    "neEmEF": [-1.0, 0.4, 0.9, 0.99, 2.0], "muEF": [-1.0, 0.8, 2.0],
    "chMultiplicity": [-1.0, 0.5, 1e4], "neMultiplicity": [-1.0, 1.5, 1e4],
    "multiplicity": [-1.0, 1.5, 1e4],
}  # fmt: skip


def _tight(j: dict) -> bool:
    a, mult = abs(j["eta"]), j.get("multiplicity", j["chMultiplicity"] + j["neMultiplicity"])
    if a <= 2.6:
        return (j["neHEF"] < 0.99 and j["neEmEF"] < 0.9 and mult > 1 and j["chHEF"] > 0.01
                and j["chMultiplicity"] > 0)  # fmt: skip
    if a <= 2.7:
        return j["neHEF"] < 0.9 and j["neEmEF"] < 0.99
    if a <= 3.0:
        return j["neHEF"] < 0.99
    return j["neEmEF"] < 0.4 and j["neMultiplicity"] >= 2


def _lepton_veto(j: dict) -> bool:
    return _tight(j) and (abs(j["eta"]) > 2.7 or (j["muEF"] < 0.8 and j["chEmEF"] < 0.8))


@pytest.fixture
def jet_id_payload(tmp_path) -> str:
    import itertools

    import correctionlib.schemav2 as schema

    from brewflow.jetquality import JET_ID_INPUTS

    centres = [[(a + b) / 2 for a, b in itertools.pairwise(ID_EDGES[n])] for n in JET_ID_INPUTS]

    def correction(name: str, passes) -> schema.Correction:
        content = [
            float(passes(dict(zip(JET_ID_INPUTS, point, strict=True))))
            for point in itertools.product(*centres)
        ]  # row-major, as MultiBinning
        return schema.Correction(
            name=name, version=1, output=schema.Variable(name="id", type="real"),
            inputs=[schema.Variable(name=n, type="real") for n in JET_ID_INPUTS],
            data=schema.MultiBinning(nodetype="multibinning", inputs=list(JET_ID_INPUTS),
                                     edges=[ID_EDGES[n] for n in JET_ID_INPUTS],
                                     content=content, flow="clamp"),
        )  # fmt: skip

    payload = schema.CorrectionSet(schema_version=2, corrections=[
        correction("AK4PUPPI_Tight", _tight),
        correction("AK4PUPPI_TightLeptonVeto", _lepton_veto)])  # fmt: skip
    path = tmp_path / "jetid.json"
    path.write_text(payload.model_dump_json(exclude_unset=True))
    return str(path)


@pytest.mark.parametrize("lazy", [False, True])
def test_nanoaod_v15_jet_id_from_the_payload(ttbar, jet_id_payload, lazy):
    """v15's layout: no jetId, the multiplicities stored (added here to the real v12 jets:
    charged = nConstituents // 2, neutral the rest); the jet ID the payload gives, through the
    jets block, against the criteria written out jet by jet."""
    from brewflow.jetmet import JetCorrector

    events = lazy_events([ttbar], step_size=70) if lazy else eager_events(ttbar)
    jets = events.Jet
    lib_ = dak if lazy else ak
    fields = {f: jets[f] for f in jets.fields if f != "jetId"}
    fields["chMultiplicity"] = jets.nConstituents // 2
    fields["neMultiplicity"] = jets.nConstituents - jets.nConstituents // 2
    given = lib_.with_field(events, lib_.zip(fields, with_name="Jet"), "Jet")
    corrector = JetCorrector.from_config(
        {"file": "unused", "jec": {"mc": "", "data": ""},
         "id": {"file": jet_id_payload, "tight": "AK4PUPPI_Tight",
                "lepton_veto": "AK4PUPPI_TightLeptonVeto"}}, is_data=False)  # fmt: skip
    corrector.jec = None  # the jet ID alone
    found = ak.to_list(computed(corrector.corrected(given).jetId))
    rows = _read(ttbar)
    with uproot.open(ttbar) as f:
        constituents = f["Events"]["Jet_nConstituents"].array().tolist()
    expected = []
    for i, n_event in enumerate(constituents):
        event = []
        for j, jet in enumerate(_jets(rows, i)):
            charged = n_event[j] // 2
            jet |= {"chMultiplicity": charged, "neMultiplicity": n_event[j] - charged,
                    "chHEF": rows["Jet_chHEF"][i][j]}  # fmt: skip
            event.append(2 * _tight(jet) + 4 * _lepton_veto(jet))
        expected.append(event)
    assert found == expected
    assert 0 < sum(v == 6 for e in found for v in e) < sum(len(e) for e in found)
    with pytest.raises(CorrectionError, match="needs the branch Jet_chMultiplicity"):
        corrector.corrected(events)  # v12 lacks the multiplicities
