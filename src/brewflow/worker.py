"""What a worker forked by :mod:`brewflow.forked` runs: it dies with its parent, computes its
share of the partitions with dask's synchronous scheduler, reports each finished task, and
sends its result (or its exception) back through its pipe."""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from functools import reduce
from typing import Any, NamedTuple

from brewflow.allocator import keep_freed_memory
from brewflow.errors import BrewflowError

__all__ = ["POLL", "Task", "work"]

POLL = 0.5
"""Seconds between the parent's checks of its workers, and a worker's of its parent."""
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class Task(NamedTuple):
    """What the workers of one computation compute: a forked worker inherits it as its
    process's argument (nothing pickled; a module-level copy was overwritten by a computation
    started meanwhile in another thread, whose graph the first one's workers computed)."""

    graph: Mapping
    wanted: Callable[[list[int]], list[list[Any]]]
    combine: Callable[[Any, Any], Any] | None
    keep_memory: bool = False  # keep_freed_memory() in each worker


def work(task: Task, share: list[int], pipe: Any, parent: int) -> None:
    """In a forked worker: die with ``parent``, compute ``share``, send the result (or the
    exception) through ``pipe``."""
    _die_with(parent)
    if task.keep_memory:
        keep_freed_memory()  # its arrays' pages faulted in once, not at every step
    try:
        message: tuple[str, Any] = ("ok", _compute_share(task, share, _Reports(pipe)))
    except Exception as err:
        message = ("error", _sendable(err))
    try:
        pipe.send(message)  # (pickled whole before any byte is written)
    except Exception as err:  # a result that does not pickle: said, not a worker's death
        unsent = f"a forked worker's result could not be sent to its parent: {_text(err)}"
        pipe.send(("error", RuntimeError(unsent)))
    pipe.close()


def _die_with(parent: int) -> None:
    """This worker ends when ``parent`` does: the kernel's parent-death signal (Linux), a
    thread that watches the parent's pid; SIGTERM ends it, SIGINT is the parent's to act
    on."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the signal was asked for
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(POLL)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _sendable(err: Exception) -> Exception:
    """``err``, or a copy of its message where it does not survive pickling (or has no
    readable message: the parent would fail to say it)."""
    try:
        pickle.loads(pickle.dumps(err))
        str(err)
    except Exception:
        if isinstance(err, BrewflowError):
            return BrewflowError(_text(err, named=False))
        return RuntimeError(_text(err))
    return err


def _text(err: BaseException, named: bool = True) -> str:
    """``"Type: message"`` of ``err`` (``named=False``: the message alone), also where its
    ``str`` raises."""
    try:
        message = str(err)
    except Exception:
        message = "(its message could not be read)"
    return f"{type(err).__name__}: {message}" if named else message


class _Reports:
    """In a forked worker: tells the parent through ``pipe`` that a task finished, at most
    every :data:`POLL` seconds (its watch for hung workers), and how many of the ``outputs``
    (the keys its share is computed for) are done, at once when one is."""

    def __init__(self, pipe: Any) -> None:
        self.pipe, self.sent = pipe, time.monotonic()
        self.outputs: frozenset = frozenset()
        self.finished = 0

    def __call__(self, key: Any, *args: Any) -> None:  # dask's posttask callback
        now = time.monotonic()
        output = key in self.outputs
        self.finished += output
        if output or now - self.sent >= POLL:
            self.pipe.send(("done", self.finished))
            self.sent = now


def _compute_share(task: Task, share: list[int], report: _Reports) -> list[Any]:
    """In a forked worker: the values of the keys of ``share``, per group (each group's
    combined when the work has a ``combine``), each finished task reported."""
    import dask.local
    from dask.callbacks import Callback
    from dask.optimization import cull

    graph, combine = task.graph, task.combine
    wanted: Any = task.wanted(share)
    report.outputs = frozenset(key for group in wanted for key in group)
    needed, _ = cull(graph, list(report.outputs))  # only these
    with Callback(posttask=report):
        outputs = dask.local.get_sync(needed, wanted)
    if combine is None:
        return [list(out) for out in outputs]
    return [reduce(combine, out) for out in outputs]
