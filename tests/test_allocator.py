"""The allocator setting of compute processes: freed arrays' pages are reused, not faulted in
again (counted by the kernel: minor page faults of a fresh process)."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

from brewflow import allocator
from tests.helpers import ARRAY_PAGES, PAGE_FAULTS, clean_environment

GLIBC = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")

MB_ARRAYS = (
    PAGE_FAULTS
    + """
import json, sys
from brewflow.allocator import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else None
print(json.dumps({"kept": kept, "faults": faults()}))
"""
)


def _faults(how: str, environ: dict[str, str] | None = None) -> dict:
    """In a fresh process (glibc's thresholds as at start, not as this one left them)."""
    out = subprocess.run([sys.executable, "-c", MB_ARRAYS, how], capture_output=True,
                         text=True, check=True, env=environ or clean_environment())  # fmt: skip
    return json.loads(out.stdout)


@GLIBC
def test_freed_arrays_are_reused_not_faulted_in_again():
    default, kept = _faults("default"), _faults("keep")
    assert kept["kept"] is True
    # glibc's default trims the heap's free top after each round: fresh pages every round
    # (about an array's worth: 20 x 2048)
    assert default["faults"] > 5 * ARRAY_PAGES, default
    # kept: the first round's pages serve every later one
    assert kept["faults"] < ARRAY_PAGES, kept


@GLIBC
def test_the_users_allocator_settings_are_kept():
    """A user who set how glibc returns memory keeps it: not overridden."""
    environ = {**clean_environment(), "MALLOC_TRIM_THRESHOLD_": "0"}  # trim at every free
    tuned = _faults("keep", environ)
    assert tuned["kept"] is False
    assert tuned["faults"] > 5 * ARRAY_PAGES, tuned


@pytest.mark.parametrize(
    ("environ", "tuned"),
    [
        ({}, False),
        ({"MALLOC_ARENA_MAX": "2", "GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, False),
        ({"MALLOC_TOP_PAD_": "67108864"}, True),
        ({"MALLOC_MMAP_THRESHOLD_": "65536"}, True),
        ({"GLIBC_TUNABLES": "glibc.malloc.check=0:glibc.malloc.trim_threshold=0"}, True),
        ({"GLIBC_TUNABLES": "glibc.malloc.mmap_max=0"}, True),
        ({"MALLOC_TRIM_THRESHOLD_": ""}, False),  # empty: glibc's default
        ({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold="}, False),
        ({"GLIBC_TUNABLES": "GLIBC.MALLOC.TRIM_THRESHOLD=0"}, False),  # glibc ignores it
        ({"GLIBC_TUNABLES": "glibc.malloc.top_pad_extra=1"}, False),  # no such tunable
        ({"GLIBC_TUNABLES": "glibc.foo.bar=glibc.malloc.top_pad"}, False),  # a value
    ],
)
def test_user_tuned(environ, tuned):
    assert allocator.user_tuned(environ) is tuned
