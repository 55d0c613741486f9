"""Sums per chunk taken from the graph and added in one fixed order (issue 29)."""

from __future__ import annotations

import awkward as ak
import dask
import dask_awkward as dak
import hist.dask as hd
import numpy as np

from brewflow.jobs.pieces import fold, partition_local, piece_graph, unit_values


def _filled(values):
    h = hd.Hist.new.Reg(10, -2, 12).Weight()
    h.fill(values, weight=values * 0.1 + 1.0)
    return h


def test_pieces_add_up_per_unit_in_chunk_order():
    data = np.linspace(0.0, 11.0, 40)
    x = dak.from_awkward(ak.Array(data), npartitions=4)
    (optimized,) = dask.optimize({"h": _filled(x), "n": dak.sum(x > 5)})
    graph, keys = piece_graph(optimized, 4, [[0, 1], [2], [3]])
    assert partition_local(graph)
    units = dask.compute(unit_values(graph, keys), scheduler="sync")[0]
    parts = np.array_split(data, 4)
    counts = [sum(int((parts[i] > 5).sum()) for i in m) for m in ([0, 1], [2], [3])]
    assert [u["n"] for u in units] == counts == [2, 10, 10]  # per unit, exact
    for unit, members in zip(units, [[0, 1], [2], [3]], strict=True):
        chunks = []
        for i in members:  # each chunk's own histogram, added in chunk order
            h = _filled(dak.from_awkward(ak.Array(parts[i]), npartitions=1)).compute()
            chunks.append({"h": h})
        expected = fold(chunks)["h"]
        assert np.array_equal(unit["h"].view(flow=True), expected.view(flow=True))
    total = fold(units)
    whole = _filled(dak.from_awkward(ak.Array(data), npartitions=1)).compute()
    np.testing.assert_allclose(total["h"].values(), whole.values(), rtol=1e-12)


def test_a_reduction_inside_the_graph_is_not_partition_local():
    x = dak.from_awkward(ak.Array(np.arange(12.0)), npartitions=4)
    (optimized,) = dask.optimize({"h": _filled(x - dak.sum(x) / 100)})
    graph, _ = piece_graph(optimized, 4, [[0, 1, 2, 3]])  # built, not computed (dask hangs
    # computing such a fill, with or without brewflow)
    assert not partition_local(graph)


def test_fold_leaves_out_missing_pieces():
    assert fold([]) is None
    assert fold([None, {"n": 1}, None, {"n": 2}]) == {"n": 3}
