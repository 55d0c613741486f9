"""The bins a blinded window hides (brewflow.outputs.plots)."""

from __future__ import annotations

import numpy as np

from brewflow.outputs.distribution import blinded_bins


def test_blinded_bins_are_those_overlapping_the_window():
    edges = np.linspace(0, 100, 11)
    np.testing.assert_array_equal(
        np.flatnonzero(blinded_bins(edges, (45, 60))), [4, 5]
    )  # [40, 50) and [50, 60); [60, 70) only touches it
    assert not blinded_bins(edges, None).any()
