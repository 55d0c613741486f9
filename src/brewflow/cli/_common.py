"""What the command groups share: registering a command, reading a config, loading results."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

Handler = Callable[[argparse.Namespace], None]


def command(sub: Any, name: str, func: Handler, help: str) -> argparse.ArgumentParser:
    """Add the subcommand ``name`` running ``func(args)``."""
    p = sub.add_parser(name, help=help, description=help)
    p.set_defaults(func=func)
    return p


def config(path: str) -> dict:
    """The validated config at ``path``."""
    from brewflow.config import load_config

    return load_config(path)


def results(paths: Sequence[str]) -> list:
    """The result files at ``paths``, read and checked."""
    from brewflow.results.model import load

    return [load(p) for p in paths]
