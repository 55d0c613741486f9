"""Theory weights (brewflow.theory) on real NanoAOD (Run 2 Drell-Yan, Run 3 ttbar v12) against
explicit per-event loops over the generator weights read with uproot; lazy and eager."""

from __future__ import annotations

import math

import awkward as ak
import numpy as np
import pytest
import uproot

from brewflow.nanoevents.reader import eager_events, lazy_events
from brewflow.theory import parton_shower_weights, scale_weights, top_pt_weights
from tests.helpers import computed

SAMPLES = ("nano_dy.root", "nano_tt_v12.root")


def _branch(path, name) -> list[list[float]]:
    with uproot.open(path) as f:
        return [list(map(float, row)) for row in f["Events"][name].array().tolist()]


def _both(path, name):
    """The branch as the eager and the (computed) lazy readers give it."""
    lazy = _lazy(path, 23)[name]
    return eager_events(path)[name], lazy


def _computed(value):
    return np.asarray(computed(value))


@pytest.mark.parametrize("sample", SAMPLES)
def test_single_scale_variations(shared_data, sample):
    path = str(shared_data / "nanoaod" / sample)
    rows = _branch(path, "LHEScaleWeight")
    assert all(len(r) == 9 for r in rows)
    expected = {"muR": (7, 1), "muF": (5, 3), "muRmuF": (8, 0)}  # (x 2, x 0.5) entries
    for weights in _both(path, "LHEScaleWeight"):
        found = scale_weights(weights)
        for key, (up, down) in expected.items():
            np.testing.assert_allclose(_computed(found[key]["up"]), [r[up] for r in rows],
                                       rtol=1e-7)  # fmt: skip
            np.testing.assert_allclose(_computed(found[key]["down"]), [r[down] for r in rows],
                                       rtol=1e-7)  # fmt: skip
            assert np.all(_computed(found[key]["nominal"]) == 1.0)


def test_eight_scale_weights_have_no_nominal_entry(shared_data):
    """Samples storing 8 entries (the nominal left out) give the same variations."""
    path = str(shared_data / "nanoaod" / "nano_tt_v12.root")
    nine = eager_events(path)["LHEScaleWeight"]
    eight = ak.concatenate([nine[:, :4], nine[:, 5:]], axis=1)
    for key in ("muR", "muF", "muRmuF"):
        for direction in ("up", "down"):
            np.testing.assert_array_equal(scale_weights(eight)[key][direction],
                                          scale_weights(nine)[key][direction])  # fmt: skip


def test_parton_shower_convention(shared_data):
    """PSWeight's stored order is [ISR=2, FSR=2, ISR=0.5, FSR=0.5] (this older NanoAOD's branch
    title says the reverse: a documentation error); 'cms': up is x 2, 'reciprocal': x 0.5."""
    path = str(shared_data / "nanoaod" / "nano_dy.root")
    rows = _branch(path, "PSWeight")
    weights = eager_events(path)["PSWeight"]
    cms = parton_shower_weights(weights, "cms")
    np.testing.assert_allclose(cms["isr"]["up"], [r[0] for r in rows], rtol=1e-7)
    np.testing.assert_allclose(cms["isr"]["down"], [r[2] for r in rows], rtol=1e-7)
    np.testing.assert_allclose(cms["fsr"]["up"], [r[1] for r in rows], rtol=1e-7)
    np.testing.assert_allclose(cms["fsr"]["down"], [r[3] for r in rows], rtol=1e-7)
    reciprocal = parton_shower_weights(weights, "reciprocal")
    np.testing.assert_array_equal(reciprocal["isr"]["up"], cms["isr"]["down"])
    empty = ak.Array([[], [1.1, 1.2, 0.9, 0.8]])
    assert parton_shower_weights(empty)["isr"]["up"].tolist() == [1.0, pytest.approx(1.1)]


def _lazy(path: str, step: int):
    """The file's events, lazily, in partitions of ``step`` entries."""
    with uproot.open(path) as f:
        n = f["Events"].num_entries
    return lazy_events(
        {path: "Events"}, steps={path: [(a, min(a + step, n)) for a in range(0, n, step)]}
    )


@pytest.mark.parametrize("method", ["data_nlo", "nnlo_nlo"])
def test_top_pt_reweighting_of_the_last_copy_tops(shared_data, method):
    """nano_tt_v12: the last-copy top and antitop (statusFlags bit 13) of each event, their
    scale factors written out, the weight the square root of the product."""
    path = str(shared_data / "nanoaod" / "nano_tt_v12.root")
    with uproot.open(path) as f:
        read = f["Events"].arrays(["GenPart_pdgId", "GenPart_statusFlags", "GenPart_pt"])
    formula = {
        "data_nlo": lambda pt: math.exp(0.0615 - 0.0005 * pt),
        "nnlo_nlo": lambda pt: 0.103 * math.exp(-0.0118 * pt) - 0.000134 * pt + 0.973,
    }
    expected = []
    for ids, flags, pts in zip(read.GenPart_pdgId.tolist(), read.GenPart_statusFlags.tolist(),
                               read.GenPart_pt.tolist(), strict=True):  # fmt: skip
        tops = [pt for i, f, pt in zip(ids, flags, pts, strict=True)
                if abs(i) == 6 and (f >> 13) & 1]  # fmt: skip
        assert len(tops) == 2
        expected.append(formula[method](tops[0]) * formula[method](tops[1]))
    for events in (eager_events(path), _lazy(path, 64)):
        found = top_pt_weights(events.GenPart, method)
        np.testing.assert_allclose(_computed(found["nominal"]), np.sqrt(expected), rtol=1e-6)
        np.testing.assert_allclose(_computed(found["up"]), expected, rtol=1e-6)
        assert np.all(_computed(found["down"]) == 1.0)
