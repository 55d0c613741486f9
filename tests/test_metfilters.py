"""MET filters (brewflow.metfilters) on real NanoAOD against an explicit loop over the events'
Flag_ branches read with uproot: Run 2 (pre-UL) data and MC, Run 3 (v12) MC; lazy and eager;
the 2022-23 ecalBadCalibFilter patch against the recipe written out."""

from __future__ import annotations

import math

import awkward as ak
import numpy as np
import pytest
import uproot

from brewflow.metfilters import (
    RECOMMENDATIONS,
    MissingFlag,
    ecal_bad_calib_pass,
    met_filter_mask,
)
from brewflow.nanoevents.reader import eager_events, lazy_events

PRE_UL = ["goodVertices", "globalSuperTightHalo2016Filter", "HBHENoiseFilter",
          "HBHENoiseIsoFilter", "EcalDeadCellTriggerPrimitiveFilter", "BadPFMuonFilter",
          "eeBadScFilter", "ecalBadCalibFilterV2"]  # fmt: skip


def _loop(path, flags) -> list[bool]:
    """Per event, every flag true: a Python loop over uproot's arrays."""
    with uproot.open(path) as f:
        arrays = {flag: f["Events"][f"Flag_{flag}"].array(library="np") for flag in flags}
    n = len(next(iter(arrays.values())))
    return [all(bool(arrays[flag][i]) for flag in flags) for i in range(n)]


@pytest.mark.parametrize(
    ("sample", "flags"),
    [("nano_tt_v12.root", RECOMMENDATIONS["run3_2022"].flags),
     ("nano_dy.root", PRE_UL), ("nano_dimuon.root", PRE_UL)],
)  # fmt: skip
def test_the_mask_is_every_flag_of_the_list(shared_data, sample, flags):
    path = str(shared_data / "nanoaod" / sample)
    expected = _loop(path, flags)
    eager = met_filter_mask(eager_events(path), flags)
    assert np.asarray(eager).tolist() == expected
    lazy = met_filter_mask(_lazy(path, 17), flags)
    assert np.asarray(lazy.compute(scheduler="sync")).tolist() == expected
    assert 0 < sum(expected) <= len(expected)


def test_older_nanoaod_lacks_a_recommended_flag(shared_data):
    """Pre-UL NanoAOD has no Flag_BadPFMuonDzFilter (UL's recommendation): named, with the
    flags the file has."""
    events = eager_events(str(shared_data / "nanoaod" / "nano_dy.root"))
    with pytest.raises(MissingFlag, match="no branch Flag_BadPFMuonDzFilter") as caught:
        met_filter_mask(events, RECOMMENDATIONS["run2_ul_2018"].flags)
    assert "ecalBadCalibFilterV2" in str(caught.value)


def test_recommendations_differ_where_the_twiki_says():
    ul16, ul18 = RECOMMENDATIONS["run2_ul_2016"].flags, RECOMMENDATIONS["run2_ul_2018"].flags
    run3 = RECOMMENDATIONS["run3_2022"].flags
    assert set(ul18) - set(ul16) == {"ecalBadCalibFilter"}
    assert "HBHENoiseFilter" in ul18
    assert "HBHENoiseFilter" not in run3  # Run 3 drops the HBHE noise filters
    assert {"hfNoisyHitsFilter", "BadPFMuonDzFilter", "eeBadScFilter"} <= set(run3)


def _lazy(path: str, step: int):
    """The file's events, lazily, in partitions of ``step`` entries."""
    with uproot.open(path) as f:
        n = f["Events"].num_entries
    return lazy_events(
        {path: "Events"}, steps={path: [(a, min(a + step, n)) for a in range(0, n, step)]}
    )


def _ecal_loop(runs, jets, met) -> list[bool]:
    """JetMET's on-the-fly ecalBadCalibFilter written out per event."""
    out = []
    for run, event_jets, (met_pt, met_phi) in zip(runs, jets, met, strict=True):
        bad = 362433 <= run <= 367144 and met_pt > 100 and any(
            j["pt"] > 50 and -0.5 < j["eta"] < -0.1 and -2.1 < j["phi"] < -1.8
            and (j["neEmEF"] > 0.9 or j["chEmEF"] > 0.9)
            and abs((j["phi"] - met_phi + math.pi) % (2 * math.pi) - math.pi) > 2.9
            for j in event_jets
        )  # fmt: skip
        out.append(not bad)
    return out


def test_the_ecal_bad_calib_patch_on_real_events_and_each_condition(shared_data):
    """Real Run 3 events given runs inside and outside the affected range (no 2022 data here),
    and events written with one jet that fails each condition of the veto in turn."""
    events = eager_events(str(shared_data / "nanoaod" / "nano_tt_v12.root"))
    fields = ("pt", "eta", "phi", "neEmEF", "chEmEF")
    jets = [[{f: j[f] for f in fields} for j in e] for e in ak.to_list(events.Jet)]
    met = list(zip(ak.to_list(events.PuppiMET.pt), ak.to_list(events.PuppiMET.phi), strict=True))
    for run in (362432, 362433, 365000, 367144, 367145):
        given = ak.with_field(events, ak.full_like(events.run, run), "run")
        assert ak.to_list(ecal_bad_calib_pass(given)) == _ecal_loop([run] * len(met), jets, met)
    bad = {"pt": 80.0, "eta": -0.3, "phi": -1.95, "neEmEF": 0.95, "chEmEF": 0.0}
    cases = [({}, 363000, 150.0), ({}, 360000, 150.0), ({}, 363000, 90.0),
             ({"pt": 40.0}, 363000, 150.0), ({"eta": 0.3}, 363000, 150.0),
             ({"phi": -1.5}, 363000, 150.0), ({"neEmEF": 0.5}, 363000, 150.0),
             ({"neEmEF": 0.5, "chEmEF": 0.95}, 363000, 150.0)]  # fmt: skip
    written = ak.Array([{"run": run, "Jet": [bad | change], "PuppiMET": {"pt": pt, "phi": 1.2}}
                        for change, run, pt in cases])  # fmt: skip
    expected = _ecal_loop([c[1] for c in cases], [[bad | c[0]] for c in cases],
                          [(c[2], 1.2) for c in cases])  # fmt: skip
    assert ak.to_list(ecal_bad_calib_pass(written)) == expected
    assert expected == [False, True, True, True, True, True, True, False]
    assert RECOMMENDATIONS["run3_2022"].ecal_patch
    assert not RECOMMENDATIONS["run2_ul_2018"].ecal_patch
