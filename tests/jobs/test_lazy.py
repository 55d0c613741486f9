"""An analyze job's sums in one fixed order, and the cache of pieces: a job that finds some
files' or chunks' pieces computed before reads only the others and gives the bits of a job
computed from scratch (issue 29: adding files, removing files, filling in skipped chunks)."""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path

import numpy as np
import pytest

from brewflow import forked
from brewflow.config import ConfigError, systematics_for, validate
from brewflow.jobs import preprocess
from brewflow.jobs.analyze import run
from brewflow.jobs.build import analysis_code
from brewflow.jobs.piececache import PieceCache, job_identity
from brewflow.nanoevents.reader import ChunkReadError, NanoReader


@pytest.fixture(scope="module")
def config(demo_set) -> dict:
    return validate({**demo_set["config"], "on_bad_file": "skip"})


@pytest.fixture(scope="module")
def inventories(config) -> dict:
    return {name: preprocess.preprocess(config, name) for name in ("dy", "data")}


def _cache(config, dataset, systematics, folder) -> PieceCache:
    return PieceCache(folder, job_identity(config, dataset, systematics, analysis_code(config)))


def _identical(a, b) -> None:
    """Bit for bit: every bin of every histogram, and every count of the ledger."""
    assert sorted(a.histograms) == sorted(b.histograms)
    for name, h in a.histograms.items():
        x, y = h.view(flow=True), b.histograms[name].view(flow=True)
        assert x.dtype == y.dtype
        if x.dtype.names:
            for field in x.dtype.names:
                np.testing.assert_array_equal(x[field], y[field], err_msg=name)
        else:
            np.testing.assert_array_equal(x, y, err_msg=name)
    for key in ("events", "events_certified", "sumw_read", "sumw", "chunks", "skipped"):
        assert a.meta.get(key) == b.meta.get(key), key


def _read(caplog) -> tuple[int, int]:
    """(chunks read, chunks from the cache) of the last job, from its log."""
    lines = [r.getMessage() for r in caplog.records if "from the cache" in r.getMessage()]
    if not lines:
        return -1, 0
    found = re.search(r"(\d+) chunks read, (\d+) from the cache", lines[-1])
    assert found, lines[-1]
    return int(found[1]), int(found[2])


@pytest.mark.parametrize("scheduler", ["threads", "processes"])
@pytest.mark.parametrize("dataset", ["dy", "data"])
def test_lazy_and_eager_jobs_add_up_in_the_same_order(
    config, inventories, dataset, scheduler, monkeypatch
):
    """dask's threads and forked worker processes (each computing whole chunks, issue 30):
    the bits of the eager reference, chunk by chunk."""
    forks = []
    monkeypatch.setattr(forked, "_start", _counting(forked._start, forks))
    files = inventories[dataset]["files"]
    systematics = systematics_for(config, dataset)  # object variations stacked, weights
    lazy = run(config, dataset, systematics, files, scheduler=scheduler, workers=2)
    eager = run(config, dataset, systematics, files, lazy=False)
    _identical(lazy, eager)
    assert bool(forks) == (scheduler == "processes")  # the chunks were computed there


def _counting(function, calls: list):
    def counted(*args, **kwargs):
        calls.append(args)
        return function(*args, **kwargs)

    return counted


def test_adding_and_removing_files_reads_only_new_chunks(config, inventories, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    files = inventories["dy"]["files"]
    systematics = systematics_for(config, "dy")
    cache = _cache(config, "dy", systematics, tmp_path)  # (one a job: it reads file
    # identities once)
    run(config, "dy", systematics, files[:1], cache=cache)  # the dataset had one file

    caplog.clear()
    added = run(config, "dy", systematics, files, cache=cache)  # a file arrives
    assert _read(caplog) == (len(files[1]["chunks"]), len(files[0]["chunks"]))
    _identical(added, run(config, "dy", systematics, files))  # from scratch, no cache

    caplog.clear()
    removed = run(config, "dy", systematics, files[1:], cache=cache)  # the first one goes
    assert _read(caplog) == (0, len(files[1]["chunks"]))
    _identical(removed, run(config, "dy", systematics, files[1:]))

    listed = {**config, "datasets": {**config["datasets"], "dy": {
        **config["datasets"]["dy"], "files": config["datasets"]["dy"]["files"][:1]}}}  # fmt: skip
    code = analysis_code(config)  # a workflow job's identity: its config lists the files
    assert job_identity(listed, "dy", systematics, code) == cache.job  # (benchmark: a file
    # added to the config found no piece before)

    caplog.clear()  # other systematics: other pieces
    run(config, "dy", ["nominal"], files, cache=_cache(config, "dy", ["nominal"], tmp_path))
    assert _read(caplog) == (-1, 0)


def test_a_changed_file_or_payload_is_computed_again(config, inventories, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    files = inventories["data"]["files"]
    cache = _cache(config, "data", ["nominal"], tmp_path)
    first = run(config, "data", ["nominal"], files, cache=cache)
    caplog.clear()
    again = run(config, "data", ["nominal"], files, cache=cache)
    assert _read(caplog) == (0, sum(len(f["chunks"]) for f in files))
    _identical(first, again)

    path = files[0]["path"]  # rewritten in place (same bytes): its identity changed
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 1))
    caplog.clear()
    run(config, "data", ["nominal"], files, cache=_cache(config, "data", ["nominal"], tmp_path))
    assert _read(caplog) == (len(files[0]["chunks"]), len(files[1]["chunks"]))

    other = {**config, "histograms": {k: v for k, v in list(config["histograms"].items())[1:]}}
    assert job_identity(other, "data", ["nominal"], {}) != job_identity(
        config, "data", ["nominal"], {}
    )
    golden = tmp_path / "golden.json"  # a payload's content is in the key
    golden.write_text(Path(config["datasets"]["data"]["lumi_mask"]).read_text())
    datasets = {**config["datasets"], "data": {**config["datasets"]["data"],
                                               "lumi_mask": str(golden)}}  # fmt: skip
    moved = {**config, "datasets": datasets}
    before = job_identity(moved, "data", ["nominal"], {})
    golden.write_text(golden.read_text().replace("]]", "]] ", 1))
    assert job_identity(moved, "data", ["nominal"], {}) != before


@pytest.mark.parametrize("scheduler", ["threads", "processes"])
def test_skipped_chunks_are_filled_in_later(
    config, inventories, tmp_path, caplog, monkeypatch, scheduler
):
    """A chunk that fails is skipped and read by the next job; in a forked worker (issue 30)
    the failure comes back to the job as the chunk's, not as a lost worker."""
    caplog.set_level(logging.INFO)
    where = {"scheduler": scheduler, "workers": 2}
    files = inventories["dy"]["files"]
    systematics = ["nominal", "jesUp", "pileupUp"]
    cache = _cache(config, "dy", systematics, tmp_path)
    path, (start, _stop) = files[1]["path"], files[1]["chunks"][0]
    read = NanoReader._read

    def failing(self, index, a, b, branches):
        if self.sources[index][0] == path and a == start:
            raise ChunkReadError(f"file {path!r}: the replica is down", path, a, b)
        return read(self, index, a, b, branches)

    monkeypatch.setattr(NanoReader, "_read", failing)
    skipped = run(config, "dy", systematics, files, cache=cache, **where)
    assert [(s["path"], s["start"]) for s in skipped.meta["skipped"]] == [(path, start)]
    assert "sumw" not in skipped.meta  # the normalisation waits for every event

    monkeypatch.setattr(NanoReader, "_read", read)  # the replica answers again
    caplog.clear()
    filled = run(config, "dy", systematics, files, cache=cache, **where)
    chunks = sum(len(f["chunks"]) for f in files)
    assert _read(caplog) == (1, chunks - 1)  # exactly the chunk skipped
    assert filled.meta["skipped"] == []
    assert filled.meta["events"] == inventories["dy"]["entries"]
    _identical(filled, run(config, "dy", systematics, files))


def test_a_graph_with_a_dataset_wide_reduction_is_computed_whole(
    config, inventories, tmp_path, caplog, monkeypatch
):
    """Regression (issue 29 review): an analysis whose event values depend on a reduction over
    every event read (a cut on the dataset's mean) has no per-file pieces: with some files'
    pieces in the cache, a job added the others' values computed with another mean. Such a
    graph (:func:`~brewflow.jobs.pieces.partition_local`, tests/jobs/test_pieces.py) is
    computed whole, every chunk, and keeps no piece. (Computing one for real hangs in dask
    itself: a hist.dask fill of ``x - dak.sum(x)`` never ends, without brewflow.)"""
    from brewflow.jobs import lazy

    caplog.set_level(logging.INFO)
    monkeypatch.setattr(lazy, "partition_local", lambda graph: False)
    files = inventories["data"]["files"]
    folder = tmp_path / "pieces"
    folder.mkdir()
    run(config, "data", ["nominal"], files[:1], cache=_cache(config, "data", ["nominal"], folder))
    assert not list(folder.glob("*.json"))  # no piece kept
    caplog.clear()
    whole = run(config, "data", ["nominal"], files,
                cache=_cache(config, "data", ["nominal"], folder))  # fmt: skip
    assert "reduces over the whole dataset" in caplog.text
    assert not list(folder.glob("*.json"))
    _identical(whole, run(config, "data", ["nominal"], files))


def test_a_job_the_data_gate_refuses_keeps_no_piece(config, inventories, tmp_path):
    """Regression (issue 29 review): a data job refused because a region's events fall in
    another region's blinded window stored its pieces (those events, and their count) before
    the gate's check; now each piece passes the gate before it is kept."""
    regions = {**config["regions"], "pre": {**config["regions"]["dimuon"],
               "cuts": ["trigger", "lead_muon", "two_muons", "opposite_charge"]}}  # fmt: skip
    histograms = {**config["histograms"], "mll_pre": {
        "variable": "mll", "bins": 60, "start": 100, "stop": 160, "regions": ["pre"]}}  # fmt: skip
    leaky = validate({**config, "regions": regions, "histograms": histograms})
    cache = _cache(leaky, "data", ["nominal"], tmp_path)
    with pytest.raises(ConfigError, match="blinded window of region 'dimuon'"):
        run(leaky, "data", ["nominal"], inventories["data"]["files"], cache=cache)
    assert not list(tmp_path.glob("*.json"))


def test_a_hung_worker_fails_the_job_named_by_its_chunks(config, inventories, monkeypatch):
    """A forked worker that finishes no task for ``stall_timeout`` seconds (a library that
    hangs after a fork) is ended; the second hang fails the job in bounded time, naming the
    file and entries of its chunks (invariant 6), no worker left behind."""
    parent, read = os.getpid(), NanoReader._read

    def hangs(self, index, a, b, branches):
        if os.getpid() != parent:
            time.sleep(3600)
        return read(self, index, a, b, branches)

    monkeypatch.setattr(NanoReader, "_read", hangs)
    files = inventories["dy"]["files"]
    started = time.monotonic()
    with pytest.raises(forked.WorkerLost) as lost:
        run({**config, "stall_timeout": 1}, "dy", ["nominal"], files, scheduler="processes",
            workers=2)  # fmt: skip
    assert time.monotonic() - started < 60
    chunks = [f"{f['path']} entries {a}-{b}" for f in files for a, b in f["chunks"]]
    assert any(chunk in str(lost.value) for chunk in chunks), str(lost.value)
    assert "finished no task in 1 s (hung), twice" in str(lost.value)
