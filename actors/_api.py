"""The process API: spawn, send, receive, names, links, monitors, exits, timers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from ._context import _process, current_node, current_process
from ._errors import NotInProcessError
from ._ids import Pid, Ref
from ._messages import ProcessInfo
from ._registry import Via
from ._registry_state import via_process
from ._util import check_number, check_timeout

__all__ = [
    "cancel_timer",
    "demonitor",
    "link",
    "monitor",
    "process_info",
    "processes",
    "receive",
    "register",
    "registered",
    "self_pid",
    "send",
    "send_after",
    "send_exit",
    "set_max_mailbox",
    "spawn",
    "spawn_link",
    "spawn_monitor",
    "trap_exits",
    "unlink",
    "unregister",
    "whereis",
]


def spawn(
    fn: Callable[..., Awaitable[Any]],
    *args: Any,
    name: str | Via | None = None,
    link: bool = False,
    trap_exits: bool = False,
    max_mailbox: int | None = None,
) -> Pid:
    """Start ``fn(*args)`` as a new process on the current node.

    The process ends with reason ``"normal"`` when ``fn`` returns, with the
    exception when it raises (logged as a crash report), or with ``reason``
    when it raises ``Exit(reason)``.

    Args:
        fn: an async function.
        *args: its arguments.
        name: register the new process under this name, atomically; or a
            ``Registry.via`` name, which it holds in that registry.
        link: link it to the calling process, atomically.
        trap_exits: start it trapping exits.
        max_mailbox: bound its mailbox: when a message arrives that makes it
            hold more than this many, the process is killed with reason
            ``"mailbox_overflow"`` and an error is logged (Erlang's
            ``max_heap_size``, for the mailbox). ``None`` (the default): no
            bound. See ``set_max_mailbox``.

    Returns:
        The new process's pid. The process starts at the caller's next
        checkpoint; in a burst of spawns, the later ones start a few
        scheduling rounds later.

    Raises:
        TypeError: ``fn`` is not an async function, or ``name`` not a str.
        ValueError: ``max_mailbox`` is not an int >= 1 (``TypeError`` if not an int).
        NameTakenError: ``name`` is already registered (for a via name,
            ``AlreadyRegisteredError``, which names the holder).
        NotInProcessError: there is no current node (or, with ``link``, no current process).
    """
    proc = _process.get()
    if proc is not None:
        return proc.node.spawn_process(
            fn,
            args,
            name=name,
            link_to=proc if link else None,
            trap_exits=trap_exits,
            max_mailbox=max_mailbox,
        ).pid
    if link:
        raise NotInProcessError("spawn(link=True) needs a calling process")
    return (
        current_node()
        .spawn_process(fn, args, name=name, trap_exits=trap_exits, max_mailbox=max_mailbox)
        .pid
    )


def spawn_link(fn: Callable[..., Awaitable[Any]], *args: Any, **opts: Any) -> Pid:
    """``spawn`` linked to the calling process (the link is made atomically)."""
    return spawn(fn, *args, link=True, **opts)


def spawn_monitor(
    fn: Callable[..., Awaitable[Any]],
    *args: Any,
    name: str | Via | None = None,
    link: bool = False,
    trap_exits: bool = False,
    max_mailbox: int | None = None,
) -> tuple[Pid, Ref]:
    """``spawn`` and monitor the new process, atomically; return ``(pid, ref)``.

    Takes the options of ``spawn``.

    Raises:
        NotInProcessError: called outside a process.
    """
    proc = current_process()
    node = proc.node
    pid = node.spawn_process(
        fn,
        args,
        name=name,
        link_to=proc if link else None,
        trap_exits=trap_exits,
        max_mailbox=max_mailbox,
    ).pid
    return pid, node.monitor(proc, pid)


def self_pid() -> Pid:
    """The pid of the calling process.

    Raises:
        NotInProcessError: called outside a process.
    """
    return current_process().pid


def send(dest: Pid | str | tuple[str, str] | Via, msg: Any) -> None:
    """Send ``msg`` to ``dest``. Never blocks.

    Args:
        dest: a ``Pid``, a locally registered name, ``(name, node_name)``, or
            a ``Registry.via`` name (looked up at the moment of the send).
        msg: any value. Locally it is passed by reference: do not mutate it.

    Sending to a dead pid, or to a ``(name, node)`` that does not exist, drops
    the message silently. Messages from one sender to one receiver arrive in
    the order they were sent.

    Raises:
        NoSuchNameError: ``dest`` is a local name that is not registered, or a
            via name nobody holds (``UnknownRegistryError`` if its registry is
            not running).
        TypeError: ``dest`` is not a valid destination.
    """
    proc = _process.get()
    if proc is not None:
        proc.node.send(proc.pid, dest, msg)
    else:
        current_node().send(None, dest, msg)


def receive(
    match: Callable[[Any], Any] | None = None, *, timeout: float | None = None
) -> Coroutine[Any, Any, Any]:
    """Take the oldest message for which ``match(msg)`` is true from the mailbox.

    Use it as ``msg = await receive(...)``. (It returns the coroutine of the
    process's own receive, so that a waiting process holds one frame less.)

    Messages that do not match stay in the mailbox, in order. While waiting,
    the process is woken only by a new message that matches.

    Args:
        match: a predicate; ``None`` takes any message. It must not have side
            effects: it may run in the sender's context.
        timeout: seconds to wait; ``0`` only checks the mailbox; ``None`` waits forever.

    Returns:
        The message.

    Raises:
        ReceiveTimeoutError: no matching message arrived within ``timeout``.
        NotInProcessError: called outside a process.

    Cancellation:
        A checkpoint. The message is never lost to a cancellation: a message
        is taken only by a receive that returns it.
    """
    if timeout is not None:
        check_timeout(timeout)
    proc = _process.get()
    if proc is None:
        raise NotInProcessError("receive() must be called from inside a beamlet process")
    return proc.receive(match, timeout)


def register(name: str, pid: Pid | None = None) -> None:
    """Register ``pid`` (default: the calling process) under ``name`` on this node.

    Raises:
        NameTakenError: the name is taken, or the process already has a name.
        NoProcError: the process is not alive.
        TypeError / ValueError: the name is not a non-empty str, or the pid is not local.
    """
    node = current_node()
    node.register(name, pid if pid is not None else self_pid())


def unregister(name: str) -> None:
    """Remove the registered name ``name``.

    Raises:
        NoSuchNameError: no process is registered under it.
    """
    current_node().unregister(name)


def whereis(name: str | Via) -> Pid | None:
    """The pid registered under ``name`` on this node (or holding a via name), or None.

    Raises:
        UnknownRegistryError: ``name`` is a via name whose registry is not running.
    """
    node = current_node()
    if type(name) is Via:
        proc = via_process(node, name)
        return proc.pid if proc is not None else None
    return node.whereis(name)  # type: ignore[arg-type]


def registered() -> list[str]:
    """The names registered on this node."""
    return current_node().registered()


def link(pid: Pid) -> None:
    """Link the calling process to ``pid`` (both ways; at most one link per pair).

    Raises:
        NoProcError: ``pid`` is a local process that does not exist and the
            caller does not trap exits (a trapping caller gets
            ``ExitSignal(pid, "noproc")`` instead).
    """
    if not isinstance(pid, Pid):
        raise TypeError(f"link() needs a Pid, not {pid!r}")
    proc = current_process()
    proc.node.link(proc, pid)


def unlink(pid: Pid) -> None:
    """Remove the link between the calling process and ``pid``, if any."""
    if not isinstance(pid, Pid):
        raise TypeError(f"unlink() needs a Pid, not {pid!r}")
    proc = current_process()
    proc.node.unlink(proc, pid)


def monitor(dest: Pid | str | tuple[str, str] | Via) -> Ref:
    """Monitor ``dest``; a ``Down(ref, object, reason)`` message arrives when it exits.

    ``object`` is the pid when a pid was monitored, ``(name, node)`` when a
    name was, and the ``Via`` when a via name was (looked up now: the
    monitor follows the process that holds it now). A target that does not exist gives ``Down(ref, object, "noproc")``
    at once.
    """
    proc = current_process()
    return proc.node.monitor(proc, dest)


def demonitor(ref: Ref, flush: bool = False) -> bool:
    """Stop the monitor ``ref``; with ``flush``, also remove its queued ``Down``.

    Returns:
        True if the monitor was still active, False if it had fired or was unknown.

    Raises:
        TypeError: ``ref`` is not a ``Ref``.
    """
    if not isinstance(ref, Ref):
        raise TypeError(f"demonitor() needs the Ref that monitor() returned, not {ref!r}")
    proc = current_process()
    return proc.node.demonitor(proc, ref, flush)


def send_exit(pid: Pid, reason: Any) -> None:
    """Send an exit signal with ``reason`` to ``pid``.

    ``"kill"`` cannot be trapped and kills with reason ``"killed"``.
    ``"normal"`` is ignored by a non-trapping process, unless it is the caller.
    """
    if not isinstance(pid, Pid):
        raise TypeError(f"send_exit() needs a Pid, not {pid!r}")
    proc = _process.get()
    if proc is not None:
        proc.node.exit_signal(proc.pid, pid, reason, link=False)
    else:
        node = current_node()
        node.exit_signal(node.system_pid, pid, reason, link=False)


def trap_exits(flag: bool = True) -> bool:
    """Set whether the calling process traps exit signals; return the previous setting."""
    proc = current_process()
    previous = proc.trap
    proc.trap = bool(flag)
    return previous


def set_max_mailbox(limit: int | None) -> int | None:
    """Bound the calling process's mailbox to ``limit`` messages; return the previous bound.

    The process flag behind ``spawn(..., max_mailbox=N)`` (Erlang's
    ``process_flag(max_heap_size, N)``, for the mailbox). When a message
    arrives that makes the mailbox hold more than ``limit``, the process is
    killed with reason ``"mailbox_overflow"`` (so that its supervisor restarts
    it clean), an error is logged with its pid, name and mailbox length, and
    the mailbox is emptied. A mailbox already over ``limit`` overflows at once.
    ``None`` removes the bound (the default: no bound).

    Raises:
        TypeError / ValueError: ``limit`` is neither None nor an int >= 1.
        NotInProcessError: called outside a process.
    """
    if limit is not None:
        check_number(limit, "max_mailbox", minimum=1, integer=True)
    return current_process().set_max_mailbox(limit)


def send_after(seconds: float, dest: Pid | str | tuple[str, str] | Via, msg: Any) -> Ref:
    """Send ``msg`` to ``dest`` after ``seconds``; return a ref for ``cancel_timer``.

    A name (or via name) is resolved when the timer fires (an unregistered
    name then drops the message). A timer to a pid is void once that process has exited.

    Raises:
        TypeError / ValueError: ``seconds`` is not a number >= 0, or ``dest``
            is not a valid destination.
    """
    check_number(seconds, "seconds", unit="seconds")
    if not (
        type(dest) is Pid
        or type(dest) is str
        or type(dest) is Via
        or (
            type(dest) is tuple
            and len(dest) == 2
            and isinstance(dest[0], str)
            and isinstance(dest[1], str)
        )
    ):
        raise TypeError(
            f"a destination is a Pid, a registered name or a (name, node) tuple, not {dest!r}"
        )
    return current_node().timers.add(seconds, dest, msg)


def cancel_timer(ref: Ref) -> float | None:
    """Cancel a ``send_after`` timer.

    Returns:
        The seconds that were left, or None if the timer had fired, was
        cancelled, was unknown, or targeted a process that has exited.

    Raises:
        TypeError: ``ref`` is not a ``Ref``.
    """
    if not isinstance(ref, Ref):
        raise TypeError(f"cancel_timer() needs the Ref that send_after() returned, not {ref!r}")
    return current_node().timers.cancel(ref)


def processes() -> list[Pid]:
    """The pids of all live processes of this node."""
    return current_node().processes()


def process_info(pid: Pid) -> ProcessInfo | None:
    """A snapshot of a local process, or None if it is not alive."""
    return current_node().process_info(pid)
