"""Where a graph computes: dask's local schedulers, a LocalCluster, a scheduler address;
progress counted in chunks and events."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from brewflow.config import validate
from brewflow.jobs import execution, preprocess
from brewflow.jobs.analyze import run


@pytest.fixture(scope="module")
def config(demo_set) -> dict:
    return validate(demo_set["config"])


def test_progress_counts_chunks_and_events(caplog):
    progress = execution.Progress("dy/nominal", [100, 200, 300], interval=0.0)
    with caplog.at_level(logging.INFO, logger="brewflow.jobs.execution"):
        progress.update([1])
        progress.update([1, 0])  # a chunk reported twice is counted once
        progress.finish()
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("dy/nominal: 1/3 chunks, 200/600 events (33%), ")
    assert lines[-1].startswith("dy/nominal: 2/3 chunks, 300/600 events (50%), ")
    assert lines[-1].endswith(" events/s")


def test_a_job_logs_its_progress_on_every_scheduler(config, caplog):
    files = preprocess.preprocess(config, "dy")["files"]
    chunks = sum(len(f["chunks"]) for f in files)
    results = {}
    for scheduler in ("threads", "processes", "distributed"):
        caplog.clear()
        with caplog.at_level(logging.INFO):
            results[scheduler] = run(
                config, "dy", ["nominal", "jesUp"], files, scheduler=scheduler, workers=2
            )
        done = f"dy/all systematics: {chunks}/{chunks} chunks, 1500/1500 events (100%)"
        assert done in caplog.text, scheduler
    assert "dask LocalCluster: 2 workers, dashboard http" in caplog.text
    for scheduler in ("processes", "distributed"):  # the same reduction tree: bit-identical
        for name, h in results["threads"].histograms.items():
            other = results[scheduler].histograms[name]
            assert np.array_equal(h.view(flow=True), other.view(flow=True)), (scheduler, name)


def test_the_environment_overrides_the_configured_scheduler(config, monkeypatch):
    assert execution.scheduler_name(config) == "processes"  # the default (issue 30)
    monkeypatch.setenv(execution.ENV, "tcp://127.0.0.1:1")
    monkeypatch.setattr(execution, "CONNECT_TIMEOUT", "2s")
    assert execution.scheduler_name(config) == "tcp://127.0.0.1:1"
    files = preprocess.preprocess(config, "ww")["files"]
    with pytest.raises(
        OSError, match=r"cannot connect to the dask scheduler 'tcp://127\.0\.0\.1:1'"
    ):
        run(config, "ww", "nominal", files)


def test_config_accepts_a_scheduler_address_and_refuses_nonsense(demo_set):
    from brewflow.config import ConfigError

    assert validate({**demo_set["config"], "scheduler": "tcp://head:8786"})["scheduler"]
    with pytest.raises(ConfigError, match="config key 'scheduler'"):
        validate({**demo_set["config"], "scheduler": "slurm"})
