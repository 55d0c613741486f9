"""The base of every error brewflow reports to a user.

An error of this family says what failed (file, dataset, config key) and what to do, in its
message; the ``brewflow`` command prints that message on one line and exits with 2. Anything
else is a bug, reported as "unexpected" with exit 1. A message never holds a credential: the
user info and token parameters of every URL in it are redacted (:mod:`brewflow.secrets`) when
the error is made, so no log, ledger or report it reaches can hold them either.
"""

from __future__ import annotations

from typing import Any

from brewflow.secrets import redact

__all__ = ["BrewflowError", "ConfigError", "InputError"]


class BrewflowError(Exception):
    """A problem of the input, the config or the environment, named in the message (its
    credentials redacted)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*(redact(a) if isinstance(a, str) else a for a in args))


class ConfigError(BrewflowError, ValueError):
    """A configuration problem, reported with the offending key or file."""


class InputError(BrewflowError, RuntimeError):
    """An input file (or a brewflow file read back) that cannot be used, named with the reason
    and what to do."""
