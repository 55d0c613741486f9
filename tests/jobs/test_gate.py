"""The data gate (brewflow.jobs.gate): certified luminosity and blinding, in one object."""

from __future__ import annotations

import json

import awkward as ak
import pytest

from brewflow.analysis import AnalysisOutput
from brewflow.config import ConfigError
from brewflow.config.blinding import Blinding, Window
from brewflow.jobs.gate import NOT_ADMITTED, DataGate
from brewflow.selection import Selection
from brewflow.weights import Weights


def _config(lumi_mask: str | None = None) -> dict:
    data = {"is_data": True, **({"lumi_mask": lumi_mask} if lumi_mask else {})}
    return {
        "datasets": {"data": data, "mc": {"is_data": False}},
        "regions": {"sr": {"cuts": ["a"], "blind": True}, "cr": {"cuts": ["a", "b"]},
                    "vr": {"cuts": ["a"]}},
        "histograms": {
            "m": {"variable": "m", "bins": 10, "start": 0, "stop": 100, "blind": [40, 60],
                  "regions": ["cr"]},
            "j": {"variable": "jet_pt", "bins": 10, "start": 0, "stop": 100},
        },
    }  # fmt: skip


def _output() -> AnalysisOutput:
    selection = Selection()
    selection.add("a", ak.Array([True, True, True, False, True]))
    selection.add("b", ak.Array([True, True, False, True, True]))
    variables = {"m": ak.Array([10.0, 45.0, None, 50.0, 59.9]),
                 "jet_pt": ak.Array([[5.0], [], [50.0, 1.0], [70.0], [0.0]])}  # fmt: skip
    return AnalysisOutput(selection, variables, Weights())


def test_blinding_names_regions_and_windows():
    blinding = Blinding.of(_config())
    assert blinding.is_blind("sr")
    assert not blinding.is_blind("cr")
    assert blinding.vetoes("cr") == (Window("m", "m", 40.0, 60.0),)
    assert blinding.vetoes("vr") == ()  # m is not filled there
    assert blinding.hides_cutflow("sr")
    assert blinding.hides_cutflow("cr")
    assert not blinding.hides_cutflow("vr")
    assert str(blinding.window("m", "cr")) == "m in [40, 60)"
    assert blinding.left_out("cr") == "m in [40, 60)"
    assert blinding.left_out("cr", "m") is None  # its own window is drawn, not left out
    assert blinding.channel("j", "cr", has_data=True) == (True, None)  # m leaves events out
    assert blinding.channel("m", "cr", has_data=True) == (False, Window("m", "m", 40.0, 60.0))
    assert blinding.channel("j", "vr", has_data=False) == (True, None)


def test_data_gets_no_blinded_region_and_no_event_of_a_window():
    gate = DataGate.of(_config(), "data")
    selections = gate.selections(_output())
    assert set(selections) == {"cr", "vr"}  # sr admits no data event
    cr = selections["cr"]
    # events 1, 3 and 4 have m in [40, 60): out of the mask; a region with a window has no
    # data cutflow (its rows would count the window's events against another region's)
    assert ak.to_list(cr.mask) == [True, False, False, False, False]
    assert ak.to_list(cr.passed) == [NOT_ADMITTED] * 5
    assert ak.to_list(selections["vr"].mask) == [True, True, True, False, True]


def test_mc_passes_unchanged():
    selections = DataGate.of(_config(), "mc").selections(_output())
    assert set(selections) == {"sr", "cr", "vr"}
    assert ak.to_list(selections["cr"].passed) == [2, 2, 1, 0, 2]


def test_a_window_on_a_per_object_variable_vetoes_an_event_with_any_object_inside():
    config = _config()
    config["histograms"]["j"]["blind"] = [40, 60]
    selections = DataGate.of(config, "data").selections(_output())
    assert ak.to_list(selections["vr"].mask) == [True, True, False, False, True]


def test_certified_keeps_the_golden_json_lumi_blocks(tmp_path):
    golden = tmp_path / "golden.json"
    golden.write_text(json.dumps({"1": [[1, 100]], "2": [[5, 5]]}))
    gate = DataGate.of(_config(str(golden)), "data")
    assert gate.columns == ("run", "luminosityBlock")
    events = ak.Array({"run": [1, 1, 2, 2, 3], "luminosityBlock": [1, 205, 5, 6, 1],
                       "x": [0, 1, 2, 3, 4]})  # fmt: skip
    kept, n = gate.certified(events, "f.root")
    assert ak.to_list(kept.x) == [0, 2]
    assert n == 2
    with pytest.raises(Exception, match=r"f\.root.*luminosityBlock"):
        gate.certified(ak.Array({"run": [1]}), "f.root")
    assert DataGate.of(_config(str(golden)), "mc").columns == ()  # MC: never masked


def test_a_broken_golden_json_is_a_config_error_naming_its_key(tmp_path):
    golden = tmp_path / "golden.json"
    golden.write_text('{"1": [[5, 1]]}')
    with pytest.raises(ConfigError, match=r"datasets\.data\.lumi_mask"):
        DataGate.of(_config(str(golden)), "data")
