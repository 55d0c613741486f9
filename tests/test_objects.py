"""Cross-references and angular distances against explicit loops over the flat branches."""

from __future__ import annotations

import math

import awkward as ak
import numpy as np
import pytest
import uproot

from brewflow.nanoevents.reader import eager_events, lazy_events
from brewflow.objects import link, matched

LINKS = [
    ("Jet", "muonIdx1", "Muon"),
    ("Jet", "muonIdx2", "Muon"),
    ("Jet", "electronIdx1", "Electron"),
    ("Muon", "jetIdx", "Jet"),
    ("Electron", "jetIdx", "Jet"),
    ("Jet", "genJetIdx", "GenJet"),
    ("GenPart", "genPartIdxMother", "GenPart"),
]


@pytest.fixture(scope="module")
def nano_dy(shared_data) -> dict:
    path = str(shared_data / "nanoaod" / "nano_dy.root")
    return {"path": path, False: eager_events(path), True: lazy_events([path], step_size=13)}


@pytest.mark.parametrize(("source", "field", "target"), LINKS)
@pytest.mark.parametrize("lazy", [False, True])
def test_links_on_real_nanoaod(nano_dy, source, field, target, lazy):
    path, events = nano_dy["path"], nano_dy[lazy]
    got = matched(events, source, field).pt
    got = ak.to_list(got.compute() if lazy else got)
    flat = uproot.open(path)["Events"].arrays([f"{source}_{field}", f"{target}_pt"], library="np")
    expected = [
        [None if k < 0 or k >= len(pts) else float(pts[k]) for k in idx]
        for idx, pts in zip(flat[f"{source}_{field}"], flat[f"{target}_pt"], strict=True)
    ]
    assert got == expected
    if field != "muonIdx2":  # the sample has no jet with a second muon
        assert any(x is not None for row in expected for x in row)


def test_link_on_plain_arrays():
    target = ak.Array([[{"pt": 1.0}, {"pt": 2.0}], [{"pt": 3.0}]])
    index = ak.Array([[1, -1, 0, 2], [0]])
    assert ak.to_list(link(target, index).pt) == [[2.0, None, 1.0, None], [3.0]]


def test_unknown_index_branch(demo_set):
    events = eager_events(demo_set["config"]["datasets"]["dy"]["files"][0])
    with pytest.raises(KeyError, match="unknown index branch"):
        matched(events, "Jet", "ptIdx")
    with pytest.raises(KeyError, match="Muon has no field 'jetIdx'"):
        matched(events, "Muon", "jetIdx")


def test_delta_r_and_delta_phi(demo_set):
    events = eager_events(demo_set["config"]["datasets"]["ttbar"]["files"][0])
    mu, jet = events.Muon[:, :1], events.Jet[:, :1]
    has = (ak.num(mu) == 1) & (ak.num(jet) == 1)
    dr = ak.to_numpy(ak.flatten(mu[has].delta_r(jet[has])))
    dphi = ak.to_numpy(ak.flatten(mu[has].delta_phi(jet[has])))
    eta1, phi1 = ak.to_numpy(ak.flatten(mu[has].eta)), ak.to_numpy(ak.flatten(mu[has].phi))
    eta2, phi2 = ak.to_numpy(ak.flatten(jet[has].eta)), ak.to_numpy(ak.flatten(jet[has].phi))
    loop_phi = [
        (a - b + math.pi) % (2 * math.pi) - math.pi for a, b in zip(phi1, phi2, strict=True)
    ]
    np.testing.assert_allclose(dphi, loop_phi, atol=1e-5)
    np.testing.assert_allclose(dr, np.hypot(eta1 - eta2, loop_phi), atol=1e-5)
    assert ak.all(events.MET.delta_phi(events.MET) == 0)
    pair = (mu[has] + jet[has]).delta_r(jet[has])  # results of vector sums keep the methods
    assert len(pair) == int(ak.sum(has))
