"""The ``beamlet`` command: argument parsing, and errors as one line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from ._errors import EXIT_FAILURE, EXIT_USAGE, CliError

__all__ = ["main"]

#: The status when stdout's reader went away (128 + SIGPIPE, as a shell reports a
#: command that SIGPIPE ended).
EXIT_BROKEN_PIPE = 141


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error on one line (no usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"beamlet: error: {message} (see '{self.prog} --help')\n")


def _parser() -> argparse.ArgumentParser:
    from . import _demo, _inspect, _run

    parser = _Parser(
        prog="beamlet",
        description="beamlet: a BEAM-style actor runtime for Python. Run a demo cluster, "
        "a supervision tree as a service, or look at a live node.",
    )
    parser.add_argument("--version", action="version", version=f"beamlet {_version()}")
    subparsers = parser.add_subparsers(metavar="COMMAND", parser_class=_Parser)
    _demo.add_parser(subparsers)
    _run.add_parser(subparsers)
    _inspect.add_parsers(subparsers)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("beamlet")
    except PackageNotFoundError:
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``beamlet`` command with ``argv`` (default: ``sys.argv[1:]``); return its status.

    Errors a user can act on (no such node, a wrong cookie, a port in use, a
    module that is not found, bad options) are printed as one line on
    stderr, with a non-zero status, never as a traceback. Set
    ``BEAMLET_DEBUG=1`` to see the traceback of an unexpected error.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    command: Any = getattr(args, "command", None)
    if command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        status: int = command(args)
        sys.stdout.flush()  # a reader that went away shows here, not at exit
        return status
    except BrokenPipeError:
        # `beamlet top --once | head`: the reader has what it wanted; nothing to report.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # what is still buffered goes nowhere
        return EXIT_BROKEN_PIPE
    except CliError as exc:
        print(f"beamlet: error: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if os.environ.get("BEAMLET_DEBUG"):
            raise
        message = str(exc).splitlines()[0] if str(exc) else ""
        print(
            f"beamlet: error: {type(exc).__name__}: {message} (BEAMLET_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return EXIT_FAILURE
