"""The base of every error brewflow reports to a user.

An error of this family says what failed (file, dataset, config key) and what to do, in its
message; the ``brewflow`` command prints that message on one line and exits with 2. Anything
else is a bug, reported as "unexpected" with exit 1.
"""

from __future__ import annotations

__all__ = ["BrewflowError"]


class BrewflowError(Exception):
    """A problem of the input, the config or the environment, named in the message."""
