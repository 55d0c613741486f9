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


@pytest.mark.skipif(not forked.available(), reason="fork: Linux")
@pytest.mark.parametrize(
    ("error", "kind", "text"),
    [
        (ValueError("a plain error"), ValueError, "a plain error"),
        (Unpicklable("cannot travel"), RuntimeError, "Unpicklable: cannot travel"),
        (UnpicklableUserError("file x.root: bad"), BrewflowError, "file x.root: bad"),
    ],
)
def test_an_error_reaches_the_parent_by_name(error, kind, text):
    """Run in a forked child (work() sets this process's signals and parent watch)."""
    context = multiprocessing.get_context("fork")
    reader, writer = context.Pipe(duplex=False)
    task = worker.Task({("x", 0): (_raise, error)}, lambda share: [[("x", 0)]], None)
    child = context.Process(target=worker.work, args=(task, [0], writer, os.getpid()))
    child.start()
    writer.close()
    message = None
    while True:
        try:
            message = reader.recv()
        except EOFError:
            break
        if message[0] != "done":
            break
    child.join(10)
    status, value = message
    assert status == "error"
    assert type(value) is kind
    assert str(value) == text
