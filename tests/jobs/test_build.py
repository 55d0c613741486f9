"""What a data dataset must not fill under blinding (brewflow.jobs.build)."""

from __future__ import annotations

import awkward as ak
import numpy as np

from brewflow.analysis import AnalysisOutput
from brewflow.jobs.build import data_blinding, window_veto
from brewflow.outputs.plots import blinded_bins
from brewflow.selection import Selection
from brewflow.weights import Weights


def _config() -> dict:
    return {
        "datasets": {"data": {"is_data": True}, "mc": {"is_data": False}},
        "regions": {"sr": {"cuts": ["a"], "blind": True}, "cr": {"cuts": ["a"]},
                    "vr": {"cuts": ["a"]}},
        "histograms": {
            "m": {"variable": "m", "bins": 10, "start": 0, "stop": 100, "blind": [40, 60],
                  "regions": ["cr"]},
            "j": {"variable": "jet_pt", "bins": 10, "start": 0, "stop": 100},
        },
    }  # fmt: skip


def test_data_blinding_names_regions_and_windows_for_data_only():
    config = _config()
    assert data_blinding(config, "data") == ({"sr"}, {"cr": [("m", 40, 60)]})
    assert data_blinding(config, "mc") == (set(), {})


def test_window_veto_per_event_and_per_object():
    output = AnalysisOutput(
        Selection(),
        {"m": ak.Array([10.0, 45.0, None, 60.0, 59.9]),
         "jet_pt": ak.Array([[5.0], [], [50.0, 1.0], [70.0], [0.0]])},
        Weights(),
    )  # fmt: skip
    veto = window_veto(output, [("m", 40, 60)])
    assert ak.to_list(veto) == [False, True, False, False, True]  # [low, high); None outside
    veto = window_veto(output, [("m", 40, 60), ("jet_pt", 40, 60)])
    assert ak.to_list(veto) == [False, True, True, False, True]  # any object in the window


def test_blinded_bins_are_those_overlapping_the_window():
    edges = np.linspace(0, 100, 11)
    np.testing.assert_array_equal(
        np.flatnonzero(blinded_bins(edges, (45, 60))), [4, 5]
    )  # [40, 50) and [50, 60); [60, 70) only touches it
    assert not blinded_bins(edges, None).any()
