from __future__ import annotations

import awkward as ak
import dask_awkward as dak
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
