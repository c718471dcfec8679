"""The one error the command shows a user: a clear line and an exit status."""

from __future__ import annotations

__all__ = ["EXIT_FAILURE", "EXIT_USAGE", "CliError"]

#: Something failed (no such node, port in use, a tree that did not start...).
EXIT_FAILURE = 1

#: The command line itself is wrong (bad options, a malformed seed or name).
EXIT_USAGE = 2


class CliError(Exception):
    """A failure the user can act on: ``beamlet`` prints its message on one line.

    Attributes:
        status: the exit status (``EXIT_FAILURE`` or ``EXIT_USAGE``).
    """

    def __init__(self, message: str, status: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.status = status
