"""Reproducible per-event draws (brewflow.draws): standard normal and uniform, the same for
any chunking, the normals equal to the independent pure-Python SplitMix64 of
tests/jet_reference.py."""

from __future__ import annotations

import awkward as ak
import numpy as np

from brewflow.draws import event_normals, event_uniforms
from brewflow.nanoevents.reader import eager_events, lazy_events
from tests import jet_reference
from tests.helpers import computed


def test_event_normals_are_standard_normal_and_reproducible():
    n = 20000
    events = ak.zip(
        {
            "run": np.full(n, 1, np.uint32),
            "luminosityBlock": np.arange(n, dtype=np.uint32) // 100,
            "event": np.arange(n, dtype=np.uint64),
        }
    )
    like = ak.unflatten(np.zeros(3 * n), np.full(n, 3))
    draws = event_normals(events, like)
    flat = ak.to_numpy(ak.flatten(draws))
    assert abs(flat.mean()) < 0.02
    assert abs(flat.std() - 1) < 0.02
    assert ak.to_list(event_normals(events[5:9], like[5:9])) == ak.to_list(draws[5:9])
    assert ak.to_list(draws[3]) == [jet_reference.normal(1, 0, 3, j) for j in range(3)]
    assert not np.array_equal(flat, ak.to_numpy(ak.flatten(event_normals(events, like, 1))))


def test_event_draws_are_uniform_and_the_same_for_any_chunking(shared_data):
    n = 200_000
    events = ak.zip({"run": np.ones(n, np.uint32), "luminosityBlock": np.arange(n) // 1000,
                     "event": np.arange(n, dtype=np.uint64)})  # fmt: skip
    u = ak.to_numpy(event_uniforms(events, salt=7))
    assert u.min() >= 0
    assert u.max() < 1
    counts, _ = np.histogram(u, bins=10, range=(0, 1))
    assert np.all(np.abs(counts - n / 10) < 5 * np.sqrt(n / 10))  # ~5 sigma per bin
    assert abs(np.mean(u < 0.648) - 0.648) < 0.005
    assert not np.array_equal(u, ak.to_numpy(event_uniforms(events, salt=8)))
    path = str(shared_data / "nanoaod" / "nano_dy.root")
    eager = ak.to_list(event_uniforms(eager_events(path), salt=1))
    for step in (7, 40):
        assert computed(event_uniforms(lazy_events([path], step_size=step), salt=1)).tolist() \
            == eager  # fmt: skip
