from __future__ import annotations

import awkward as ak
import hist
import numpy as np
import pytest

from brewflow import histograms as H
from brewflow.results.arithmetic import merge_categories
from brewflow.results.model import cutflow_counts

DEFS = {
    "x": {"variable": "x", "bins": 4, "start": 0.0, "stop": 4.0, "label": "x [GeV]"},
    "y": {"variable": "y", "edges": [0.0, 1.0, 3.0], "regions": ["b"]},
}


def test_book_axes_and_labels():
    hists = H.book(DEFS, ["a", "b"], ["nominal"], lazy=False)
    assert [ax.name for ax in hists["x"].axes] == ["region", "systematic", "x"]
    assert list(hists["x"].axes["region"]) == ["a", "b"]
    assert list(hists["y"].axes["region"]) == ["b"]
    assert hists["x"].axes["x"].label == "x"  # the plot job's config labels it (issue 27.5)
    assert isinstance(hists["y"].axes["y"], hist.axis.Variable)


def test_fill_flattens_jagged_and_drops_none():
    h = H.book(DEFS, ["a", "b"], ["nominal"], lazy=False)["x"]
    values = ak.Array([[0.5, 1.5], [], [2.5], [3.5, 0.1]])
    mask = ak.Array([True, True, False, True])
    weight = ak.Array([2.0, 3.0, 5.0, 7.0])
    H.fill(h, region="a", systematic="nominal", values=values, mask=mask, weight=weight)
    np.testing.assert_allclose(
        h[{"region": "a", "systematic": "nominal"}].values(), [2 + 7, 2, 0, 7]
    )
    scalar = ak.Array([0.5, None, 3.5])
    H.fill(
        h,
        region="b",
        systematic="nominal",
        values=scalar,
        mask=ak.Array([True] * 3),
        weight=ak.Array([1.0, 1.0, 1.0]),
    )
    np.testing.assert_allclose(h[{"region": "b", "systematic": "nominal"}].values(), [1, 0, 0, 1])


def test_cutflow_counts_from_passed_histogram():
    hists = H.book_cutflow({"r": ["c1", "c2"]}, ["nominal"], lazy=False)
    passed = np.array([0, 1, 2, 2, 1, 0, 2])
    weight = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    hists[H.CUTFLOW].fill(region="r", systematic="nominal", passed=passed, weight=weight)
    hists[H.CUTFLOW_EVENTS].fill(region="r", systematic="nominal", passed=passed)
    weighted = cutflow_counts(hists[H.CUTFLOW], "r", "nominal", 2)
    assert weighted["value"] == [28.0, 21.0, 14.0]
    assert weighted["variance"] == [float(np.sum(weight**2)), 4 + 9 + 16 + 25 + 49, 9 + 16 + 49]
    assert cutflow_counts(hists[H.CUTFLOW_EVENTS], "r", "nominal", 2)["value"] == [7, 5, 3]


def test_merge_categories_unions_and_sums():
    a = H.book(DEFS, ["a"], ["nominal"], lazy=False)["x"]
    b = H.book(DEFS, ["a"], ["up"], lazy=False)["x"]
    c = H.book(DEFS, ["a"], ["nominal"], lazy=False)["x"]
    a.fill(region="a", systematic="nominal", x=[0.5], weight=[2.0])
    b.fill(region="a", systematic="up", x=[1.5], weight=[3.0])
    c.fill(region="a", systematic="nominal", x=[0.5], weight=[1.0])
    merged = merge_categories([b, a, c], order=["nominal"])
    assert list(merged.axes["systematic"]) == ["nominal", "up"]
    np.testing.assert_allclose(
        merged[{"region": "a", "systematic": "nominal"}].values(), [3, 0, 0, 0]
    )
    np.testing.assert_allclose(
        merged[{"region": "a", "systematic": "nominal"}].variances(), [5, 0, 0, 0]
    )
    np.testing.assert_allclose(merged[{"region": "a", "systematic": "up"}].values(), [0, 3, 0, 0])


def test_merge_categories_refuses_different_binning():
    a = H.book(DEFS, ["a"], ["nominal"], lazy=False)["x"]
    other = {"x": {**DEFS["x"], "bins": 5}}
    b = H.book(other, ["a"], ["up"], lazy=False)["x"]
    with pytest.raises(ValueError, match="axes differ"):
        merge_categories([a, b])


def test_reserved_variable_names():
    with pytest.raises(ValueError, match="reserved"):
        H.variable_axis("h", {"variable": "region", "bins": 1, "start": 0, "stop": 1})


@pytest.mark.parametrize("lazy", [False, True])
def test_each_histogram_gets_the_weights_of_its_own_events(lazy):
    """Regression (issue 16.1): a variable that is None for some events of a region (mll with
    fewer than two leptons) and one that is not (njets) booked in the same region; the
    second used to be filled with the first's cached weights."""
    import dask_awkward as dak

    defs = {
        "mll": {"variable": "mll", "bins": 4, "start": 0.0, "stop": 4.0},
        "njets": {"variable": "njets", "bins": 4, "start": 0.0, "stop": 4.0},
        "jet_pt": {"variable": "jet_pt", "bins": 4, "start": 0.0, "stop": 4.0},
    }
    variables = {
        "mll": ak.Array([None, 1.5, None, 2.5, None, 0.5]),
        "njets": ak.Array([1, 2, 3, 2, 0, 1]),
        "jet_pt": ak.Array([[0.5], [1.5, 2.5], [], [3.5, None], [0.1], [1.1]]),
    }
    mask = ak.Array([True, True, True, True, False, None])
    weight = ak.Array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    convert = (lambda a: dak.from_awkward(a, 2)) if lazy else (lambda a: a)
    hists = H.book(defs, ["r"], ["nominal", "up"], lazy=lazy)
    filler = H.Filler({"r": convert(mask)})
    weights = {"nominal": convert(weight), "up": convert(2 * weight)}
    lazy_variables = {k: convert(v) for k, v in variables.items()}
    for systematic, w in weights.items():
        for name, h in hists.items():
            filler.fill(
                h, region="r", systematic=systematic, variable=name,
                values=lazy_variables[name], weight=w,
            )  # fmt: skip
    for name, h in hists.items():
        h = h.compute() if lazy else h
        for systematic, factor in (("nominal", 1.0), ("up", 2.0)):
            expected = np.zeros(4)  # an explicit loop over events and objects
            for i, keep in enumerate(mask.tolist()):
                if not keep:
                    continue
                value = variables[name][i]
                entries = value.tolist() if name == "jet_pt" else [value]
                for x in entries:
                    if x is not None and 0 <= x < 4:
                        expected[int(x)] += factor * weight[i]
            got = h[{"region": "r", "systematic": systematic}].values()
            np.testing.assert_array_equal(got, expected, err_msg=f"{name} {systematic}")


@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize("n_weights", [0, 1, 3])
def test_weights_of_another_length_fail_loudly(lazy, n_weights):
    """boost-histogram fills an empty weight array from memory past its end and broadcasts
    one weight; every length mismatch is an error naming the histogram."""
    import dask_awkward as dak

    h = H.book(DEFS, ["a"], ["nominal"], lazy=lazy)["x"]
    values = ak.Array([0.5, 1.5, 2.5, 3.5])
    weight = ak.Array([1.0] * n_weights)
    if lazy:
        values, weight = dak.from_awkward(values, 1), dak.from_awkward(weight, 1)

    def fill() -> None:
        checked = H.checked_weight(values, weight, "x", "a")
        h.fill(region="a", systematic="nominal", x=values, weight=checked)
        if lazy:
            h.compute()

    with pytest.raises(H.FillLengthError, match="histogram 'x', region 'a': 4 values but"):
        fill()
