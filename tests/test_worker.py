"""What a forked worker runs: its result or its error reaches the parent, whatever the error."""

from __future__ import annotations

import multiprocessing
import os

import pytest

from brewflow import forked, worker
from brewflow.errors import BrewflowError


class Unpicklable(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.handle = lambda: None  # (a lambda does not pickle)


class UnpicklableUserError(BrewflowError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.handle = lambda: None


def _raise(error: Exception):
    raise error


class UnreadableMessage(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no message")


def _unpicklable_result():
    return lambda: None


def _message_of(task: worker.Task) -> tuple:
    """What a forked child running ``task`` sends last (each wait bounded: 30 s)."""
    context = multiprocessing.get_context("fork")
    reader, writer = context.Pipe(duplex=False)
    child = context.Process(target=worker.work, args=(task, [0], writer, os.getpid()))
    child.start()
    writer.close()
    try:
        message = None
        while message is None or message[0] == "done":
            assert reader.poll(30), "the worker sent nothing for 30 s"
            message = reader.recv()
    finally:
        child.join(30)
        if child.exitcode is None:
            child.kill()
            child.join()
    assert child.exitcode == 0
    return message


@pytest.mark.skipif(not forked.available(), reason="fork: Linux")
@pytest.mark.parametrize(
    ("error", "kind", "text"),
    [
        (ValueError("a plain error"), ValueError, "a plain error"),
        (Unpicklable("cannot travel"), RuntimeError, "Unpicklable: cannot travel"),
        (UnpicklableUserError("file x.root: bad"), BrewflowError, "file x.root: bad"),
        (UnreadableMessage(), RuntimeError, "UnreadableMessage: (its message could not be read)"),
    ],
)
def test_an_error_reaches_the_parent_by_name(error, kind, text):
    task = worker.Task({("x", 0): (_raise, error)}, lambda share: [[("x", 0)]], None)
    status, value = _message_of(task)
    assert status == "error"
    assert type(value) is kind
    assert str(value) == text


@pytest.mark.skipif(not forked.available(), reason="fork: Linux")
def test_a_result_that_does_not_pickle_is_named_not_a_death():
    """Not "the worker exited before sending its result" (computed twice, blamed on memory)."""
    task = worker.Task({("x", 0): (_unpicklable_result,)}, lambda share: [[("x", 0)]], None)
    status, value = _message_of(task)
    assert status == "error"
    assert str(value).startswith("a forked worker's result could not be sent to its parent: ")
    assert "pickle" in str(value)
