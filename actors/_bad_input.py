"""Reporting bad input to a long-lived process, without flooding the log.

A system process (the rpc server, a pg scope, a supervisor, an app's server)
checks everything it receives: it answers a malformed request with an error
and drops a malformed message, and says so in the log, at most once per
``period`` seconds (with the number dropped meanwhile), so that a sender that
floods it with junk cannot flood the log too. Only a short ``repr`` of the
input is logged, made so that it never raises.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

__all__ = ["BAD_INPUT_LOG_PERIOD", "BadInputLog", "short_repr"]

#: Seconds between two log lines about the bad input of one process.
BAD_INPUT_LOG_PERIOD = 10.0

_QUOTE_LIMIT = 80


def short_repr(value: object, limit: int = _QUOTE_LIMIT) -> str:
    """``repr(value)`` cut to ``limit`` characters; never raises.

    For quoting input that may be large or hostile in a message: a ``repr``
    that raises (an int too long to print, a broken ``__repr__``) gives
    ``<unrepresentable TYPE>`` instead.
    """
    try:
        text = repr(value)
    except Exception:
        text = f"<unrepresentable {type(value).__name__}>"
    if len(text) > limit:
        return text[: max(limit - 3, 2)] + "..."
    return text


class BadInputLog:
    """Logs the bad input of one process, at most one line per ``period``.

    Example::

        class Server(GenServer):
            async def init(self):
                self.bad_input = BadInputLog("my_server", logging.getLogger("mylib"))

            async def handle_info(self, msg):
                self.bad_input.report("message", msg, "unexpected")

    Args:
        service: who is reporting (its registered name), for the log line.
        logger: where to log (default: the ``beamlet`` logger).
        level: the level of the lines (default WARNING).
        period: seconds between two lines; the reports in between are counted
            and the count is given with the next line.
    """

    __slots__ = ("_last", "_suppressed", "level", "logger", "period", "service")

    def __init__(
        self,
        service: str,
        logger: logging.Logger | None = None,
        *,
        level: int = logging.WARNING,
        period: float = BAD_INPUT_LOG_PERIOD,
    ) -> None:
        self.service = service
        self.logger = logger if logger is not None else logging.getLogger("beamlet")
        self.level = level
        self.period = period
        self._last: float | None = None
        self._suppressed = 0

    def report(self, kind: str, value: Any, why: str = "malformed") -> bool:
        """Report that a ``kind`` (call, cast, message) was refused as ``why``.

        Returns:
            True if a line was logged, False if it was only counted.
        """
        now = trio.current_time()
        if self._last is not None and now - self._last < self.period:
            self._suppressed += 1
            return False
        self._last = now
        more = f" ({self._suppressed} more since the last report)" if self._suppressed else ""
        self._suppressed = 0
        self.logger.log(
            self.level,
            "%s refused %s %s: %s%s",
            self.service,
            "an" if why[:1] in "aeiou" else "a",
            f"{why} {kind}",
            short_repr(value),
            more,
            extra={"beamlet_service": self.service, "beamlet_bad_input": kind},
        )
        return True
