"""The ``brewflow`` command line: one subcommand per workflow stage (each rule calls one).

Commands are grouped by what they do: :mod:`.steps` (the jobs of a run), :mod:`.reports` (its
outputs) and :mod:`.tools` (checks and helpers). A handler parses nothing and decides nothing:
it calls one library function. Modules import the library inside handlers, so ``brewflow
--help`` and each command start without loading the array stack. Everything the command
says (log lines, error messages) has the credentials of its URLs redacted
(:mod:`brewflow.secrets`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from brewflow import __version__
from brewflow.cli import reports, steps, tools
from brewflow.secrets import RedactingFormatter, redact

__all__ = ["main"]


def parser() -> argparse.ArgumentParser:
    """The ``brewflow`` argument parser, every command registered."""
    top = argparse.ArgumentParser(prog="brewflow", description=__doc__.split("\n\n")[0])
    top.add_argument("--version", action="version", version=f"brewflow {__version__}")
    top.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    top.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (tools, steps, reports):
        group.register(sub)
    return top


def _os_error(err: OSError, args: argparse.Namespace) -> str:
    """One line for an operating-system error, naming the path (the command's output when the
    error does not carry one, as for a full disk) and what to check."""
    import errno

    path = err.filename or next(
        (str(getattr(args, k)) for k in ("output", "outdir") if getattr(args, k, None)), None
    )
    where = f" {path!r}" if path else ""
    if isinstance(err, ConnectionError | TimeoutError):
        return f"network error{where}: {err}; check that the server is up and reachable"
    if err.errno == errno.ENOSPC:
        return f"cannot write{where}: no space left on the device; free some space and rerun"
    return (
        f"cannot access{where}: {err.strerror or err}; check that the path exists and is writable"
    )


def log_handler() -> logging.Handler:
    """Where the command's log goes: a rich display on a terminal, else (the log files of
    workflow jobs) one plain line per message; either way, credentials redacted."""
    if sys.stderr.isatty():
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(show_path=False)
        handler.setFormatter(RedactingFormatter("%(message)s"))
        return handler
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    return handler


def _redacted_traceback(kind: type[BaseException], error: BaseException, tb: Any) -> None:
    import traceback

    print(redact("".join(traceback.format_exception(kind, error, tb))), end="", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``brewflow`` command: a :class:`~brewflow.errors.BrewflowError` is
    one line and exit 2; anything else is unexpected (exit 1; ``--debug`` for a traceback)."""
    from brewflow.errors import BrewflowError

    args = parser().parse_args(argv)
    if args.debug:  # the traceback of an error raised out of main(), credentials redacted
        sys.excepthook = _redacted_traceback
    level = logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(level=level, handlers=[log_handler()])
    try:
        args.func(args)
    except BrewflowError as err:  # says what failed and what to do
        if args.debug:
            raise
        print(f"brewflow {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        return 0
    except KeyboardInterrupt:  # Ctrl-C: the user's own stop, not an error to trace back
        if args.debug:
            raise
        print(f"brewflow {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as err:  # e.g. an output folder that is not writable, a full disk
        if args.debug:
            raise
        print(redact(f"brewflow {args.command}: error: {_os_error(err, args)}"), file=sys.stderr)
        return 2
    except Exception as err:  # one line, not a traceback, unless --debug
        if args.debug:
            raise
        print(
            redact(f"brewflow {args.command}: error: {type(err).__name__}: {err}\n")
            + f"(unexpected; `brewflow --debug {args.command} ...` shows the traceback)",
            file=sys.stderr,
        )
        return 1
    return 0
