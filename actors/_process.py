"""A process: its mailbox, selective receive, and how it takes exit signals.

The mailbox is a deque that never blocks a sender. A process waiting in
``receive`` parks its Trio task with ``trio.lowlevel.wait_task_rescheduled`` and
records its match predicate; a sender tests a new message against it and, only
when it may match, hands the message over directly and reschedules the task.
``receive`` takes a full schedule point only when it must wait or after a budget
of messages (as BEAM counts reductions), and a cheap cancellation check
otherwise, so a process that always has mail cannot starve the others.

Exit signals that kill a process reach it as cancellation of its cancel scope,
so ``except Exception`` in user code cannot swallow them.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from itertools import islice
from sys import getsizeof as _getsizeof
from typing import TYPE_CHECKING, Any, NamedTuple

import attrs
import trio
from outcome import Error, Value
from trio.lowlevel import (
    Abort,
    checkpoint,
    checkpoint_if_cancelled,
    current_task,
    reschedule,
    wait_task_rescheduled,
)

from ._context import _process
from ._errors import Exit, ReceiveTimeoutError
from ._ids import tuple_value
from ._messages import Down, ExitSignal
from ._timers import TIMED_OUT, Wait

if TYPE_CHECKING:
    from ._ids import Pid, Ref
    from ._node import Node

__all__ = [
    "BUDGET",
    "DROP_ON_REPLY",
    "MAILBOX_OVERFLOW",
    "NO_MONITOR",
    "OWN_MONITOR",
    "BoundedProcess",
    "CallWait",
    "Process",
    "Reply",
    "ReplyWait",
    "expect_reply",
]

logger = logging.getLogger("beamlet")

#: The exit reason of a process killed for a mailbox over its ``max_mailbox``.
MAILBOX_OVERFLOW = "mailbox_overflow"

#: What ``Process.memory`` adds for the Trio task and the coroutine frames that
#: run a process (measured by bench/local.py's memory figure: about 2.3 KB).
TASK_OVERHEAD = 2300

#: Queued messages whose size ``Process.memory`` measures (then extrapolates).
_MEMORY_SAMPLE = 64

#: Messages a process may take from its mailbox before ``receive`` yields to
#: the scheduler even though more mail is waiting.
BUDGET = 64


def _has_fast_cancel_check() -> bool:
    """Whether this Trio keeps a task's cancel state where ``receive`` reads it.

    ``trio.lowlevel.checkpoint_if_cancelled`` is an ``await`` of its own; on the
    path of a message that is already in the mailbox, reading the same flag
    inline costs a fraction of it. When a Trio release moves the flag,
    ``receive`` falls back to the public function (a test checks the fast path
    is in use with the Trio the package is tested against).
    """
    try:
        from trio._core._run import CancelStatus, Task
    except ImportError:  # pragma: no cover - depends on the Trio release
        return False
    slots = getattr(CancelStatus, "__slots__", ())
    return (
        "effectively_cancelled" in slots
        and attrs.has(Task)
        and "_cancel_status" in attrs.fields_dict(Task)
    )


#: True when ``receive`` reads the task's cancel state inline (see above).
FAST_CANCEL_CHECK = _has_fast_cancel_check()


def _any(msg: object) -> bool:
    return True


@tuple_value
class Reply(NamedTuple):
    """The reply to a ``call``; delivered only while the caller's alias is active.

    A tuple underneath (as ``Ref``), so that each ``call`` makes one cheaply.
    """

    ref: Ref
    value: Any

    def __repr__(self) -> str:
        return f"Reply({self.ref!r}, {self.value!r})"


_NOTHING: Any = object()

#: What a ``ReplyWait`` does with the monitor of its ref when it ends (see there).
NO_MONITOR, DROP_ON_REPLY, OWN_MONITOR = 0, 1, 2


class ReplyWait(Wait):
    """One task of a process waiting for the message tagged with one of its refs.

    A ``call`` waits for the ``Reply`` or the ``Down`` tagged with its ref, a
    task join for those of the task's ref, ``stop`` for a ``Down``. The wait is
    entered in ``proc.waiters`` under each of its refs; ``Process.deliver``
    hands such a message straight to it, never to the mailbox, so that any
    number of tasks of one process may wait at once, each for its own reply,
    while plain ``receive`` stays a single waiter.

    ``monitor`` says what to do with the monitor of the same ref when the wait
    ends: nothing (``NO_MONITOR``); remove it when a ``Reply`` arrives
    (``DROP_ON_REPLY``: the replier may exit next, and its ``Down`` must not
    reach the mailbox); or also when the wait times out or is cancelled
    (``OWN_MONITOR``: the monitor exists for this wait only, as a ``call``'s).
    Either way it is removed in the step the wait ends.

    Attributes:
        target: the waiting Trio task; None once the wait is over.
        msg: the message, if it arrived before the task parked.
        replies: whether a ``Reply`` is taken (else only a ``Down``).
    """

    __slots__ = ("monitor", "msg", "parked", "proc", "ref", "refs", "replies")

    def __init__(
        self,
        proc: Process,
        task: trio.lowlevel.Task,
        ref: Ref | None,
        replies: bool = True,
        monitor: int = NO_MONITOR,
    ) -> None:
        self.target = task
        self.proc = proc
        self.ref = ref
        self.refs: tuple[Ref, ...] | None = None
        self.msg = _NOTHING
        self.parked = False
        self.replies = replies
        self.monitor = monitor

    def put(self, msg: Any) -> None:
        """Give the wait its message (``deliver`` has removed it from ``proc.waiters``)."""
        task = self.target
        self.target = None
        if self.refs is not None:
            self._unregister()
        if self.monitor and type(msg) is Reply:
            proc = self.proc
            proc.node.demonitor(proc, msg.ref)
        if self.parked:
            reschedule(task, Value(msg))  # type: ignore[arg-type]
        else:
            self.msg = msg

    def _unregister(self) -> None:
        waiters = self.proc.waiters
        if waiters is not None:
            for ref in self.refs if self.refs is not None else (self.ref,):
                if waiters.get(ref) is self:  # type: ignore[arg-type]
                    del waiters[ref]  # type: ignore[arg-type]

    def _give_up(self) -> None:
        """The wait ends without its message: unregister, and drop its monitors if it owns them."""
        self.target = None
        self._unregister()
        if self.monitor == OWN_MONITOR:
            proc = self.proc
            for ref in self.refs if self.refs is not None else (self.ref,):
                proc.node.demonitor(proc, ref)  # type: ignore[arg-type]

    def abort(self, raise_cancel: object) -> Abort:
        """The abort function of the parked task (cancellation)."""
        self._give_up()
        return Abort.SUCCEEDED

    async def wait(self, timeout: float | None) -> Any:
        """Wait for the message; return it, or ``TIMED_OUT``.

        Cancellation:
            A checkpoint. A message taken by the wait is lost to a
            cancellation that comes with it (a late ``Reply`` to a ``call``
            is dropped anyway).
        """
        if self.target is None:  # it came at once
            await checkpoint()
            return self.msg
        if timeout is not None:
            if timeout <= 0:
                self._give_up()
                await checkpoint()
                return TIMED_OUT
            self.proc.node.timers.wait(self, timeout)
        self.parked = True
        return await wait_task_rescheduled(self.abort)

    def expire(self) -> None:
        """The timeout: wake the task with ``TIMED_OUT``."""
        task = self.target
        if task is None:
            return
        self._give_up()
        if self.parked:
            reschedule(task, Value(TIMED_OUT))
        else:  # pragma: no cover - a wait parks in the step that registers it
            self.msg = TIMED_OUT


class CallWait(Wait):
    """A ``call``'s wait for the reply of a local server, which it monitors.

    The lean form of a ``ReplyWait(..., monitor=OWN_MONITOR)`` for the common
    case. The wait is the caller's side of the monitor: the server's
    ``monitored_by`` holds the ref, the caller's ``monitors`` does not; so the
    ref is at once the reply alias and the monitor (as OTP's
    ``monitor(process, Pid, [{alias, demonitor}])``), with one entry on each
    side. ``Node.send_down`` hands the server's ``Down`` to the wait, a
    ``Reply`` or the end of the wait (timeout, cancellation) removes the
    server's entry, and the caller's exit gives up what is left.

    Attributes:
        target: the waiting Trio task; None once the wait is over.
        server: the server's ``Process``.
        msg: the message, if it arrived before the task parked.
    """

    __slots__ = ("msg", "parked", "proc", "ref", "server")

    #: ``Process.deliver`` hands a ``Reply`` to this wait (as to a ``ReplyWait``).
    replies = True

    def __init__(self, proc: Process, task: trio.lowlevel.Task, ref: Ref, server: Process) -> None:
        self.target = task
        self.proc = proc
        self.ref = ref
        self.server = server
        self.parked = False

    def put(self, msg: Any) -> None:
        """Give the wait its message (``deliver`` has removed it from ``proc.waiters``)."""
        task = self.target
        self.target = None
        if type(msg) is Reply:
            monitored_by = self.server.monitored_by
            if monitored_by:
                monitored_by.pop(self.ref, None)
        if self.parked:
            reschedule(task, Value(msg))  # type: ignore[arg-type]
        else:
            self.msg = msg

    def _give_up(self) -> None:
        """The wait ends without its message: unregister it and drop the monitor."""
        self.target = None
        ref = self.ref
        waiters = self.proc.waiters
        if waiters is not None and waiters.get(ref) is self:
            del waiters[ref]
        monitored_by = self.server.monitored_by
        if monitored_by:
            monitored_by.pop(ref, None)

    def caller_exited(self) -> None:
        """The calling process exited while this wait's task still waits.

        Only the server's side of the monitor goes (nothing will deliver
        the reply now); the task keeps waiting for its timeout or
        cancellation, as any other wait of an exited process does.
        """
        monitored_by = self.server.monitored_by
        if monitored_by:
            monitored_by.pop(self.ref, None)

    def abort(self, raise_cancel: object) -> Abort:
        """The abort function of the parked task (cancellation)."""
        self._give_up()
        return Abort.SUCCEEDED

    def expire(self) -> None:
        """The timeout: wake the task with ``TIMED_OUT``."""
        task = self.target
        if task is None:
            return
        self._give_up()
        reschedule(task, Value(TIMED_OUT))  # a call parks in the step that sets its timeout


def expect_reply(
    proc: Process,
    refs: tuple[Ref, ...],
    *,
    replies: bool = True,
    monitor: int = NO_MONITOR,
) -> ReplyWait:
    """Register a wait, for the calling task, for the ``Reply`` or ``Down`` tagged with one of ``refs``.

    Register it before whatever may answer (a monitor of a process that is
    already gone answers at once), then ``await wait.wait(timeout)``. Only a
    message delivered from now on is seen: look in the mailbox first for one
    that may already be there. ``Down`` is always taken; ``Reply`` only with
    ``replies``, and only for refs that are aliases of the process.
    ``monitor`` says what becomes of the monitors with these refs (see
    ``ReplyWait``).

    Raises:
        RuntimeError: another task of the process already waits for one of ``refs``.
    """
    waiters = proc.waiters
    if waiters is None:
        waiters = proc.waiters = {}
    for ref in refs:
        if ref in waiters:
            raise RuntimeError(f"another task of {proc.pid!r} is already waiting for {ref!r}")
    waiter = ReplyWait(proc, current_task(), None, replies, monitor)
    if len(refs) == 1:
        waiter.ref = refs[0]
    else:
        waiter.refs = refs
    for ref in refs:
        waiters[ref] = waiter
    return waiter


class Process:
    """The runtime's record of one process. Users see only its ``Pid``.

    Libraries get it from ``beamlet.actors.lowlevel.current_process()`` or
    ``node.lookup(pid)``. Supported for them (anything else may change):

    Attributes:
        pid: its ``Pid``.
        node: its ``Node``.
        name: its registered name, or None.
        trap: whether it traps exits.
        exit_reason: None while it runs; the reason it is being killed with
            once that is decided.
        max_mailbox: its mailbox bound, or None (read only; see ``set_max_mailbox``).
        message_queue_len: how many messages wait in its mailbox (read only;
            cheap enough for a publisher to check per message).

    Methods: ``deliver(msg)`` (put a message in its mailbox, as a local
    ``send`` does), ``kill(reason)`` (end it with ``reason``, whatever it
    traps), ``take(match)`` (remove the oldest matching queued message,
    without waiting; its own process only), ``set_max_mailbox(limit)``
    (bound its mailbox), ``status`` and ``function_name``. Use
    ``beamlet.actors.receive`` to wait for messages.
    """

    __slots__ = (
        "_budget",
        "_scope",
        "_task",
        "_waiting",
        "_work",
        "aliases",
        "args",
        "exit_reason",
        "fn",
        "hooks",
        "links",
        "mailbox",
        "max_mailbox",
        "monitored_by",
        "monitors",
        "name",
        "node",
        "pid",
        "trap",
        "waiters",
    )

    def __init__(self, node: Node, pid: Pid, fn: Callable[..., Any], args: tuple[Any, ...]):
        self.node = node
        self.pid = pid
        self.fn = fn
        self.args = args
        self.name: str | None = None
        self.mailbox: deque[Any] | None = None  # created on first message
        #: The mailbox bound; a bounded process is a ``BoundedProcess``.
        self.max_mailbox: int | None = None
        self._waiting: Callable[[Any], Any] | None = None
        self._task: trio.lowlevel.Task | None = None
        self._scope: trio.CancelScope | None = None
        self._budget = BUDGET
        self._work = 0  # receives counted so far, but those of the current budget
        self.trap = False
        #: The reason this process is being killed with, once an exit signal
        #: (or the node's shutdown) has decided it; it wins over whatever the
        #: process function does afterwards.
        self.exit_reason: Any = None
        # Created on first use, to keep an idle process small.
        self.links: set[Pid] | None = None
        self.monitors: dict[Ref, Any] | None = None  # ref -> monitored pid, or (name, node)
        self.monitored_by: dict[Ref, tuple[Pid, Any]] | None = None  # ref -> (watcher, object)
        self.aliases: set[Ref] | None = None
        #: The tasks of this process waiting for a reply or a Down, by ref.
        self.waiters: dict[Ref, ReplyWait | CallWait] | None = None
        #: Exit hooks (see ``Node.process_exited``), in the order they were added.
        self.hooks: dict[Callable[[Process, Any, Any], None], None] | None = None

    def __repr__(self) -> str:
        return f"<Process {self.pid!r} {self.name or ''} {self.function_name}>"

    @property
    def function_name(self) -> str:
        """The qualified name of the function the process runs.

        A function may describe its processes better from their arguments
        with a ``describe_process(args) -> str`` attribute: a GenServer's
        process says ``"Counter (GenServer)"``, not the name of its loop.
        """
        fn = self.fn
        describe = getattr(fn, "describe_process", None)
        if describe is not None:
            try:
                return str(describe(self.args))
            except Exception:
                pass
        return getattr(fn, "__qualname__", None) or repr(fn)

    @property
    def reductions(self) -> int:
        """How many times the process has called ``receive``: a work counter.

        As BEAM's reductions, it tells busy processes from idle ones; it counts
        each ``receive`` (a message taken, or a wait that timed out), not CPU
        time. It costs nothing on the fast path: ``receive`` already counts
        down a budget of messages, and the counter adds up the budgets when
        they are renewed.
        """
        return self._work + (BUDGET - self._budget)

    def memory(self) -> int:
        """An estimate, in bytes, of the memory the process holds.

        The process record, its mailbox (the deque and the shallow size of up
        to 64 queued messages, extrapolated to the rest), its links, monitors
        and aliases, plus ``TASK_OVERHEAD`` for the Trio task and coroutine
        that run it. Messages' contents are not followed (they may be shared).
        """
        size = _getsizeof(self) + TASK_OVERHEAD
        mailbox = self.mailbox
        if mailbox is not None:
            size += _getsizeof(mailbox)
            count = len(mailbox)
            if count:
                sample = list(islice(mailbox, _MEMORY_SAMPLE))
                sampled = sum(_getsizeof(m) for m in sample)
                size += sampled * count // len(sample)
        for table in (self.links, self.monitors, self.monitored_by, self.aliases, self.waiters):
            if table is not None:
                size += _getsizeof(table)
        return size

    @property
    def status(self) -> str:
        """``"running"``, ``"waiting"`` (in ``receive``) or ``"exiting"``."""
        if self.exit_reason is not None:
            return "exiting"
        return "waiting" if self._waiting is not None else "running"

    # -- running ---------------------------------------------------------------

    async def main(self, scope: trio.CancelScope) -> None:
        """Run the process's function in a node worker task, inside ``scope``.

        ``scope`` belongs to the worker and is cancelled only to kill this
        process; the ``Cancelled`` that kills it propagates to the worker.
        """
        _process.set(self)
        reason: Any = "normal"
        result: Any = None
        self._scope = scope
        try:
            if self.exit_reason is None:
                result = await self.fn(*self.args)
            # else: killed before it ever ran; its code does not start.
        except Exit as exc:
            reason = exc.reason
        except trio.Cancelled:
            reason = "shutdown"
            raise
        except Exception as exc:
            reason = _unwrap(exc)
            if isinstance(reason, Exit):
                reason = reason.reason
            elif self.exit_reason is None:
                self._crash_report(reason)
        except BaseException as exc:
            inner = _unwrap(exc)
            if isinstance(inner, Exit):
                reason = inner.reason
            elif isinstance(exc, BaseExceptionGroup):
                # A nursery inside the process: keep the cancellation going,
                # the rest is the crash.
                cancelled, rest = exc.split(trio.Cancelled)
                reason = _unwrap(rest) if rest is not None else "shutdown"
                if cancelled is not None:
                    raise cancelled from None
                if self.exit_reason is None and isinstance(reason, Exception):
                    self._crash_report(reason)
            else:
                reason = exc
                raise
        finally:
            if self.exit_reason is not None:
                reason = self.exit_reason
            else:
                self.exit_reason = reason
            self._scope = None
            self.node.process_exited(self, reason, result)

    def end_unstarted(self) -> None:
        """End, as ``main`` would, a process that never ran: its node shut down first.

        Call it in the context the process was spawned in.
        """
        _process.set(self)
        if self.exit_reason is None:
            self.exit_reason = "shutdown"
        self.node.process_exited(self, self.exit_reason, None)

    def _crash_report(self, exc: BaseException) -> None:
        logger.error(
            "process %r%s running %s crashed: %r",
            self.pid,
            f" ({self.name})" if self.name else "",
            self.function_name,
            exc,
            exc_info=exc,
            extra={
                "beamlet_pid": self.pid,
                "beamlet_name": self.name,
                "beamlet_function": self.function_name,
                "beamlet_reason": exc,
            },
        )

    def kill(self, reason: Any) -> None:
        """End this process with ``reason`` at its next checkpoint, whatever it traps."""
        if self.exit_reason is not None:
            return
        self.exit_reason = reason
        scope = self._scope
        if scope is not None:
            scope.cancel()

    @property
    def message_queue_len(self) -> int:
        """How many messages wait in the mailbox."""
        mailbox = self.mailbox
        return len(mailbox) if mailbox is not None else 0

    # -- signals -----------------------------------------------------------------

    def deliver(self, msg: Any) -> None:
        """Hand ``msg`` to the task waiting for it, or to the waiting receive, or queue it."""
        kind = type(msg)
        if kind is Reply or kind is Down:
            waiters = self.waiters
            if waiters:
                ref = msg.ref
                waiter = waiters.pop(ref, None)
                if waiter is not None:
                    if kind is Down or waiter.replies:
                        waiter.put(msg)
                        return
                    waiters[ref] = waiter
            if kind is Reply:
                aliases = self.aliases
                if aliases is None or msg.ref not in aliases:
                    return  # a late reply to a call that has given up
        waiting = self._waiting
        if waiting is not None:
            try:
                hit = waiting is _any or waiting(msg)
            except Exception as exc:
                # The receiver's match is broken: queue the message and raise
                # the error in the receiver, as a scan of the mailbox would.
                self._waiting = None
                reschedule(self._task, Error(exc))  # type: ignore[arg-type]
                hit = False
            if hit:
                self._waiting = None
                reschedule(self._task, Value(msg))  # type: ignore[arg-type]
                return
        mailbox = self.mailbox
        if mailbox is None:
            mailbox = self.mailbox = deque()
        mailbox.append(msg)

    def set_max_mailbox(self, limit: int | None) -> int | None:
        """Bound the mailbox to ``limit`` messages (None: no bound); return the previous bound.

        A process with a bound is a ``BoundedProcess``, whose ``deliver``
        checks it: the others pay nothing for the feature. A mailbox already
        over the new bound is an overflow at once.
        """
        previous = self.max_mailbox
        self.max_mailbox = limit
        self.__class__ = Process if limit is None else BoundedProcess
        mailbox = self.mailbox
        if limit is not None and mailbox is not None and len(mailbox) > limit:
            self._mailbox_overflow(len(mailbox))
        return previous

    def _mailbox_overflow(self, length: int) -> None:
        """Kill this process, whose mailbox holds ``length`` messages, over its bound."""
        if self.exit_reason is not None:
            return
        logger.error(
            "process %r%s running %s killed: %d messages in its mailbox, over max_mailbox=%d",
            self.pid,
            f" ({self.name})" if self.name else "",
            self.function_name,
            length,
            self.max_mailbox,
            extra={
                "beamlet_pid": self.pid,
                "beamlet_name": self.name,
                "beamlet_function": self.function_name,
                "beamlet_reason": MAILBOX_OVERFLOW,
                "beamlet_message_queue_len": length,
            },
        )
        self.kill(MAILBOX_OVERFLOW)
        if self.mailbox is not None:
            self.mailbox.clear()  # freed now; what comes until it exits is dropped

    def exit_signal(self, sender: Pid, reason: Any, *, link: bool) -> None:
        """Apply an exit signal, by Erlang's rules (P18-P21)."""
        if self.exit_reason is not None:
            return
        if link:
            links = self.links
            if links is None or sender not in links:
                return  # the link was removed before the signal arrived
            links.discard(sender)
        elif reason == "kill" and type(reason) is str:
            self.kill("killed")
            return
        if self.trap:
            self.deliver(ExitSignal(sender, reason))
        elif type(reason) is str and reason == "normal":
            if not link and sender == self.pid:
                self.kill("normal")
        else:
            self.kill(reason)

    # -- receive -----------------------------------------------------------------

    async def receive(
        self,
        match: Callable[[Any], Any] | None,
        timeout: float | None,
        start: int = 0,
    ) -> Any:
        """Take the oldest message for which ``match`` is true (see ``beamlet.actors.receive``)."""
        mailbox = self.mailbox
        if not mailbox and match is None and timeout is None and self._waiting is None:
            # Nothing to take: park at once (parking is the cancellation check).
            self._work += BUDGET + 1 - self._budget
            self._budget = BUDGET
            self._task = current_task()
            self._waiting = _any
            return await wait_task_rescheduled(self._abort)
        if self._budget > 0:
            self._budget -= 1
            if FAST_CANCEL_CHECK:
                if current_task()._cancel_status.effectively_cancelled:  # type: ignore[attr-defined]
                    await checkpoint()
            else:
                await checkpoint_if_cancelled()
        else:
            self._work += BUDGET + 1
            self._budget = BUDGET
            await checkpoint()
        mailbox = self.mailbox
        if mailbox:
            if match is None:
                return mailbox.popleft()
            index = start
            for msg in islice(mailbox, start, None) if start else mailbox:
                if match(msg):
                    del mailbox[index]
                    return msg
                index += 1
        if timeout is not None and timeout <= 0:
            raise ReceiveTimeoutError("no matching message in the mailbox")
        if self._waiting is not None:
            raise RuntimeError(f"another task of {self.pid!r} is already waiting in receive()")
        if match is not None and not callable(match):  # checked here, off the fast path
            raise TypeError(f"receive() needs a predicate (a callable) or None, not {match!r}")
        self._work += BUDGET - self._budget
        self._budget = BUDGET
        self._task = current_task()
        self._waiting = match if match is not None else _any
        if timeout is None:
            return await wait_task_rescheduled(self._abort)
        wake = self.node.timers.wake_after(timeout, self)
        try:
            msg = await wait_task_rescheduled(self._abort)
        finally:
            wake.cancel()
        if msg is TIMED_OUT:
            raise ReceiveTimeoutError(f"no matching message within {timeout} s")
        return msg

    def _abort(self, raise_cancel: object) -> Abort:
        self._waiting = None
        return Abort.SUCCEEDED

    def take(self, match: Callable[[Any], Any]) -> Any:
        """Remove and return the oldest queued message matching ``match``, or None."""
        mailbox = self.mailbox
        if mailbox is None:
            return None
        for index, msg in enumerate(mailbox):
            if match(msg):
                del mailbox[index]
                return msg
        return None

    def flush_down(self, ref: Ref) -> None:
        """Remove one queued ``Down`` for ``ref`` (``demonitor(ref, flush=True)``)."""
        self.take(lambda m: type(m) is Down and m.ref == ref)


class BoundedProcess(Process):
    """A process with a mailbox bound (``max_mailbox``): a message past it kills it.

    The process is killed with reason ``"mailbox_overflow"`` and an error is
    logged; its mailbox is emptied, and what arrives until it has exited is
    dropped. A message handed straight to a waiting ``receive`` never counts.
    """

    __slots__ = ()

    def deliver(self, msg: Any) -> None:
        """``Process.deliver``, then the bound."""
        if self.exit_reason is MAILBOX_OVERFLOW:
            return
        kind = type(msg)
        if self._waiting is not None or kind is Reply or kind is Down:
            Process.deliver(self, msg)  # it may be taken by a waiting task
            mailbox = self.mailbox
            if mailbox is None:
                return
        else:  # the common case of a process behind its messages, inline
            mailbox = self.mailbox
            if mailbox is None:
                mailbox = self.mailbox = deque()
            mailbox.append(msg)
        if len(mailbox) > self.max_mailbox:  # type: ignore[operator]
            self._mailbox_overflow(len(mailbox))


def _unwrap(exc: BaseException) -> BaseException:
    """Reduce an exception group with a single leaf to that leaf."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
