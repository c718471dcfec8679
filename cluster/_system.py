"""What the system processes (rpc, pg scopes, discovery) share: reporting bad input.

A system process checks everything it receives; a malformed request gets an
error reply and a malformed message is dropped, and either is logged, at
most once per ``BAD_INPUT_LOG_PERIOD`` seconds per process (with the number
dropped meanwhile), so that a peer that floods a service with junk cannot
flood the log too. Nothing of the input is logged but a short ``repr``.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from ._errors import short_repr

__all__ = ["BAD_INPUT_LOG_PERIOD", "BadInputLog", "bad_request"]

logger = logging.getLogger("beamlet.cluster")

#: Seconds between two log lines about bad input to one system process.
BAD_INPUT_LOG_PERIOD = 10.0


class BadInputLog:
    """Logs the bad input of one system process, rate-limited.

    Args:
        service: the process's registered name, for the log line.
        period: seconds between two log lines.
    """

    __slots__ = ("_last", "_suppressed", "period", "service")

    def __init__(self, service: str, period: float = BAD_INPUT_LOG_PERIOD) -> None:
        self.service = service
        self.period = period
        self._last: float | None = None
        self._suppressed = 0

    def report(self, kind: str, value: Any, why: str = "malformed") -> None:
        """Log that a ``kind`` (call, cast, message) was refused, unless one was lately."""
        now = trio.current_time()
        if self._last is not None and now - self._last < self.period:
            self._suppressed += 1
            return
        self._last = now
        more = f" ({self._suppressed} more since the last report)" if self._suppressed else ""
        self._suppressed = 0
        logger.warning(
            "%s refused a %s %s: %s%s",
            self.service,
            why,
            kind,
            short_repr(value),
            more,
            extra={"beamlet_service": self.service},
        )


def bad_request(value: Any) -> tuple[str, tuple[str, str]]:
    """The error reply to a malformed call: ``("error", ("bad_request", short repr))``."""
    return ("error", ("bad_request", short_repr(value)))
