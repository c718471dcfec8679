"""The watchdog: says which process is blocking the event loop.

Python cannot preempt a process that computes without awaiting. The watchdog
at least names it. A small daemon thread pings the Trio loop with
``TrioToken.run_sync_soon`` every ``threshold / 4`` seconds (``PING_DIVISOR``).
While a ping is unanswered, the thread looks at the loop thread's stack every
``threshold / 4`` seconds for the process running there; when the same process
has been found at every look for ``threshold`` seconds, the loop is stuck in one
step of it. (A loop merely busy with many short steps shows different
processes, or none, from one look to the next, and is not blamed.) It logs the
process's pid, name and function (and the stack) while the step is still
running, so even a process that never yields again is reported, and logs again
with the total when the step ends. So a step is reported between ``threshold``
and ``1.25 * threshold`` seconds after it began (plus the delays of thread
scheduling). It costs the loop one
callback per ping and nothing per step.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from types import FrameType
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from ._node import Node
    from ._process import Process

__all__ = ["PING_DIVISOR", "Watchdog"]

#: The watchdog pings the loop, and looks at its stack, every ``threshold / PING_DIVISOR``.
PING_DIVISOR = 4

logger = logging.getLogger("beamlet.watchdog")


class Watchdog:
    """Watches one node's event loop. Start with ``start()``, stop with ``stop()``."""

    def __init__(self, node: Node, threshold: float) -> None:
        self.node = node
        self.threshold = threshold
        self._token = trio.lowlevel.current_trio_token()
        self._loop_thread = threading.get_ident()
        self._stop = threading.Event()
        self._answered = threading.Event()
        self._thread = threading.Thread(
            target=self._watch, name=f"beamlet-watchdog-{node.name}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        from ._process import Process

        code = Process.main.__code__
        interval = self.threshold / PING_DIVISOR
        while not self._stop.wait(interval):
            self._answered.clear()
            try:
                self._token.run_sync_soon(self._answered.set)
            except trio.RunFinishedError:
                return
            started = time.monotonic()
            # Sample the loop thread's stack while the ping is unanswered. Only
            # a process seen at every sample for a whole threshold is blamed:
            # a loop that is merely busy with many short steps shows different
            # processes (or none) from one sample to the next.
            suspect: Process | None = None
            stack = ""
            while not self._answered.wait(interval):
                if self._stop.is_set():
                    return
                proc, stack = self._culprit(code)
                if proc is None or (suspect is not None and proc is not suspect):
                    suspect = None
                    started = time.monotonic()
                    continue
                suspect = proc
                if time.monotonic() - started >= self.threshold:
                    break
            else:
                continue
            self._report(suspect, started, stack, interval)

    def _report(self, proc: Process, started: float, stack: str, interval: float) -> None:
        extra = {
            "beamlet_pid": proc.pid,
            "beamlet_name": proc.name,
            "beamlet_function": proc.function_name,
        }
        label = f"{proc.pid!r}{f' ({proc.name})' if proc.name else ''} running {proc.function_name}"
        logger.warning(
            "process %s has blocked the event loop for more than %.3f s, in:\n%s",
            label,
            self.threshold,
            stack,
            extra=extra,
        )
        while not self._answered.wait(interval):
            if self._stop.is_set():
                return
        logger.warning(
            "process %s blocked the event loop for %.3f s",
            label,
            time.monotonic() - started,
            extra={**extra, "beamlet_blocked_seconds": time.monotonic() - started},
        )

    def _culprit(self, code: object) -> tuple[Process | None, str]:
        frame: FrameType | None = sys._current_frames().get(self._loop_thread)
        top = frame
        while frame is not None:
            if frame.f_code is code:
                proc = frame.f_locals.get("self")
                if proc is not None and getattr(proc, "node", None) is self.node:
                    stack = "".join(traceback.format_stack(top, limit=12))
                    return proc, stack
                return None, ""
            frame = frame.f_back
        return None, ""
