"""Theory weights (brewflow.theory) on real NanoAOD (Run 2 Drell-Yan: PDF4LHC15 30 + alpha_s;
Run 3 ttbar v12: NNPDF3.1 Hessian 100 + alpha_s) against explicit per-event loops over the
generator weights read with uproot; lazy and eager."""

from __future__ import annotations

import math

import awkward as ak
import numpy as np
import pytest
import uproot

from brewflow.nanoevents.reader import eager_events, lazy_events
from brewflow.theory import PDF_SETS, PdfSet, parton_shower_weights, pdf_weights, scale_weights

SAMPLES = {"nano_dy.root": 91400, "nano_tt_v12.root": 325300}


def _branch(path, name) -> list[list[float]]:
    with uproot.open(path) as f:
        return [list(map(float, row)) for row in f["Events"][name].array().tolist()]


def _both(path, name):
    """The branch as the eager and the (computed) lazy readers give it."""
    lazy = _lazy(path, 23)[name]
    return eager_events(path)[name], lazy


def _computed(value):
    return np.asarray(value.compute(scheduler="sync") if hasattr(value, "compute") else value)


@pytest.mark.parametrize("sample", SAMPLES)
def test_scale_envelope_and_single_scales(shared_data, sample):
    path = str(shared_data / "nanoaod" / sample)
    rows = _branch(path, "LHEScaleWeight")
    assert all(len(r) == 9 for r in rows)
    seven = [0, 1, 3, 5, 7, 8]  # without the nominal [4] and the opposite (0.5, 2), (2, 0.5)
    for weights in _both(path, "LHEScaleWeight"):
        found = scale_weights(weights)
        np.testing.assert_allclose(
            _computed(found["envelope"]["up"]), [max(r[i] for i in seven) for r in rows], rtol=1e-7
        )
        np.testing.assert_allclose(
            _computed(found["envelope"]["down"]),
            [min(r[i] for i in seven) for r in rows],
            rtol=1e-7,
        )
        np.testing.assert_allclose(_computed(found["muR"]["up"]), [r[7] for r in rows], rtol=1e-7)
        np.testing.assert_allclose(_computed(found["muR"]["down"]), [r[1] for r in rows], rtol=1e-7)
        np.testing.assert_allclose(_computed(found["muF"]["up"]), [r[5] for r in rows], rtol=1e-7)
        np.testing.assert_allclose(_computed(found["muF"]["down"]), [r[3] for r in rows], rtol=1e-7)
        assert np.all(_computed(found["muR"]["nominal"]) == 1.0)  # fmt: skip


def test_eight_scale_weights_have_no_nominal_entry(shared_data):
    """Samples storing 8 entries (the nominal left out) give the same variations."""
    path = str(shared_data / "nanoaod" / "nano_tt_v12.root")
    nine = eager_events(path)["LHEScaleWeight"]
    eight = ak.concatenate([nine[:, :4], nine[:, 5:]], axis=1)
    for key in ("envelope", "muR", "muF"):
        for direction in ("up", "down"):
            np.testing.assert_array_equal(scale_weights(eight)[key][direction],
                                          scale_weights(nine)[key][direction])  # fmt: skip


@pytest.mark.parametrize("sample", SAMPLES)
def test_hessian_pdf_and_alphas(shared_data, sample):
    path = str(shared_data / "nanoaod" / sample)
    pdf = PDF_SETS[SAMPLES[sample]]
    rows = _branch(path, "LHEPdfWeight")
    assert all(len(r) == pdf.members + 2 for r in rows)
    shift = [math.sqrt(sum((r[i] - r[0]) ** 2 for i in range(1, pdf.members))) / r[0]
             for r in rows]  # fmt: skip
    for weights in _both(path, "LHEPdfWeight"):
        found = pdf_weights(weights, pdf)
        np.testing.assert_allclose(_computed(found["pdf"]["up"]), [1 + s for s in shift],
                                   rtol=1e-6)  # fmt: skip
        np.testing.assert_allclose(_computed(found["pdf"]["down"]), [1 - s for s in shift],
                                   rtol=1e-6)  # fmt: skip
        low, high = pdf.alphas
        np.testing.assert_allclose(_computed(found["alphas"]["up"]),
                                   [r[high] / r[0] for r in rows], rtol=1e-6)  # fmt: skip
        np.testing.assert_allclose(_computed(found["alphas"]["down"]),
                                   [r[low] / r[0] for r in rows], rtol=1e-6)  # fmt: skip


def test_replicas_give_their_standard_deviation(shared_data):
    path = str(shared_data / "nanoaod" / "nano_tt_v12.root")
    rows = _branch(path, "LHEPdfWeight")
    replicas = PdfSet("as replicas", "replicas", 101)
    expected = []
    for r in rows:
        members = r[1:101]
        mean = sum(members) / len(members)
        expected.append(math.sqrt(sum((m - mean) ** 2 for m in members) / 99) / r[0])
    found = pdf_weights(eager_events(path)["LHEPdfWeight"], replicas)
    np.testing.assert_allclose(found["pdf"]["up"], [1 + e for e in expected], rtol=1e-6)
    assert "alphas" not in found


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
