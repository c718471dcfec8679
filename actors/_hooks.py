"""Exit hooks and reply aliases: what libraries attach to a process.

An exit hook is a function the runtime calls when a process has exited, with
its pid and reason; libraries release what they keep for the process there
(``NodeVar`` entries, registrations). A reply alias is a reference that
lets a process receive ``Reply`` messages tagged with it, only while it is
active: the mechanism behind ``call`` and tasks (Erlang's ``alias/0``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._context import _process, current_node, current_process
from ._errors import NoProcError
from ._ids import Pid, Ref
from ._process import Process, Reply

__all__ = ["ExitHook", "add_exit_hook", "alias", "remove_exit_hook", "send_reply", "unalias"]


class ExitHook:
    """The handle ``add_exit_hook`` returns; pass it to ``remove_exit_hook``.

    Attributes:
        pid: the process the hook watches.
        fn: the function it calls, ``fn(pid, reason)``.
    """

    __slots__ = ("_proc", "fn", "pid")

    def __init__(self, proc: Process, fn: Callable[[Pid, Any], object]) -> None:
        self._proc = proc
        self.pid = proc.pid
        self.fn = fn

    def __repr__(self) -> str:
        name = getattr(self.fn, "__qualname__", None) or repr(self.fn)
        return f"<ExitHook {name} of {self.pid!r}>"

    def __call__(self, proc: Process, reason: Any, result: Any) -> None:
        self.fn(proc.pid, reason)


def _process_of(target: Pid | Process) -> Process:
    if isinstance(target, Process):
        proc: Process | None = target if target.node.lookup(target.pid) is target else None
        where = target.pid
    elif isinstance(target, Pid):
        node = current_node()
        if node.is_remote(target.node):
            raise ValueError(f"exit hooks watch local processes; {target!r} is on another node")
        proc = node.lookup(target)
        where = target
    else:
        raise TypeError(f"an exit hook watches a Pid or a Process, not {target!r}")
    if proc is None:
        raise NoProcError(f"cannot add an exit hook: process {where!r} is not alive")
    return proc


def add_exit_hook(target: Pid | Process, fn: Callable[[Pid, Any], object]) -> ExitHook:
    """Call ``fn(pid, reason)`` when the local process ``target`` exits.

    When it runs: once the process has ended (its code has finished, or it was
    killed), after it has left the process table and its registered name
    has been released, and before its link exit signals and monitor ``Down``
    messages go out. So by the time any process hears of the exit, every
    hook has run. Hooks of one process run in the order they were added.

    A hook runs synchronously inside the runtime: it must be quick, must not
    block, and may send messages. It runs in whatever task ended the process,
    so it must not rely on ``current_process()``. An exception it raises is
    logged (``beamlet`` logger, ERROR) and dropped: the exit goes on, and the
    other hooks still run.

    Args:
        target: a live local process (its pid, or its ``Process``).
        fn: called as ``fn(pid, reason)``.

    Returns:
        A handle for ``remove_exit_hook``.

    Raises:
        NoProcError: the process is not alive (it has already exited).
        ValueError: ``target`` is a pid of another node.
        TypeError: ``target`` is not a pid, or ``fn`` is not callable.
    """
    if not callable(fn):
        raise TypeError(f"an exit hook is a function of (pid, reason), not {fn!r}")
    proc = _process_of(target)
    hook = ExitHook(proc, fn)
    hooks = proc.hooks
    if hooks is None:
        hooks = proc.hooks = {}
    hooks[hook] = None
    return hook


def remove_exit_hook(hook: ExitHook) -> bool:
    """Remove an exit hook before it runs.

    Returns:
        True if it was removed; False if it had already run or been removed.
    """
    if not isinstance(hook, ExitHook):
        raise TypeError(f"remove_exit_hook() needs what add_exit_hook() returned, not {hook!r}")
    hooks = hook._proc.hooks
    if hooks is None or hook not in hooks:
        return False
    del hooks[hook]
    return True


def alias() -> Ref:
    """Create a reply alias for the calling process, and activate it.

    ``Reply`` messages tagged with the alias (``send_reply(pid, ref, value)``)
    reach the process while the alias is active; after ``unalias`` (or once
    the process has exited) they are dropped on arrival, so that a late
    reply never stays in a mailbox. This is how ``call`` and tasks work.

    Raises:
        NotInProcessError: called outside a process.
    """
    proc = current_process()
    ref = proc.node.make_ref()
    aliases = proc.aliases
    if aliases is None:
        aliases = proc.aliases = set()
    aliases.add(ref)
    return ref


def unalias(ref: Ref) -> bool:
    """Deactivate a reply alias of the calling process.

    A ``Reply`` already in the mailbox stays there; later ones are dropped.

    Returns:
        True if the alias was active.

    Raises:
        NotInProcessError: called outside a process.
    """
    proc = current_process()
    aliases = proc.aliases
    if aliases is None or ref not in aliases:
        return False
    aliases.discard(ref)
    return True


def send_reply(dest: Pid, ref: Ref, value: Any) -> None:
    """Send ``Reply(ref, value)`` to ``dest``: delivered only while its alias ``ref`` is active.

    Works from any process (or from outside one, inside ``open_node``), to
    a local or a remote pid. Never blocks, never fails on a dead process. A
    remote ``dest`` takes it only if it monitors a process of this node with
    the same ref (``adopt_task`` makes the alias and that monitor).

    Raises:
        TypeError: ``dest`` is not a pid or ``ref`` not a ``Ref``.
    """
    if not isinstance(dest, Pid) or not isinstance(ref, Ref):
        raise TypeError(f"send_reply() needs a Pid and a Ref, not {dest!r} and {ref!r}")
    proc = _process.get()
    if proc is not None:
        proc.node.send(proc.pid, dest, Reply(ref, value))
    else:
        current_node().send(None, dest, Reply(ref, value))
