"""The few places where supervisors reach below ``beamlet.actors``' public API.

Kept in one module so that each can be replaced by a public hook:

- ``watch``: a monitor made on behalf of a given process.
- ``adopt_task`` / ``send_task_result``: ``beamlet.actors.Task`` can only be
  built by ``async_task``; a task started by a ``TaskSupervisor`` needs the
  same reply alias and monitor for an existing pid.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from beamlet.actors import ExitSignal, Pid, ReceiveTimeoutError, Ref, Task, receive
from beamlet.actors._context import current_node, current_process
from beamlet.actors._process import Process, Reply

__all__ = [
    "adopt_task",
    "current_node",
    "current_process",
    "send_task_result",
    "take_exits",
    "watch",
]


def watch(proc: Process, pid: Pid) -> Ref:
    """Monitor ``pid`` from ``proc``: a ``Down(ref, pid, reason)`` arrives when it has exited.

    A process that is already exiting is reported with its real reason once
    its exit is complete (its name released).
    """
    return proc.node.monitor(proc, pid)


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


def adopt_task(pid: Pid) -> Task:
    """A ``Task`` owned by the calling process for the existing process ``pid``.

    The task's result must be sent with ``send_task_result(owner, task.ref, value)``.
    """
    proc = current_process()
    node = proc.node
    ref = node.make_ref()
    if proc.aliases is None:
        proc.aliases = set()
    proc.aliases.add(ref)
    node.monitor(proc, pid, ref=ref)
    return Task(proc, pid, ref)


def send_task_result(owner: Pid, ref: Ref, value: Any) -> None:
    """Send a task's result to its owner (dropped unless the owner still waits for it)."""
    current_process().node.send(None, owner, Reply(ref, value))
