"""Checkpoints: an intermediate the analysis marks is persisted on a distributed cluster and
reused; histograms equal the eager reference either way."""

from __future__ import annotations

import logging

import awkward as ak
import dask
import numpy as np
import pytest

from brewflow.checkpoints import checkpoint, persisting
from brewflow.config import systematics_for, validate
from brewflow.jobs import preprocess
from brewflow.jobs.analyze import run
from brewflow.nanoevents.reader import eager_events, lazy_events
from tests import reference
from tests.helpers import check_result as _check

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def config(demo_set) -> dict:
    return validate(demo_set["config"])


@pytest.fixture
def client():
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def _good_jets(events):
    jets = events.Jet
    return jets[(jets.pt > 30) & (abs(jets.eta) < 2.4)]


def test_a_mark_outside_a_persisting_block_changes_nothing(config):
    path = config["datasets"]["ww"]["files"][0]
    lazy = _good_jets(lazy_events([path], step_size=500))
    assert checkpoint(lazy, "jets") is lazy
    eager = _good_jets(eager_events(path))
    assert checkpoint(eager, "jets") is eager


def test_a_persisted_intermediate_is_computed_once_and_reused(config, client):
    """The checkpoint's graph holds only the kept partitions (no file reading); graphs built
    on it together with other columns of the events optimize and compute to the eager
    values."""
    path = config["datasets"]["ttbar"]["files"][0]
    events = lazy_events([path], step_size=500)
    with persisting(client) as kept:
        jets = checkpoint(_good_jets(events), "jets")
        again = checkpoint(eager_events(path).Jet, "eager")  # not a dask collection
    assert kept.names == ["jets"]
    assert not dask.is_dask_collection(again)
    layers = list(jets.dask.layers)
    assert len(layers) == 1
    assert layers[0].startswith("checkpoint-jets")
    eager = eager_events(path)
    good = _good_jets(eager)
    ht = ak.sum(jets.pt, axis=1) + events.MET.pt  # checkpoint and file columns in one graph
    (optimized,) = dask.optimize(ht)
    (got,) = dask.compute(optimized, optimize_graph=False)
    met = ak.to_list(eager.MET.pt)
    expected = [sum(j["pt"] for j in row) + m for row, m in zip(ak.to_list(good), met, strict=True)]
    np.testing.assert_allclose(ak.to_numpy(got), expected, rtol=1e-6)
    assert ak.to_list(jets.compute()) == ak.to_list(good)


def test_a_job_persisting_checkpoints_equals_the_reference(config, caplog):
    """An analyze job with persist_checkpoints on a LocalCluster: the demo's selected jets of
    the nominal and every object variation are persisted; every histogram equals the
    eager reference."""
    ttbar = validate({**config, "persist_checkpoints": True})
    files = preprocess.preprocess(ttbar, "ttbar")["files"]
    systematics = ["nominal", "jesUp", "jerDown", "btag_hfUp"]
    with caplog.at_level(logging.INFO):
        result = run(ttbar, "ttbar", systematics, files, scheduler="distributed", workers=2)
    assert "checkpoints persisted: ttbar/nominal/jets, ttbar/jesUp/jets, ttbar/jerDown/jets" in (
        caplog.text
    )
    expected = reference.dataset_events(ttbar, "ttbar")
    for systematic in systematics:
        assert systematic in systematics_for(ttbar, "ttbar")
        _check(result, ttbar, expected, systematic)


def test_a_local_scheduler_ignores_the_marks(config, caplog):
    files = preprocess.preprocess(config, "ww")["files"]
    plain = run(config, "ww", "nominal", files, scheduler="sync")
    with caplog.at_level(logging.INFO):
        marked = run(validate({**config, "persist_checkpoints": True}), "ww", "nominal", files,
                     scheduler="sync")  # fmt: skip
    assert "persist_checkpoints needs a distributed scheduler (this job: 'sync')" in caplog.text
    for name, h in plain.histograms.items():
        assert np.array_equal(h.view(flow=True), marked.histograms[name].view(flow=True)), name
