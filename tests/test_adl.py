"""ADL Q1-Q8: bin-for-bin against explicit per-event loops (tests/adl_reference.py)."""

from __future__ import annotations

import json
import os
import signal

import dask
import dask_awkward as dak
import pytest

from brewflow import adl
from brewflow.cli import main
from brewflow.nanoevents.reader import eager_events, lazy_events
from tests import adl_reference

REAL = ["nano_dy.root", "nano_dimuon.root", "nano_tt_v12.root", "missing_luminosityBlock.root"]
COLUMNS = {
    "MET_pt", "MET_phi", "nJet", "Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass", "Jet_btagDeepFlavB",
    "nMuon", "Muon_pt", "Muon_eta", "Muon_phi", "Muon_mass", "Muon_charge",
    "nElectron", "Electron_pt", "Electron_eta", "Electron_phi", "Electron_mass", "Electron_charge",
}  # fmt: skip


def _check(document: dict, paths: list[str]) -> None:
    expected = adl_reference.histograms(paths)
    for name, (bins, lo, hi) in adl.BINNING.items():
        assert document[name]["values"] == expected[name], name
        assert len(document[name]["edges"]) == bins + 1
        assert document[name]["edges"][0] == lo
        assert document[name]["edges"][-1] == hi


@pytest.mark.parametrize("sample", REAL)
def test_cli_on_real_samples(shared_data, sample, tmp_path):
    path = str(shared_data / "nanoaod" / sample)
    out = tmp_path / "adl.json"
    assert main(["adl", "--output", str(out), "--step-size", "17", path]) == 0
    document = json.loads(out.read_text())
    assert document["events"] == len(adl_reference.values([path])["q1"])
    _check(document, [path])


def test_all_real_samples_in_one_run(shared_data, tmp_path):
    paths = [str(shared_data / "nanoaod" / s) for s in REAL]
    out = tmp_path / "adl.json"
    pattern = str(shared_data / "nanoaod" / "nano_*.root")  # globs work; includes the empty file
    assert main(["adl", "--output", str(out), "--scheduler", "sync", pattern, paths[-1]]) == 0
    document = json.loads(out.read_text())
    assert document["events"] == 40 + 40 + 200 + 0 + 2
    _check(document, paths)


def test_empty_file(shared_data):
    path = str(shared_data / "nanoaod" / "nano_dy_empty.root")
    for events in (eager_events(path), lazy_events([path])):
        document = adl.compute(events, scheduler="sync")
        assert document["events"] == 0
        assert all(sum(document[q]["values"]) == 0 for q in adl.BINNING)


def test_generated_events_eager_and_lazy(demo_set):
    paths = (
        demo_set["config"]["datasets"]["ttbar"]["files"]
        + (demo_set["config"]["datasets"]["dy"]["files"][:1])
    )
    lazy = adl.compute(lazy_events(paths, step_size=400), scheduler="threads", workers=2)
    _check(lazy, paths)
    forked = adl.compute(lazy_events(paths, step_size=400), scheduler="processes", workers=2)
    assert forked == lazy  # whole partitions in forked processes, histograms summed
    eager = [adl.compute(eager_events(p)) for p in paths]
    for name in adl.BINNING:
        summed = [sum(col) for col in zip(*(e[name]["values"] for e in eager), strict=True)]
        assert summed == lazy[name]["values"], name


def test_one_pass_over_the_needed_columns(demo_set):
    path = demo_set["config"]["datasets"]["ttbar"]["files"][0]
    values = adl.queries(lazy_events([path], step_size=300))
    (columns,) = dak.necessary_columns(*values.values()).values()
    assert set(columns) == COLUMNS
    (optimized,) = dask.optimize(values)
    graph = dask.base.collections_to_dsk(list(optimized.values()), optimize_graph=False)
    readers = [name for name in graph.layers if name.startswith("from-nanoaod")]
    assert len(readers) == 1


@pytest.mark.parametrize("scheduler", ["threads", "processes"])
def test_progress_bar_only_while_threads_compute(demo_set, tmp_path, monkeypatch, scheduler):
    """dask's progress bar, once ended, waits out its refresh period (0.25 s): active around
    the graph's optimization (a dask call of its own) or inherited by forked workers, it cost
    every run a quarter of a second per call. It is shown only while dask's threads compute."""
    from dask.callbacks import Callback
    from dask.diagnostics import ProgressBar

    from brewflow import forked

    seen: dict[str, bool] = {}

    def spy(name, function):
        def call(*args, **kwargs):
            methods = [f for callbacks in Callback.active for f in callbacks if f]
            seen[name] = any(isinstance(getattr(f, "__self__", None), ProgressBar) for f in methods)
            return function(*args, **kwargs)

        return call

    monkeypatch.setattr(dask, "optimize", spy("optimize", dask.optimize))
    monkeypatch.setattr(dask, "compute", spy("compute", dask.compute))
    monkeypatch.setattr(forked, "optimized", spy("optimize", forked.optimized))
    monkeypatch.setattr(forked, "compute_partitions", spy("fork", forked.compute_partitions))
    path = demo_set["config"]["datasets"]["ttbar"]["files"][0]
    document = adl.run_files([path], tmp_path / "adl.json", scheduler=scheduler, workers=2)
    _check(document, [path])
    expected = {"optimize": False, "compute": True} if scheduler == "threads" else {
        "optimize": False, "fork": False}  # fmt: skip
    assert seen == expected


def test_forked_workers_progress_bar(demo_set, tmp_path, monkeypatch, capsys):
    """Forked workers' progress drawn by the parent from their reports (shown here from the
    start), ending at 100%."""
    monkeypatch.setattr(adl, "PROGRESS_AFTER", 0.0)
    path = demo_set["config"]["datasets"]["ttbar"]["files"][0]
    adl.run_files([path], tmp_path / "adl.json", scheduler="processes", workers=2)
    last = capsys.readouterr().out.rstrip("\n").rsplit("\r", 1)[-1]  # (each draw: \r...)
    assert last.startswith("[" + "#" * 40 + "] | 100% Completed | ")


def test_forked_progress_is_drawn_at_most_every_quarter_second(monkeypatch, capsys):
    """Workers report every task: the bar is drawn at most every 0.25 s (a job's log got
    ~9000 frames in 40 s), and its last state when it closes."""
    monkeypatch.setattr(adl, "PROGRESS_AFTER", 0.0)
    bar = adl._Bar()
    for done in range(1, 1001):  # well within 0.25 s
        bar(done, 1000)
    bar.close()
    frames = capsys.readouterr().out.split("\r")[1:]
    assert len(frames) == 2
    assert frames[-1].startswith("[" + "#" * 40 + "] | 100% Completed")


def test_adl_asks_its_workers_to_keep_freed_memory(demo_set, monkeypatch):
    """brewflow adl's partitions of 100k events: 15% of a worker's time was page faults."""
    from brewflow import forked

    seen: dict = {}

    def compute_partitions(work, workers, **options):
        seen.update(options)
        raise RuntimeError("stop here")

    monkeypatch.setattr(forked, "compute_partitions", compute_partitions)
    events = lazy_events(demo_set["config"]["datasets"]["ttbar"]["files"], step_size=400)
    with pytest.raises(RuntimeError, match="stop here"):
        adl.compute(events, scheduler="processes", workers=2)
    assert seen["keep_memory"] is True


def test_a_lost_worker_is_named_by_the_entries_it_read(shared_data, tmp_path, monkeypatch, capsys):
    """A forked worker of ``brewflow adl`` that dies twice (here the one computing the first
    partition, SIGKILLed): one line naming the file and entries of its share, exit 2, nothing
    written."""
    from brewflow import forked, worker

    if not forked.available():
        pytest.skip("fork: Linux")
    compute_share = worker._compute_share

    def first_dies(task, share, reports):
        if 0 in share:
            os.kill(os.getpid(), signal.SIGKILL)
        return compute_share(task, share, reports)

    monkeypatch.setattr(worker, "_compute_share", first_dies)
    path = str(shared_data / "nanoaod" / "nano_dy.root")  # 40 events: 4 partitions of 10
    out = tmp_path / "adl.json"
    argv = ["adl", "--output", str(out), "--step-size", "10", "--scheduler", "processes",
            "--workers", "2", path]  # fmt: skip
    assert main(argv) == 2
    said = capsys.readouterr().err
    assert f"the forked worker of 2 partitions of 4 ({path!r} entries 0-10, 20-30) " in said
    assert "killed by SIGKILL before sending its result, twice" in said
    assert "Traceback" not in said
    assert not out.exists()
