"""Stopping children: the shutdown protocol (S18) and its parallel form (S23).

For each child, in the supervisor's own process:

1. **monitor** it (a monitor, not the link, so that a child that unlinked
   itself cannot hang the supervisor: test ``child_unlink``), **unlink** it,
   and take a queued ``ExitSignal`` from it if it had already exited;
2. send the exit signal: ``"kill"`` for ``"brutal_kill"``, else ``"shutdown"``;
3. wait for its ``Down``: ``shutdown`` seconds (then ``"kill"`` and wait
   again), or forever for ``"infinity"``.

``shutdown_children`` does this for many children at once: every signal goes
out first, one deadline per distinct shutdown value, and the children still
alive when a deadline passes are killed, so stopping N children takes about
the longest shutdown, not the sum. A static supervisor calls it with one
child at a time, in reverse start order (S17); a dynamic one with all (S23).

The exit reasons accepted as clean (anything else is a ``shutdown_error``):
``"shutdown"``, or ``"killed"`` after ``"brutal_kill"``; and for transient
and temporary children also ``"normal"`` and ``("shutdown", detail)``. A child
killed because it outlived its shutdown time is a ``shutdown_error`` with
reason ``"killed"``, as in OTP.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Protocol, TypeVar

import trio
from beamlet.actors import (
    Down,
    ExitSignal,
    Pid,
    ReceiveTimeoutError,
    Ref,
    demonitor,
    monitor,
    receive,
    send_exit,
    unlink,
)
from beamlet.actors.lowlevel import is_clean_exit

from ._spec import Restart, Shutdown

__all__ = ["Stoppable", "is_clean_shutdown", "shutdown_children", "take_exits"]


class Stoppable(Protocol):
    """What the shutdown protocol needs to know about a child."""

    @property
    def restart(self) -> Restart: ...

    @property
    def shutdown(self) -> Shutdown: ...


C = TypeVar("C", bound=Stoppable)


def is_clean_shutdown(reason: object, *, restart: Restart, shutdown: Shutdown) -> bool:
    """Whether ``reason`` is an expected outcome of shutting a child down (S18)."""
    if type(reason) is str:
        if shutdown == "brutal_kill":
            if reason == "killed":
                return True
        elif reason == "shutdown":
            return True
    return restart != "permanent" and is_clean_exit(reason)


async def take_exits(pids: Collection[Pid]) -> dict[Pid, Any]:
    """Remove the queued ``ExitSignal`` messages from ``pids``; return their reasons.

    Never waits. Call it after unlinking ``pids``: no new one can arrive then.
    """

    def match(msg: object) -> bool:
        return type(msg) is ExitSignal and msg.pid in pids

    reasons: dict[Pid, Any] = {}
    while True:
        try:
            msg: ExitSignal = await receive(match, timeout=0)
        except ReceiveTimeoutError:
            return reasons
        reasons[msg.pid] = msg.reason


async def shutdown_children(children: Sequence[tuple[Pid, C]]) -> list[tuple[Pid, C, Any]]:
    """Stop ``children`` (pairs of pid and spec) at once; return the shutdown errors.

    Must run in the supervisor process (the children's link partner). Each
    child's ``ExitSignal`` is removed from the mailbox, so its exit does not
    look like a crash afterwards.

    Returns:
        ``(pid, spec, reason)`` for every child whose exit reason was not a
        clean shutdown for it.

    Cancellation:
        A checkpoint; if cancelled, the children not yet down are left with
        their exit signal sent and are no longer linked.
    """
    refs = []
    for pid, _child in children:
        # A child that is already exiting is reported with its real reason
        # once its exit is complete.
        refs.append(monitor(pid))
        unlink(pid)
    # An exit signal queued before the unlink means the child had already exited.
    early = await take_exits({pid for pid, _child in children})
    pending: dict[Ref, tuple[Pid, C]] = {}
    deadlines: dict[float, list[Ref]] = {}
    errors: list[tuple[Pid, C, Any]] = []
    for ref, (pid, child) in zip(refs, children, strict=True):
        if pid in early:
            demonitor(ref, flush=True)
            reason = early[pid]
            if not is_clean_shutdown(reason, restart=child.restart, shutdown=child.shutdown):
                errors.append((pid, child, reason))
            continue
        shutdown = child.shutdown
        if shutdown == "brutal_kill":
            send_exit(pid, "kill")
        else:
            send_exit(pid, "shutdown")
            if shutdown != "infinity":
                deadlines.setdefault(float(shutdown), []).append(ref)
        pending[ref] = (pid, child)
    started = trio.current_time()
    waits = sorted(deadlines)

    def is_down(msg: object) -> bool:
        return type(msg) is Down and msg.ref in pending

    while pending:
        timeout = None
        if waits:
            timeout = max(0.0, started + waits[0] - trio.current_time())
        try:
            down: Down = await receive(is_down, timeout=timeout)
        except ReceiveTimeoutError:
            for ref in deadlines.pop(waits.pop(0)):
                late = pending.get(ref)
                if late is not None:
                    send_exit(late[0], "kill")
            continue
        pid, child = pending.pop(down.ref)
        if not is_clean_shutdown(down.reason, restart=child.restart, shutdown=child.shutdown):
            errors.append((pid, child, down.reason))
    return errors
