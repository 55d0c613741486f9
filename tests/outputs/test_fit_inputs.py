"""combine inputs: the shapes file read back with uproot, and the datacard's structure."""

from __future__ import annotations

import numpy as np
import pytest
import uproot

from brewflow.outputs.fit_inputs import datacard, pyhf_workspace, write_shapes
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
    write_shapes(processes, "x", ["r"], path)
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
    text = datacard(processes, "x", ["r"], "x.root", signal=["sig"])
    lines = dict(line.split(" ", 1) for line in text.splitlines() if " " in line)
    assert lines["imax"] == "1"
    assert lines["jmax"] == "1"
    assert lines["observation"] == "3"  # in range, like combine's integral
    assert "shapes * * x.root $CHANNEL/$PROCESS $CHANNEL/$PROCESS_$SYSTEMATIC" in text
    assert "process sig bkg" in text
    assert "process 0 1" in text
    assert "a shape 1 -" in text
    with pytest.raises(ValueError, match="no signal process"):
        datacard(processes, "x", ["r"], "x.root", signal=["nope"])


def test_pyhf_workspace_builds_the_same_model(processes):
    pyhf = pytest.importorskip("pyhf")
    spec = pyhf_workspace(processes, "x", ["r"], signal=["sig"])
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
        pyhf_workspace(processes, "x", ["r"], signal=["nope"])
