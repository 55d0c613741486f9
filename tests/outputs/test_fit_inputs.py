"""combine inputs: the shapes file read back with uproot, and the datacard's structure."""

from __future__ import annotations

import numpy as np
import pytest
import uproot

from brewflow.outputs.fit_inputs import Channel, channels_of, datacard, pyhf_workspace, write_shapes
from brewflow.results.arithmetic import merge_systematics
from tests.helpers import make_result


@pytest.fixture
def processes() -> list:
    sig = merge_systematics([
        make_result("s", "nominal", [0.5, 1.5], [1.0, 2.0], process="sig"),
        make_result("s", "aUp", [0.5, 1.5], [1.5, 2.0], process="sig"),
        make_result("s", "aDown", [0.5, 1.5], [0.5, 2.0], process="sig"),
    ])  # fmt: skip
    bkg = make_result("b", "nominal", [1.5, 2.5, 2.5], [3.0, 1.0, 1.0], process="bkg")
    data = make_result("d", "nominal", [0.5, 1.5, 2.5, 9.0], [1, 1, 1, 1], process="data",
                       is_data=True)  # fmt: skip
    return [data, sig, bkg]


def test_shapes_file_read_back(processes, tmp_path):
    path = tmp_path / "x.root"
    write_shapes(channels_of(processes, ["r"]), "x", path)
    with uproot.open(path) as f:
        assert sorted(f["r"].keys(cycle=False)) == [
            "bkg", "data_obs", "sig", "sig_aDown", "sig_aUp"
        ]  # fmt: skip
        np.testing.assert_allclose(f["r/sig"].values(), [1.0, 2.0, 0.0])
        np.testing.assert_allclose(f["r/sig"].variances(), [1.0, 4.0, 0.0])
        np.testing.assert_allclose(f["r/sig_aUp"].values(), [1.5, 2.0, 0.0])
        np.testing.assert_allclose(f["r/bkg"].values(), [0.0, 3.0, 2.0])
        np.testing.assert_allclose(f["r/data_obs"].values(), [1.0, 1.0, 1.0])
        assert f["r/data_obs"].values(flow=True)[-1] == 1.0  # x = 9 in the overflow
    assert not list(tmp_path.glob(".*tmp"))


def test_datacard(processes):
    text = datacard(channels_of(processes, ["r"]), "x", "x.root", signal=["sig"])
    lines = dict(line.split(" ", 1) for line in text.splitlines() if " " in line)
    assert lines["imax"] == "1"
    assert lines["jmax"] == "1"
    assert lines["observation"] == "3"  # in range, like combine's integral
    assert "shapes * * x.root $CHANNEL/$PROCESS $CHANNEL/$PROCESS_$SYSTEMATIC" in text
    assert "process sig bkg" in text
    assert "process 0 1" in text
    assert "a shape 1 -" in text
    with pytest.raises(ValueError, match="no signal process"):
        datacard(channels_of(processes, ["r"]), "x", "x.root", signal=["nope"])


def test_pyhf_workspace_builds_the_same_model(processes):
    pyhf = pytest.importorskip("pyhf")
    spec = pyhf_workspace(channels_of(processes, ["r"]), "x", signal=["sig"])
    workspace = pyhf.Workspace(spec)  # validates against the pyhf schema
    model = workspace.model()
    assert model.config.poi_name == "mu"
    assert sorted(model.config.parameters) == ["a", "mu", "staterror_r"]
    pars = np.asarray(model.config.suggested_init(), dtype=float)
    np.testing.assert_allclose(model.expected_actualdata(pars), [1.0, 5.0, 2.0])  # sig + bkg
    pars[model.config.poi_index] = 2.0
    np.testing.assert_allclose(model.expected_actualdata(pars), [2.0, 7.0, 2.0])
    pars[model.config.poi_index] = 1.0
    pars[model.config.par_slice("a")] = 1.0  # the Up template of sig
    np.testing.assert_allclose(model.expected_actualdata(pars), [1.5, 5.0, 2.0])
    np.testing.assert_allclose(workspace.data(model, include_auxdata=False), [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="no signal process"):
        pyhf_workspace(channels_of(processes, ["r"]), "x", signal=["nope"])


def test_blinded_channels_hold_the_asimov_never_the_data(processes, tmp_path):
    """A blinded region's data_obs (shapes, datacard observation, workspace) is the MC sum at
    nominal; a blinded window replaces only the bins it overlaps (flow bins included)."""
    mc_total = np.array([1.0, 5.0, 2.0])  # sig + bkg per bin, x in [0, 3)
    blind = [Channel("r", "r", processes, blind=True)]
    spec = pyhf_workspace(blind, "x", signal=["sig"])
    np.testing.assert_allclose(spec["observations"][0]["data"], mc_total)
    path = tmp_path / "b.root"
    write_shapes(blind, "x", path)
    with uproot.open(path) as f:
        np.testing.assert_allclose(f["r/data_obs"].values(flow=True)[1:-1], mc_total)
        assert f["r/data_obs"].values(flow=True)[-1] == 0.0  # the data's overflow x = 9: gone
    text = datacard(blind, "x", "b.root", signal=["sig"])
    assert "observation 8" in text
    assert "# blinded" in text
    window = [Channel("r", "r", processes, window=(0.9, 1.5))]  # overlaps bins [0,1), [1,2)
    observed = pyhf_workspace(window, "x", signal=["sig"])["observations"][0]["data"]
    np.testing.assert_allclose(observed, [1.0, 5.0, 1.0])  # the data (1 each) in bin 3 only
