"""System messages that the runtime puts in mailboxes."""

from __future__ import annotations

from typing import Any

import attrs

from ._ids import Pid, Ref

__all__ = ["Down", "ExitSignal", "ProcessInfo"]


@attrs.frozen
class ExitSignal:
    """A trapped exit signal, delivered as a message to a process that traps exits.

    Attributes:
        pid: the linked process that exited, or the sender of ``send_exit``.
        reason: the exit reason.
    """

    pid: Pid
    reason: Any


@attrs.frozen
class Down:
    """The message a monitor delivers when its target exits.

    Attributes:
        ref: the reference ``monitor`` returned.
        pid: what was monitored: the ``Pid`` when a pid was monitored, the
            ``(name, node)`` tuple when a registered name was.
        reason: the target's exit reason; ``"noproc"`` when it did not exist,
            ``"noconnection"`` when its node could not be reached.
    """

    ref: Ref
    pid: Any
    reason: Any


@attrs.frozen
class ProcessInfo:
    """A snapshot of a process, as returned by ``process_info``.

    Attributes:
        pid: the process.
        name: its registered name, or ``None``.
        status: ``"running"``, ``"waiting"`` (blocked in ``receive``) or ``"exiting"``.
        message_queue_len: messages waiting in its mailbox.
        links: the pids it is linked to.
        monitors: the references of the monitors it holds.
        monitored_by: the pids of the processes monitoring it.
        trap_exits: whether it traps exits.
        function: the qualified name of the function it runs.
        max_mailbox: its mailbox bound, or ``None``.
        reductions: how many times it has called ``receive``, a work counter
            (as BEAM's reductions: it tells busy processes from idle ones).
        memory: an estimate of the bytes it holds (its record, its mailbox
            and tables, its task; see ``Process.memory`` in lowlevel).
    """

    pid: Pid
    name: str | None
    status: str
    message_queue_len: int
    links: tuple[Pid, ...]
    monitors: tuple[Ref, ...]
    monitored_by: tuple[Pid, ...]
    trap_exits: bool
    function: str
    max_mailbox: int | None = None
    reductions: int = 0
    memory: int = 0
