"""Partitions computed in forked processes: the same results as dask's threads; every wait
bounded (a worker killed at any point is computed again, or named), and no worker outlives the
parent (SIGTERM or SIGKILL), each case run many times to catch rare races (issue 27)."""

from __future__ import annotations

import contextlib
import itertools
import operator
import os
import platform
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import awkward as ak
import dask_awkward as dak
import dask_histogram
import hist
import numpy as np
import pytest

from brewflow import forked
from brewflow.errors import BrewflowError
from tests.helpers import ARRAY_PAGES, PAGE_FAULTS, clean_environment


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


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_progress_is_reported_to_the_last_partition(workers):
    """The parent hears of every output key computed (2 collections x 7 partitions), in
    order, up to all of them: what brewflow adl's progress bar draws."""
    collections, _ = _collections(npartitions=7)
    calls: list[tuple[int, int]] = []
    forked.compute_partitions(forked.optimized(collections), workers, progress=lambda *a:
                              calls.append(a))  # fmt: skip
    done = [d for d, _ in calls]
    assert done == sorted(done)
    assert calls[-1] == (14, 14)
    assert {t for _, t in calls} == {14}


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_keys_computed_in_processes_come_back_in_order(workers):
    """compute_keys: each key's value (not combined), in the order asked, from the workers
    (an analyze job's chunk pieces, folded by the job in its own order)."""
    collections, values = _collections(npartitions=7)
    work = forked.optimized(collections)
    keys = [*work.keys["x2"][::-1], *work.keys["x"][:3]]
    out = forked.compute_keys(work.graph, keys, workers)
    edges = dak.from_awkward(ak.Array(values), npartitions=7).divisions
    parts = [values[a:b] for a, b in itertools.pairwise(edges)]
    axis = hist.axis.Regular(20, 0, 10, name="x")
    expected = [*(hist.Hist(axis).fill(p * 2) for p in parts[::-1]),
                *(hist.Hist(axis).fill(p) for p in parts[:3])]  # fmt: skip
    assert len(out) == len(expected)
    for got, want in zip(out, expected, strict=True):
        assert np.array_equal(got.values(flow=True), want.values(flow=True))


def test_computations_in_threads_each_get_their_own_values(monkeypatch):
    """Two computations started at once from two threads of one process (a notebook, a
    service): each one's workers compute its own graph, even when the other starts between
    its set-up and its fork (a pause there made likely; a module-level graph was swapped)."""
    run = forked._run

    def late(*args, **kwargs):
        time.sleep(0.3)
        return run(*args, **kwargs)

    monkeypatch.setattr(forked, "_run", late)
    out: dict[int, list] = {}

    def compute(offset: int) -> None:
        graph = {("x", i): (operator.add, i, offset) for i in range(6)}
        out[offset] = forked.compute_keys(graph, list(graph), 2)

    threads = [threading.Thread(target=compute, args=(offset,)) for offset in (100, 200)]
    with _deadline(60):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert out == {o: [o + i for i in range(6)] for o in (100, 200)}


def test_collections_must_share_partitions():
    one, _ = _collections(npartitions=3)
    other, _ = _collections(npartitions=4)
    with pytest.raises(ValueError, match="same number of partitions"):
        forked.optimized({"a": one["x"], "b": other["x"]})


SIZE = 500_000  # float64 per partition: 4 MB results, so that a kill can land while sending


def _partition(i: int) -> np.ndarray:
    return np.full(SIZE, float(i))


def _work(npartitions: int) -> forked.Partitioned:
    """A plain graph of ``npartitions`` partitions, partition i an array of i's."""
    keys = [("x", i) for i in range(npartitions)]
    return forked.Partitioned({key: (_partition, key[1]) for key in keys}, {"x": keys})


class _Killer:
    """A ``combine`` that, in a worker (its partitions computed), SIGKILLs that worker
    ``delay`` seconds later (before or while it sends its result; at once where 0): the first
    worker only, or every worker (``always``)."""

    def __init__(self, marker: Path, delay: float, always: bool = False) -> None:
        self.marker, self.delay, self.always, self.parent = marker, delay, always, os.getpid()

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if os.getpid() != self.parent and self._first():
            pid, delay = os.getpid(), self.delay
            if not delay:
                os.kill(pid, signal.SIGKILL)
            threading.Thread(target=lambda: (time.sleep(delay), os.kill(pid, signal.SIGKILL)),
                             daemon=True).start()  # fmt: skip
        return a + b

    def _first(self) -> bool:
        if self.always:
            return True
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL))  # one process wins
        except FileExistsError:
            return False
        return True


@contextlib.contextmanager
def _deadline(seconds: float):
    """TimeoutError where the block takes longer (the parent must never hang)."""

    def expire(signum, frame):
        raise TimeoutError(f"still waiting after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_a_worker_killed_late_is_computed_again(tmp_path):
    expected = sum(float(i) for i in range(6))
    for attempt in range(20):
        killer = _Killer(tmp_path / f"killed-{attempt}", delay=random.uniform(0, 0.03))
        started = time.monotonic()
        with _deadline(30):
            out = forked.compute_partitions(_work(6), 2, combine=killer)
        assert time.monotonic() - started < 15
        assert (tmp_path / f"killed-{attempt}").exists()  # a worker was killed
        assert out["x"].shape == (SIZE,)
        assert np.all(out["x"] == expected), attempt


def test_a_worker_killed_twice_is_named(tmp_path):
    before = set(_children(os.getpid()))  # the session's own (e.g. test servers)
    for _ in range(5):
        killer = _Killer(tmp_path / "unused", delay=0, always=True)
        started = time.monotonic()
        with _deadline(30), pytest.raises(forked.WorkerLost) as lost:
            forked.compute_partitions(_work(6), 2, combine=killer)
        assert time.monotonic() - started < 15
        message = str(lost.value)
        assert "partitions 0, 2, 4 of 6" in message or "partitions 1, 3, 5 of 6" in message
        assert "killed by SIGKILL before sending its result, twice" in message
        assert isinstance(lost.value, BrewflowError)  # one line, exit 2
        assert not set(_children(os.getpid())) - before  # every worker reaped


def test_a_lost_worker_is_named_by_what_its_share_reads(tmp_path):
    """``sources``: a lost worker's share named by the files and entries its partitions read
    (a share takes every n-th partition: it spans the files), bounded; as many sources as
    partitions, or a ValueError."""
    sources = [(f"{f}.root", a, a + 10) for f in "ab" for a in (0, 10, 20)]
    killer = _Killer(tmp_path / "unused", delay=0, always=True)
    with _deadline(30), pytest.raises(forked.WorkerLost) as lost:
        forked.compute_partitions(_work(6), 2, combine=killer, sources=sources)
    shares = (
        "3 partitions of 6 ('a.root' entries 0-10, 20-30; 'b.root' entries 10-20) was",
        "3 partitions of 6 ('a.root' entries 10-20; 'b.root' entries 0-10, 20-30) was",
    )
    assert any(f"the forked worker of {share}" in str(lost.value) for share in shares), lost.value
    many = [(f"file{f}.root", a, a + 1) for f in range(8) for a in range(12)]  # 96 partitions
    said = forked._read_by(list(range(0, 96, 2)), many)
    assert said.startswith("'file0.root' entries 0-1, 2-3, 4-5, 6-7, ...; 'file1.root' entries")
    assert said.endswith("; 5 more files")
    with pytest.raises(ValueError, match="5 sources for 6 partitions"):
        forked.compute_partitions(_work(6), 2, sources=sources[:5])


def _fails(i: int) -> None:
    raise ValueError(f"partition {i} is damaged")


def test_a_worker_exception_is_raised_in_the_parent():
    keys = [("x", i) for i in range(4)]
    work = forked.Partitioned({key: (_fails, key[1]) for key in keys}, {"x": keys})
    before = set(_children(os.getpid()))  # the session's own (e.g. test servers)
    with _deadline(30), pytest.raises(ValueError, match=r"partition \d is damaged"):
        forked.compute_partitions(work, 2)
    assert not set(_children(os.getpid())) - before


def _hangs(i: int) -> int:
    if os.environ.get("BREWFLOW_TEST_PARENT") != str(os.getpid()):  # in a worker only
        time.sleep(3600)
    return i


def _step(previous: int, i: int) -> int:
    time.sleep(0.3)
    return previous + i


def test_a_hung_worker_is_ended_and_named(monkeypatch):
    """A worker that finishes no task for ``stall`` seconds is ended, its share computed once
    more, and a second hang named by the share's keys (a library that hangs after a fork):
    the wait is bounded, no worker is left."""
    monkeypatch.setenv("BREWFLOW_TEST_PARENT", str(os.getpid()))
    graph = {("x", i): (_hangs, i) for i in range(4)}
    keys = list(graph)
    names = [f"f.root entries {i}-{i + 1}" for i in range(4)]
    before = set(_children(os.getpid()))
    started = time.monotonic()
    with _deadline(30), pytest.raises(forked.WorkerLost) as lost:
        forked.compute_keys(graph, keys, 2, names=names, stall=1.5)
    assert 3.0 <= time.monotonic() - started < 15  # two stalls of 1.5 s, then named
    message = str(lost.value)
    assert "f.root entries 0-1, f.root entries 2-3" in message or (
        "f.root entries 1-2, f.root entries 3-4" in message)  # fmt: skip
    assert "finished no task in 1.5 s (hung), twice" in message
    assert "--scheduler threads" in message
    assert not set(_children(os.getpid())) - before  # every worker reaped


class _LateLook:
    """A worker's process whose exit code the parent reads 0.3 s late (a loaded machine
    deschedules it between its look at the pipe and at the exit code)."""

    def __init__(self, process) -> None:
        self._process = process

    def __getattr__(self, name):
        return getattr(self._process, name)

    @property
    def exitcode(self):
        time.sleep(0.3)
        return self._process.exitcode


def _sleeps(x, seconds: float):
    time.sleep(seconds)
    return x


def test_a_result_sent_just_before_the_worker_exits_is_kept(monkeypatch):
    """A worker that sends its result and exits between the parent's look at its pipe and at
    its exit code: the result is read, not taken for a death (found by the review: "exited
    with code 0 before sending its result", twice)."""
    start = forked._start

    def late(*args):
        worker = start(*args)
        worker.process = _LateLook(worker.process)
        return worker

    monkeypatch.setattr(forked, "_start", late)
    graph = {**{("a", i): (_sleeps, i, 0.6) for i in range(4)},
             **{("k", i): (_sleeps, ("a", i), 0.1) for i in range(4)}}  # fmt: skip
    with _deadline(60):
        assert forked.compute_keys(graph, [("k", i) for i in range(4)], 2, stall=None) == [
            0, 1, 2, 3]  # fmt: skip


SUSPENDED = """
import sys, time
from brewflow import forked

def step(previous, i):
    time.sleep(0.3)
    return previous + i

graph = {}
for chain in range(2):
    graph[("x", chain, 0)] = (step, 0, 1)
    for i in range(1, 30):
        graph[("x", chain, i)] = (step, ("x", chain, i - 1), 1)
print("forking", flush=True)
print(forked.compute_keys(graph, [("x", c, 29) for c in range(2)], 2, stall=5), flush=True)
"""


def test_a_suspended_job_is_not_taken_for_hung_workers():
    """The whole job stopped (Ctrl-Z, a batch system's suspend) for longer than ``stall``,
    then continued: its workers are not hung, the job carries on (found by the review: every
    worker ended as hung, twice failed the job)."""
    job = subprocess.Popen([sys.executable, "-c", SUSPENDED], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    try:
        assert job.stdout is not None
        assert job.stdout.readline() == "forking\n"
        time.sleep(2)
        os.killpg(job.pid, signal.SIGSTOP)
        time.sleep(8)
        os.killpg(job.pid, signal.SIGCONT)
        out, err = job.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(job.pid, signal.SIGKILL)
    assert job.returncode == 0, err[-2000:]
    assert out.strip() == "[30, 30]"
    assert "hung" not in err


def test_a_slow_worker_that_progresses_is_not_ended():
    """Tasks of 0.3 s, 12 of them a worker (3.6 s): longer than ``stall`` in all, but each
    finished task is reported, so the worker is never taken as hung."""
    graph: dict = {}
    keys = []
    for chain in range(2):
        graph[("x", chain, 0)] = (_step, 0, 1)
        for i in range(1, 12):
            graph[("x", chain, i)] = (_step, ("x", chain, i - 1), 1)
        keys.append(("x", chain, 11))
    with _deadline(60):
        assert forked.compute_keys(graph, keys, 2, stall=1.5) == [12, 12]


PARENT = """
import sys, time
from brewflow import forked

def slow(i):
    time.sleep(120)
    return i

keys = [("x", i) for i in range(4)]
work = forked.Partitioned({key: (slow, key[1]) for key in keys}, {"x": keys})
print("forking", flush=True)
forked.compute_partitions(work, 2)
"""


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc), zombies included."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
    return out


def _running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _parent_with_workers() -> tuple[subprocess.Popen, list[int]]:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    assert parent.stdout is not None
    assert parent.stdout.readline() == "forking\n"
    parent.stdout.close()  # a worker left behind would hold it open
    deadline = time.monotonic() + 20
    while len(workers := _children(parent.pid)) < 2:
        assert time.monotonic() < deadline, "the workers never started"
        time.sleep(0.02)
    return parent, workers


@pytest.mark.parametrize("kill", [signal.SIGTERM, signal.SIGKILL])
def test_no_worker_outlives_its_parent(kill):
    for _ in range(8):
        parent, workers = _parent_with_workers()
        time.sleep(random.uniform(0, 0.3))  # workers starting up, or computing
        parent.send_signal(kill)
        try:
            assert parent.wait(timeout=15) == -kill  # ended by the signal, no hang
            deadline = time.monotonic() + 10
            while any(_running(pid) for pid in workers):
                assert time.monotonic() < deadline, f"workers left running: {workers}"
                time.sleep(0.05)
        finally:
            for pid in [parent.pid, *workers]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)  # whatever a failure left
            parent.wait()


def test_no_fork_on_macos(monkeypatch):
    """macOS forks crash processes that used its frameworks: threads there."""
    monkeypatch.setattr(sys, "platform", "darwin")
    assert not forked.available()


WORKERS_FAULTS = (
    PAGE_FAULTS
    + """
import json, os, signal, sys
from brewflow import forked

def share() -> int:
    # faults(); the first worker here, where a marker path is given, is SIGKILLed first (its
    # share is computed again by a new worker)
    if len(sys.argv) > 2:
        try:
            os.close(os.open(sys.argv[2], os.O_CREAT | os.O_EXCL))
            os.kill(os.getpid(), signal.SIGKILL)
        except FileExistsError:
            pass
    return faults()

work = forked.Partitioned({("f", i): (share,) for i in range(2)}, {"f": [("f", 0), ("f", 1)]})
print(json.dumps(forked.compute_partitions(work, 2, keep_memory=sys.argv[1] == "keep")["f"]))
"""
)


def _faults(*args: str) -> int:
    """Both workers' page faults (WORKERS_FAULTS), from a fresh parent."""
    done = subprocess.run([sys.executable, "-c", WORKERS_FAULTS, *args], capture_output=True,
                          text=True, check=True, env=clean_environment())  # fmt: skip
    return int(done.stdout)


@pytest.mark.skipif(not forked.available(), reason="fork: Linux")
@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_workers_keep_freed_memory_when_asked():
    """``keep_memory=True`` (brewflow adl's): each worker reuses the pages its arrays freed
    (brewflow.allocator); else glibc's default hands them back and faults them in again.
    Each way from a fresh parent (glibc's thresholds adapt to what a process freed before)."""
    kept, default = _faults("keep"), _faults("default")  # both workers' faults, summed
    assert kept < ARRAY_PAGES < 5 * ARRAY_PAGES < default, (kept, default)


@pytest.mark.skipif(not forked.available(), reason="fork: Linux")
@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_a_worker_computed_again_keeps_freed_memory(tmp_path):
    """The worker that computes a lost worker's share again keeps its freed memory too."""
    marker = tmp_path / "killed"
    kept = _faults("keep", str(marker))
    assert marker.exists()  # a worker was killed and its share computed again
    assert kept < ARRAY_PAGES, kept
