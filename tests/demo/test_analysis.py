"""The demo analysis, eagerly and lazily, event by event against tests/reference.py."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from brewflow.analysis import Context
from brewflow.config import validate
from brewflow.corrections import load_all
from brewflow.demo.physics import analysis
from brewflow.jobs.blocks import with_blocks
from brewflow.nanoevents.reader import eager_events, lazy_events
from tests import reference


@pytest.fixture(scope="module")
def ttbar(demo_set) -> dict:
    path = demo_set["config"]["datasets"]["ttbar"]["files"][0]
    corrections = demo_set["config"]["corrections"]
    return {
        "path": path,
        "corrections": corrections,
        "expected": reference.events([path], False, corrections),
        "config": validate(demo_set["config"]),
    }


@pytest.mark.parametrize("lazy", [False, True])
def test_cuts_and_variables_per_event(ttbar, lazy):
    path = ttbar["path"]
    events = lazy_events([path], step_size=400) if lazy else eager_events(path)
    corrections = load_all(ttbar["corrections"])
    run = with_blocks(ttbar["config"], "ttbar", analysis)  # the PS weights: the theory block
    out = run(events, Context("ttbar", is_data=False, corrections=corrections))
    compute = (lambda x: x.compute()) if lazy else (lambda x: x)
    expected = ttbar["expected"]
    for cut in out.selection:
        assert ak.to_list(compute(out.selection[cut])) == [e["cuts"][cut] for e in expected], cut
    for name in ("njets", "nbjets"):
        assert ak.to_list(compute(out.variables[name])) == [e[name] for e in expected]
    mll = ak.to_list(compute(out.variables["mll"]))
    assert [m is None for m in mll] == [e["mll"] is None for e in expected]
    got = np.array([m for m in mll if m is not None])
    want = np.array([e["mll"] for e in expected if e["mll"] is not None])
    # float32 NanoAOD kinematics: E^2 - p^2 cancels for light, boosted pairs (~1e-4 GeV at
    # m ~ 2 GeV, E ~ 100 GeV), far below any detector resolution; the reference is float64
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)
    jet_pt = ak.to_list(compute(out.variables["jet_pt"]))
    assert [len(j) for j in jet_pt] == [len(e["jet_pt"]) for e in expected]
    for variation in ("ps_isrUp", "pileupDown", "muon_idUp"):
        weights = compute(out.weights.weight(variation))
        np.testing.assert_allclose(
            ak.to_numpy(weights), [e["weight"][variation] for e in expected], rtol=1e-12
        )
    weights = compute(out.weights.weight("ps_isrUp"))
    np.testing.assert_allclose(ak.to_numpy(weights), [e["weight"]["ps_isrUp"] for e in expected],
                               rtol=1e-12)  # fmt: skip


def test_data_has_no_weights(demo_set):
    path = demo_set["config"]["datasets"]["data"]["files"][0]
    out = analysis(eager_events(path), Context("data", is_data=True))
    assert not out.weights
    assert "trigger" in out.selection


def test_options_change_the_btag_working_point(ttbar):
    events = eager_events(ttbar["path"])
    loose = analysis(events, Context("ttbar", False, options={"btag_wp": 0.0494}))
    medium = analysis(events, Context("ttbar", False))
    assert ak.all(loose.variables["nbjets"] >= medium.variables["nbjets"])
    assert ak.sum(loose.variables["nbjets"]) > ak.sum(medium.variables["nbjets"])
