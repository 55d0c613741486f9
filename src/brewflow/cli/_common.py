"""What the command groups share: registering a command, reading a config, loading results."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

Handler = Callable[[argparse.Namespace], None]


def command(sub: Any, name: str, func: Handler, help: str) -> argparse.ArgumentParser:
    """Add the subcommand ``name`` running ``func(args)``."""
    p = sub.add_parser(name, help=help, description=help)
    p.set_defaults(func=func)
    return p


def positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse ``type``: a number of ``kind`` (int, float) above 0, else argparse's usage
    error naming the option (a count or a step of 0 or -5 would read nothing sensible)."""
    return _bounded(kind, lambda value: value > 0, "is not above 0")


def non_negative(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse ``type``: a number of ``kind`` from 0 (an index, a seed, an interval)."""
    return _bounded(kind, lambda value: value >= 0, "is below 0")


def _bounded(
    kind: Callable[[str], Any], within: Callable[[Any], bool], outside: str
) -> Callable[[str], Any]:
    what = "an integer" if kind is int else "a number"

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not within(value):  # (nan is neither)
            raise argparse.ArgumentTypeError(f"{text} {outside}")
        return value

    parse.__name__ = what  # (argparse names the type by it)
    return parse


def config(path: str) -> dict:
    """The validated config at ``path``."""
    from brewflow.config import load_config

    return load_config(path)


HEALTH = ".brewflow/health"
"""Where a workflow's jobs share which replica servers failed (relative to the run's folder;
:class:`brewflow.nanoevents.remote.Health`)."""


def is_resolved(path: str) -> bool:
    """Whether ``path`` is the workflow's resolved config in the working directory: the job
    runs for the workflow, whose plan (spec files) it must match."""
    from pathlib import Path

    from brewflow.pipeline import RESOLVED

    return Path(path).resolve() == Path(RESOLVED).resolve()


@contextlib.contextmanager
def job(path: str, kind: str, name: str | None = None, **params: Any) -> Iterator[Mapping]:
    """The ``kind`` job with ``params`` of the config at ``path``: its view of the config (its
    spec, :mod:`brewflow.config.specs`), the body run :func:`~brewflow.jobs.guard.guarded`
    (``name``: its record of a configuration failure, default its spec's name)."""
    from brewflow.config import load_config
    from brewflow.config.specs import job_spec
    from brewflow.jobs.guard import guarded

    spec = job_spec(kind, load_config(path), **params)
    planned = is_resolved(path)
    with guarded(spec, name, planned=planned):
        view = spec.config()
        if planned and "remote" in view:  # a workflow's job: share what replicas answer
            from brewflow.nanoevents.remote import share_health

            share_health(HEALTH, view["remote"]["retry_after"])
        yield view


def results(paths: Sequence[str]) -> list:
    """The result files at ``paths``, read and checked."""
    from brewflow.results.model import load

    return [load(p) for p in paths]
