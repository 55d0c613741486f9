"""MET filters (brewflow.metfilters) on real NanoAOD against an explicit loop over the events'
Flag_ branches read with uproot: Run 2 (pre-UL) data and MC, Run 3 (v12) MC; lazy and eager."""

from __future__ import annotations

import numpy as np
import pytest
import uproot

from brewflow.metfilters import RECOMMENDATIONS, MissingFlag, met_filter_mask
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
