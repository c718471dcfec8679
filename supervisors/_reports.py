"""Supervisor reports, through stdlib ``logging`` (logger ``"beamlet.supervisor"``).

Each record carries structured fields in ``extra``:

- ``beamlet_report``: ``"progress"`` (a child started), ``"restarted"``,
  ``"child_terminated"``, ``"start_error"``, ``"shutdown_error"`` or
  ``"reached_max_restart_intensity"``;
- ``beamlet_supervisor`` / ``beamlet_supervisor_name``: the supervisor's pid and name;
- ``beamlet_child_id``, ``beamlet_pid``, ``beamlet_reason``: the child and why;
- ``beamlet_max_restarts``, ``beamlet_max_seconds`` (``reached_max_restart_intensity``
  only): the intensity that was exceeded.

Levels: progress and restarts are INFO; the others are ERROR, as in OTP.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Any

from beamlet.actors import Pid
from beamlet.actors.lowlevel import BadInputLog

__all__ = ["Reporter", "logger"]

logger = logging.getLogger("beamlet.supervisor")

_MESSAGES = {
    "progress": "supervisor %s started child %r as %r",
    "restarted": "supervisor %s restarted child %r as %r",
    "child_terminated": "supervisor %s: child %r (%r) terminated with reason %r",
    "start_error": "supervisor %s: child %r failed to start: %r",
    "shutdown_error": "supervisor %s: child %r (%r) shut down with reason %r",
    "reached_max_restart_intensity": (
        "supervisor %s gave up (reached_max_restart_intensity: more than %d restarts in %g s); "
        "the last failure: child %r (%r) exited with reason %r; "
        "shutting its children down and exiting with reason 'shutdown'"
    ),
}

#: ``start_error`` when the child ran before (a restart): which pid it had.
_RESTART_ERROR = "supervisor %s: child %r (was %r) failed to start again: %r"


class Reporter:
    """Writes the reports of one supervisor."""

    __slots__ = ("_bad_input", "label", "name", "pid")

    def __init__(self, pid: Pid, name: str | None) -> None:
        self.pid = pid
        self.name = name
        self.label = f"{name} ({pid!r})" if name else repr(pid)
        self._bad_input: BadInputLog | None = None

    def bad_input(self, kind: str, value: Any, why: str = "malformed") -> None:
        """A malformed call or an unexpected message was refused (ERROR, rate-limited)."""
        if self._bad_input is None:
            self._bad_input = BadInputLog(f"supervisor {self.label}", logger, level=logging.ERROR)
        self._bad_input.report(kind, value, why)

    def _log(
        self,
        level: int,
        kind: str,
        child_id: Hashable,
        pid: Any,
        reason: Any,
        *shown: Any,
        message: str | None = None,
        **extra: Any,
    ) -> None:
        if not logger.isEnabledFor(level):
            return
        logger.log(
            level,
            _MESSAGES[kind] if message is None else message,
            self.label,
            *shown,
            extra={
                "beamlet_report": kind,
                "beamlet_supervisor": self.pid,
                "beamlet_supervisor_name": self.name,
                "beamlet_child_id": child_id,
                "beamlet_pid": pid,
                "beamlet_reason": reason,
                **extra,
            },
        )

    def started(self, child_id: Hashable, pid: Pid) -> None:
        """A child started (progress report)."""
        self._log(logging.INFO, "progress", child_id, pid, None, child_id, pid)

    def restarted(self, child_id: Hashable, pid: Pid) -> None:
        """A child was restarted as ``pid``."""
        self._log(logging.INFO, "restarted", child_id, pid, None, child_id, pid)

    def child_terminated(self, child_id: Hashable, pid: Pid | None, reason: Any) -> None:
        """A child exited on its own with ``reason`` (S7)."""
        self._log(logging.ERROR, "child_terminated", child_id, pid, reason, child_id, pid, reason)

    def start_error(self, child_id: Hashable, pid: Pid | None, reason: Any) -> None:
        """Starting (or restarting) a child failed; ``pid``: the one it had before, if any."""
        if pid is None:
            self._log(logging.ERROR, "start_error", child_id, pid, reason, child_id, reason)
        else:
            self._log(
                logging.ERROR,
                "start_error",
                child_id,
                pid,
                reason,
                child_id,
                pid,
                reason,
                message=_RESTART_ERROR,
            )

    def shutdown_error(self, child_id: Hashable, pid: Pid, reason: Any) -> None:
        """A child stopped with another reason than the shutdown asked for (S18)."""
        self._log(logging.ERROR, "shutdown_error", child_id, pid, reason, child_id, pid, reason)

    def escalated(
        self,
        child_id: Hashable,
        pid: Pid | None,
        reason: Any,
        max_restarts: int,
        max_seconds: float,
    ) -> None:
        """The restart intensity is exceeded: the supervisor gives up (S14).

        The record also carries ``beamlet_max_restarts`` and ``beamlet_max_seconds``.
        """
        self._log(
            logging.ERROR,
            "reached_max_restart_intensity",
            child_id,
            pid,
            reason,
            max_restarts,
            max_seconds,
            child_id,
            pid,
            reason,
            beamlet_max_restarts=max_restarts,
            beamlet_max_seconds=max_seconds,
        )
