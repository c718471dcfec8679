"""The mailbox watch: a node-wide warning when a mailbox grows past a threshold.

A process that receives faster than it reads grows its mailbox without
bound (5 million unread messages took 510 MB). ``max_mailbox`` kills such a
process; the watch only says so, for every process: once a second (of real
time) the node looks at the length of each mailbox (a few thousand at a
time, letting the other tasks run in between), and logs a warning for those
over ``mailbox_warning`` messages. It is rate-limited: at most one line a minute
per process, and at most ``MAX_LINES`` lines per look, then one line that
counts the others. Checking at delivery instead would cost every message
sent; a look per second costs about 0.1 us per process.

``MailboxWarnings`` decides what to log (pure: the caller passes ``now``);
``watch_mailboxes`` is the node's task that feeds it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

import attrs
import trio

if TYPE_CHECKING:
    from ._node import Node
    from ._process import Process

__all__ = [
    "DEFAULT_MAILBOX_WARNING",
    "INTERVAL",
    "MAX_LINES",
    "REPEAT_AFTER",
    "MailboxWarnings",
    "watch_mailboxes",
]

logger = logging.getLogger("beamlet")

#: The default of ``open_node(mailbox_warning=...)``: messages in one mailbox.
DEFAULT_MAILBOX_WARNING = 100_000
#: Seconds between two looks at the mailboxes.
INTERVAL = 1.0
#: Seconds before a process is warned about again.
REPEAT_AFTER = 60.0
#: Lines logged per look at most; the others are counted in one more line.
MAX_LINES = 10
#: Processes looked at between two checkpoints.
CHUNK = 4096


@attrs.frozen
class Long:
    """A process whose mailbox is over the threshold, to warn about."""

    process: Process
    length: int


@attrs.define
class MailboxWarnings:
    """Which long mailboxes to warn about, and when.

    Attributes:
        threshold: warn about a mailbox of more messages than this.
    """

    threshold: int
    _last: dict[int, float] = attrs.field(factory=dict)  # process id -> when warned

    def look(self, found: Iterable[tuple[Process, int]], now: float) -> tuple[list[Long], int]:
        """Given the processes over the threshold and their mailbox lengths,
        return those to warn about now, and how many more are over it.

        A process is warned about at most once every ``REPEAT_AFTER`` seconds,
        and at most ``MAX_LINES`` are returned, the longest mailboxes first.
        Processes no longer over the threshold are forgotten.
        """
        due = []
        seen: dict[int, float] = {}
        for proc, length in found:
            key = proc.pid.id
            last = self._last.get(key)
            if last is not None and now - last < REPEAT_AFTER:
                seen[key] = last
                continue
            due.append(Long(proc, length))
        due.sort(key=lambda long: -long.length)
        for long in due[:MAX_LINES]:
            seen[long.process.pid.id] = now
        self._last = seen
        return due[:MAX_LINES], max(0, len(due) - MAX_LINES)


async def watch_mailboxes(node: Node, threshold: int) -> None:
    """The node's task: look at every mailbox each ``INTERVAL`` seconds; warn.

    The interval is waited in real time, in a thread of its own (that does
    nothing else), not on Trio's clock: a node run with a clock that jumps
    ahead whenever the program is idle (``MockClock``, in tests) would
    otherwise wake up for every second it skips, and never get to the end of
    a long virtual sleep.
    """
    warnings = MailboxWarnings(threshold)
    limiter = trio.CapacityLimiter(1)  # not one of the default limiter's threads
    while True:
        await trio.to_thread.run_sync(time.sleep, INTERVAL, abandon_on_cancel=True, limiter=limiter)
        found = []
        processes = list(node._procs.values())
        for start in range(0, len(processes), CHUNK):
            if start:
                await trio.lowlevel.checkpoint()
            for proc in processes[start : start + CHUNK]:
                mailbox = proc.mailbox
                if mailbox is not None and len(mailbox) > threshold:
                    found.append((proc, len(mailbox)))
        lines, more = warnings.look(found, trio.current_time())
        for long in lines:
            proc = long.process
            logger.warning(
                "process %r%s running %s has %d messages in its mailbox (over mailbox_warning=%d)",
                proc.pid,
                f" ({proc.name})" if proc.name else "",
                proc.function_name,
                long.length,
                threshold,
                extra={
                    "beamlet_pid": proc.pid,
                    "beamlet_name": proc.name,
                    "beamlet_function": proc.function_name,
                    "beamlet_message_queue_len": long.length,
                },
            )
        if more:
            logger.warning(
                "%d more processes have more than %d messages in their mailboxes",
                more,
                threshold,
            )
