from __future__ import annotations

import awkward as ak
import dask_awkward as dak
import hist
import numpy as np
import pytest

from brewflow.selection import MAX_CUTS, Selection

A = np.array([True, True, False, True, False, True])
B = np.array([True, False, False, True, True, True])
C = np.array([False, True, False, True, True, True])


def _selection(lazy: bool) -> Selection:
    sel = Selection()
    for name, mask in (("a", A), ("b", B), ("c", C)):
        array = ak.Array(mask)
        sel.add(name, dak.from_awkward(array, npartitions=2) if lazy else array)
    return sel


def _np(x) -> np.ndarray:
    return ak.to_numpy(x.compute() if hasattr(x, "compute") else x)


@pytest.mark.parametrize("lazy", [False, True])
def test_all_require_and_cutflow_counts(lazy):
    sel = _selection(lazy)
    np.testing.assert_array_equal(_np(sel.all("a", "b")), A & B)
    np.testing.assert_array_equal(_np(sel.require(a=True, c=False)), A & ~C)
    cumulative = [_np(m) for m in sel.cumulative("a", "b", "c")]
    np.testing.assert_array_equal(cumulative[2], A & B & C)
    passed = _np(sel.n_passed("a", "b", "c"))
    expected = [sum(all(m[i] for m in (A, B, C)[:k]) for k in (1, 2, 3)) for i in range(len(A))]
    np.testing.assert_array_equal(passed, expected)


def test_none_counts_as_false():
    sel = Selection()
    sel.add("x", ak.Array([True, None, False]))
    assert ak.to_list(sel["x"]) == [True, False, False]


def test_errors_name_the_selection():
    sel = _selection(False)
    with pytest.raises(ValueError, match="'a' is already defined"):
        sel.add("a", ak.Array(A))
    with pytest.raises(KeyError, match="no selection named 'zz'"):
        sel.all("zz")
    full = Selection()
    for i in range(MAX_CUTS):
        full.add(f"c{i}", ak.Array(A))
    with pytest.raises(ValueError, match="at most 64"):
        full.add("one_more", ak.Array(A))


W = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])


def _manual_cutflow():
    masks = {"a": A, "b": B, "c": C}
    onecut = [len(A)] + [int(m.sum()) for m in masks.values()]
    cumulative, current = [len(A)], np.ones(len(A), bool)
    for m in masks.values():
        current = current & m
        cumulative.append(int(current.sum()))
    return onecut, cumulative


@pytest.mark.parametrize("lazy", [False, True])
def test_cutflow_result_table_and_plot(lazy):
    sel = _selection(lazy)
    weight = dak.from_awkward(ak.Array(W), npartitions=2) if lazy else ak.Array(W)
    result = sel.cutflow("a", "b", "c", weight=weight).result()
    onecut, cumulative = _manual_cutflow()
    assert result.labels == ["initial", "a", "b", "c"]
    assert result.onecut == onecut
    assert result.cumulative == cumulative
    assert result.cumulative_sumw == [21.0, 1 + 2 + 4 + 6, 1 + 4 + 6, 4 + 6]
    assert result.onecut_sumw[1] == float(W[A].sum())
    frame = result.to_frame()
    assert frame.loc["c", "cum_eff"] == pytest.approx(2 / 6)
    assert frame.loc["b", "eff"] == pytest.approx(3 / 4)
    ax = result.plot()
    assert [t.get_text() for t in ax.get_xticklabels()] == result.labels


@pytest.mark.parametrize("lazy", [False, True])
def test_nminusone_counts_and_histograms(lazy):
    sel = _selection(lazy)
    x = ak.Array([0.5, 1.5, 2.5, 3.5, 0.5, 1.5])
    jets = ak.Array([[0.5, 1.5], [], [2.5], [0.5], [3.5, 3.5], [1.5]])
    if lazy:
        x, jets = dak.from_awkward(x, npartitions=2), dak.from_awkward(jets, npartitions=2)
    nm1 = sel.nminusone("a", "b", "c")
    result = nm1.result()
    assert result.labels == ["initial", "N - a", "N - b", "N - c", "N"]
    expected = [
        6,
        int((B & C).sum()),
        int((A & C).sum()),
        int((A & B).sum()),
        int((A & B & C).sum()),
    ]
    assert result.events == expected
    axis = hist.axis.Regular(4, 0, 4, name="x")
    h = nm1.histogram(x, axis)
    h = h.compute() if lazy else h
    xs = np.array([0.5, 1.5, 2.5, 3.5, 0.5, 1.5])
    np.testing.assert_array_equal(h[{"selection": "N - b"}].values(),
                                  np.histogram(xs[A & C], bins=4, range=(0, 4))[0])  # fmt: skip
    hj = nm1.histogram(jets, hist.axis.Regular(4, 0, 4, name="pt"))
    hj = hj.compute() if lazy else hj
    assert hj[{"selection": "initial"}].values().tolist() == [2, 2, 1, 2]
    assert hj[{"selection": "N"}].values().tolist() == [1, 1, 0, 0]  # events 3 and 5
    assert result.to_frame().loc["N", "events"] == 2
