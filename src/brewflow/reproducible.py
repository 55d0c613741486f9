"""Byte-reproducible outputs: one build time for every date written into a file.

The time is ``$SOURCE_DATE_EPOCH`` (https://reproducible-builds.org/specs/source-date-epoch/)
when set, else 2000-01-01 00:00 UTC. PDFs carry it as their creation date; ROOT files written
with uproot inside :func:`fixed_root_clock` carry it in every key and directory header instead
of the wall clock (uproot has no option for it).
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator

__all__ = ["build_time", "fixed_root_clock"]

_DEFAULT = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)


def build_time() -> datetime.datetime:
    """``$SOURCE_DATE_EPOCH`` as an aware UTC datetime, else 2000-01-01 00:00 UTC."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is None or not epoch.strip():
        return _DEFAULT
    try:
        return datetime.datetime.fromtimestamp(int(epoch), tz=datetime.UTC)
    except ValueError:
        raise ValueError(f"SOURCE_DATE_EPOCH={epoch!r} is not a number of seconds") from None


@contextlib.contextmanager
def fixed_root_clock() -> Iterator[None]:
    """Within the block, uproot stamps written ROOT files with :func:`build_time` (through
    :func:`brewflow.uproot_private.fixed_clock`, uproot having no option for it)."""
    from brewflow.uproot_private import fixed_clock

    stamp = build_time().replace(tzinfo=None)
    if stamp.year < 1995:  # the ROOT date format starts in 1995
        stamp = _DEFAULT.replace(tzinfo=None)
    with fixed_clock(stamp):
        yield
