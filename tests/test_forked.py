"""Partitions computed in forked processes: the same results as dask's threads."""

from __future__ import annotations

import awkward as ak
import dask_awkward as dak
import dask_histogram
import hist
import numpy as np
import pytest

from brewflow import forked


def _collections(npartitions: int) -> tuple[dict, np.ndarray]:
    values = np.random.default_rng(1).normal(5, 2, 10_000)
    array = dak.from_awkward(ak.Array(values), npartitions=npartitions)
    axis = hist.axis.Regular(20, 0, 10, name="x")
    out = {
        "x": dask_histogram.partitioned_factory(array, histref=hist.Hist(axis)),
        "x2": dask_histogram.partitioned_factory(array * 2, histref=hist.Hist(axis)),
    }
    return out, values


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_partitions_in_processes_equal_one_fill(workers):
    collections, values = _collections(npartitions=7)
    out = forked.compute_partitions(forked.optimized(collections), workers)
    axis = hist.axis.Regular(20, 0, 10, name="x")
    for name, data in (("x", values), ("x2", values * 2)):
        expected = hist.Hist(axis).fill(data)
        assert np.array_equal(out[name].values(flow=True), expected.values(flow=True)), name
    assert forked.available()  # Linux: forked workers were used for workers > 1


def test_collections_must_share_partitions():
    one, _ = _collections(npartitions=3)
    other, _ = _collections(npartitions=4)
    with pytest.raises(ValueError, match="same number of partitions"):
        forked.optimized({"a": one["x"], "b": other["x"]})
