"""A node: the process table, names, links, monitors and exit propagation.

A ``Node`` owns a Trio nursery in which every one of its processes runs. It
routes signals between its own processes directly and hands those for other
nodes to its ``router`` (see ``_router``). ``open_node`` and ``run`` create one.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
import math
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import attrs
import outcome
import trio
from outcome import Value
from trio.lowlevel import (
    Abort,
    cancel_shielded_checkpoint,
    current_task,
    reschedule,
    wait_task_rescheduled,
)

from ._context import _node, _process
from ._errors import (
    BusyError,
    Exit,
    NameTakenError,
    NoProcError,
    NoSuchNameError,
    NotInProcessError,
)
from ._ids import Counter, Pid, Ref, new_creation
from ._mailbox_watch import DEFAULT_MAILBOX_WARNING, watch_mailboxes
from ._messages import Down, ProcessInfo
from ._process import BoundedProcess, CallWait, Process, Reply
from ._registry import Via
from ._registry_state import rename_registries, via_process, via_registry
from ._router import LocalRouter, Router
from ._timers import Timers
from ._util import check_number, raise_single
from ._watchdog import Watchdog

__all__ = ["LOCAL_NODE_NAME", "ExitHookFn", "Node", "check_async", "open_node", "run"]

logger = logging.getLogger("beamlet")

_new_tuple = tuple.__new__

#: What the runtime calls when a process has exited: ``(process, reason, result)``.
ExitHookFn = Callable[[Process, Any, Any], None]

T = TypeVar("T")

#: Worker tasks kept parked for future processes, per node.
MAX_IDLE_WORKERS = 256

#: New worker tasks a node starts before the next of them has run; past this,
#: spawns in a burst wait in the node's queue for a worker (see ``Node.spawn_process``).
BURST_TASKS = 64


def _has_worker_reuse() -> bool:
    """Whether this Trio lets a parked worker task take up a new process.

    A worker whose process has finished runs the next one: parked (public
    ``wait_task_rescheduled``) and woken with ``reschedule`` by ``spawn``, or
    taking a queued process itself. Either way the next process must run in
    its own ``contextvars`` context, which means assigning the task's
    ``context``, an attribute Trio documents for reading only; its run loop
    reads it at every step. When a Trio release changes that, each process
    gets a task of its own (``nursery.start_soon``), as plain Trio code would,
    which is correct, only slower to spawn (a test checks that the fast path is
    in use with the Trio the package is tested against).
    """
    try:
        from trio._core._run import unrolled_run
    except ImportError:  # pragma: no cover - depends on the Trio release
        return False
    task = trio.lowlevel.Task
    code = getattr(unrolled_run, "__code__", None)
    return (
        attrs.has(task)
        and "context" in attrs.fields_dict(task)
        and task.__setattr__ is object.__setattr__
        and code is not None
        and "context" in code.co_names
    )


#: True when processes run in reused worker tasks (see above).
WORKER_REUSE = _has_worker_reuse()

#: The name of a node that is not distributed, as in Erlang.
LOCAL_NODE_NAME = "nonode@nohost"

_coroutine_functions: dict[Any, bool] = {}


def check_async(fn: Any) -> None:
    """Raise ``TypeError`` unless ``fn`` is an async function (or has an async ``__call__``).

    What ``spawn`` checks before starting a process, so that a plain function
    fails in the caller, with a message that says so, and not later in the
    new process.
    """
    try:
        known = _coroutine_functions.get(fn)
    except TypeError:  # unhashable callable
        known = None
    if known:
        return
    ok = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004
    )
    if not ok:
        raise TypeError(
            f"a process runs an async function; {fn!r} is not one (define it with `async def`)"
        )
    if len(_coroutine_functions) < 4096:
        try:
            _coroutine_functions[fn] = True
        except TypeError:
            pass


def check_max_mailbox(limit: object) -> None:
    """Raise ``TypeError``/``ValueError`` unless ``limit`` is an int >= 1."""
    check_number(limit, "max_mailbox", minimum=1, integer=True)


def check_name(name: object) -> str:
    """Validate a name for registration; return it."""
    if not isinstance(name, str):
        raise TypeError(f"a registered name must be a str, not {type(name).__name__}: {name!r}")
    if not name:
        raise ValueError("a registered name must not be empty")
    return name


class Node:
    """One beamlet node: a set of processes sharing a name and an incarnation.

    Create it with ``open_node`` (or ``run``); do not instantiate it directly.
    Applications use ``spawn`` and ``run``; libraries built on beamlet
    (through ``beamlet.actors.lowlevel``) may also use the methods below,
    which are supported; anything not listed may change.

    - Identity: ``name``, ``creation``, ``make_ref()``, ``system_pid``,
      ``is_remote(node_name)``, ``is_local(pid)``, ``rename(name)`` (for a
      router that gives the node a network name).
    - Processes: ``lookup(pid) -> Process | None``, ``is_alive(dest)``,
      ``spawn_process(fn, args, name=, link_to=, trap_exits=) -> Process``,
      ``processes()``, ``process_info(pid)``, ``whereis(name)``.
    - Signals on behalf of a process ``proc`` of this node: ``send(sender,
      dest, msg)``, ``send_quietly(...)``, ``link(proc, pid)``,
      ``unlink(proc, pid)``, ``monitor(proc, dest, ref=None) -> Ref``,
      ``demonitor(proc, ref, flush=False)``, ``exit_signal(sender, dest,
      reason, link=False)``.
    - For routers: ``router``, the ``remote_*`` callbacks and ``node_down``
      (see ``Router``), and ``system_nursery`` for the router's own tasks.
    - ``closed``, and ``shutdown()``.

    Attributes:
        name: the node name (``"nonode@nohost"`` until distribution starts).
        creation: the random incarnation number carried by every pid and ref.
        router: where signals for other nodes go (the distribution layer
            replaces the default ``LocalRouter``; see ``install_router``).
        closed: True once the node is shutting down.
    """

    def __init__(self, nursery: trio.Nursery, name: str = LOCAL_NODE_NAME) -> None:
        self.name = name
        self.creation = new_creation()
        self.router: Router = LocalRouter(self)
        self.closed = False
        self._nursery = nursery
        self._procs: dict[int, Process] = {}
        self._idle: list[trio.lowlevel.Task] = []  # parked worker tasks
        # Spawn bursts (see ``spawn_process``): processes waiting for a worker,
        # each with the context it was spawned in; worker tasks started and not
        # yet running; workers switching to a queued process; and the processes
        # started while others were queued, not yet replaced, that may have
        # blocked their worker (``_burst_check``).
        self._reuse = WORKER_REUSE
        self._pending: deque[tuple[Process, contextvars.Context]] = deque()
        self._fresh = 0
        self._switching = 0
        self._running_queued: set[Process] = set()
        self._names: dict[str, Process] = {}
        self._next_id = Counter()
        self._next_ref = Counter()
        self.timers = Timers(self)
        self._watchdog: Watchdog | None = None
        #: The values of ``NodeVar``s on this node: var -> key -> entry.
        self._vars: dict[Any, dict[Any, Any]] = {}
        self._system_pid = Pid(self.name, 0, self.creation)
        self._aliases: set[str] = set()
        #: Unlinks from remote pids not yet acknowledged (D8): local pid ->
        #: {remote pid: unlink id}. A ``Link`` from such a remote pid is ignored.
        self._unlinking: dict[Pid, dict[Pid, int]] = {}
        self._next_unlink = Counter()

    def __repr__(self) -> str:
        return f"<Node {self.name} ({len(self._procs)} processes)>"

    # -- identities ----------------------------------------------------------------

    def make_ref(self) -> Ref:
        """Return a new unique reference."""
        return _new_tuple(Ref, (self.name, self._next_ref(), self.creation))  # Ref(...), inline

    def rename(self, name: str) -> None:
        """Give the node its distributed name (``start_distribution`` does this).

        Running processes get pids with the new name; pids taken before keep
        reaching them (the old name stays an alias of this node).
        """
        old = self.name
        if name == old:
            return
        self._aliases.add(old)
        self._aliases.discard(name)
        self.name = name
        self._system_pid = Pid(name, 0, self.creation)

        def fix(pid: Pid) -> Pid:
            if pid.node == old and pid.creation == self.creation:
                return Pid(name, pid.id, pid.creation)
            return pid

        for proc in self._procs.values():
            proc.pid = fix(proc.pid)
            if proc.links:
                proc.links = {fix(p) for p in proc.links}
            if proc.monitors:
                proc.monitors = {
                    ref: fix(t) if type(t) is Pid else t for ref, t in proc.monitors.items()
                }
            if proc.monitored_by:
                proc.monitored_by = {
                    ref: (fix(w), fix(o) if type(o) is Pid else o)
                    for ref, (w, o) in proc.monitored_by.items()
                }
        rename_registries(self, fix)

    @property
    def system_nursery(self) -> trio.Nursery:
        """The nursery of the node's own tasks (distribution runs there)."""
        return self._nursery

    def is_remote(self, node: str) -> bool:
        """Whether ``node`` names another node (not this one, nor a former name of it)."""
        return node != self.name and node not in self._aliases

    def is_local(self, pid: Pid) -> bool:
        """Whether ``pid`` is a pid of this node incarnation (alive or not)."""
        return pid.creation == self.creation and not self.is_remote(pid.node)

    def lookup(self, pid: Pid) -> Process | None:
        """The live local process for ``pid``, or None."""
        if pid.creation == self.creation and (pid.node == self.name or pid.node in self._aliases):
            return self._procs.get(pid.id)
        return None

    def is_alive(self, dest: Any) -> bool:
        """Whether ``dest`` (a pid or a local name) may still be delivered to."""
        if isinstance(dest, Pid) and not self.is_remote(dest.node):
            return self.lookup(dest) is not None
        return True

    # -- spawning ------------------------------------------------------------------

    def spawn(
        self,
        fn: Callable[..., Awaitable[Any]],
        *args: Any,
        name: str | Via | None = None,
        link: bool = False,
        trap_exits: bool = False,
        max_mailbox: int | None = None,
    ) -> Pid:
        """Start ``fn(*args)`` as a new process of this node; return its pid.

        Args:
            fn: an async function.
            *args: its arguments.
            name: register the process under this name (or ``Registry.via``
                name), atomically.
            link: link it to the calling process (which must be on this node).
            trap_exits: start it trapping exits.
            max_mailbox: kill it with ``"mailbox_overflow"`` when its mailbox
                holds more messages than this (None: no bound).

        Raises:
            TypeError: ``fn`` is not an async function, or ``name`` is not a str.
            NameTakenError: ``name`` is already registered (for a via name,
                ``AlreadyRegisteredError``).
            NotInProcessError: ``link`` outside a process of this node.
        """
        parent = None
        if link:
            parent = _process.get()
            if parent is None or parent.node is not self:
                raise NotInProcessError("spawn(link=True) needs a calling process on this node")
        return self.spawn_process(
            fn, args, name=name, link_to=parent, trap_exits=trap_exits, max_mailbox=max_mailbox
        ).pid

    def spawn_process(
        self,
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        *,
        name: str | Via | None = None,
        link_to: Process | None = None,
        trap_exits: bool = False,
        hook: ExitHookFn | None = None,
        max_mailbox: int | None = None,
    ) -> Process:
        """Create and start a process; the internal form of ``spawn``."""
        if self.closed:
            raise RuntimeError(f"node {self.name} is closed")
        check_async(fn)
        if max_mailbox is not None:
            check_max_mailbox(max_mailbox)
        via = None
        if name is not None:
            if type(name) is Via:
                via = (via_registry(self, name), name)  # raises if the key cannot be taken
            else:
                check_name(name)
                if name in self._names:
                    raise NameTakenError(f"the name {name!r} is already registered")
        pid = Pid(self.name, self._next_id(), self.creation)
        if max_mailbox is None:
            proc = Process(self, pid, fn, args)
        else:
            proc = BoundedProcess(self, pid, fn, args)
            proc.max_mailbox = max_mailbox
        self._procs[pid.id] = proc
        if type(name) is str:
            proc.name = name
            self._names[name] = proc
        if trap_exits:
            proc.trap = True
        if hook is not None:
            proc.hooks = {hook: None}
        if via is not None:
            via[0].register(proc, via[1].key, via[1].value)
        if link_to is not None:
            proc.links = {link_to.pid}
            if link_to.links is None:
                link_to.links = {pid}
            else:
                link_to.links.add(pid)
        idle = self._idle
        if idle:
            # Hand the process to a parked worker: no new task, no new scope.
            # It runs in a copy of the spawner's context, as a new task would.
            task = idle.pop()
            task.context = contextvars.copy_context()
            reschedule(task, Value(proc))
        elif self._fresh < BURST_TASKS or not self._reuse:
            self._fresh += 1
            self._nursery.start_soon(self._worker, proc, name="beamlet.process")
        else:
            # A burst: many spawns before any new worker has run. The process
            # waits for a worker, in a copy of the spawner's context: one
            # whose process ends takes it (a schedule point instead of a new
            # task and cancel scope), and new workers replace those whose
            # processes block (``_burst_check``).
            self._pending.append((proc, contextvars.copy_context()))
        return proc

    async def _worker(self, proc: Process | None) -> None:
        """A task that runs processes one after another.

        Each process runs inside the worker's cancel scope, which is cancelled
        only to kill the process running in it; after that the worker opens a
        new one. When its process ends, the worker takes the next process
        waiting in the node's queue, or parks in ``_idle`` (at most
        ``MAX_IDLE_WORKERS`` of them) until ``spawn`` hands it one, so that
        most spawns cost neither a new Trio task nor a new cancel scope.
        (Its frame stays small: it lives as long as the process it runs.)
        """
        self._fresh -= 1
        while proc is not None:
            with trio.CancelScope() as scope:
                while proc is not None:
                    if self._pending:
                        self._burst_check(proc)
                    await proc.main(scope)
                    if self._running_queued:
                        self._running_queued.discard(proc)
                    if scope.cancel_called:
                        break  # the process swallowed its kill; the scope is spent
                    proc = await self._next()
                else:
                    return
            self._running_queued.discard(proc)  # it was killed
            proc = await self._next()

    def _burst_check(self, proc: Process) -> None:
        """Before a worker runs ``proc`` while other processes wait in the queue.

        The queued processes must all start, however many of the running ones
        block. A process recorded here that is still running at the next check
        has blocked its worker (it has ended its step without ending), so a new
        worker is started, for a queued process, in its place. If no other
        worker is due to look at the queue, one is started too.
        """
        pending = self._pending
        running = self._running_queued
        new = len(running)
        if new:
            running.clear()  # replaced: they may end whenever they like
        elif self._fresh == 0 and self._switching == 0:
            new = 1
        for _ in range(min(new, len(pending))):
            queued, context = pending.popleft()
            # The new task runs in a copy of the context the process was spawned in.
            context.run(self._start_worker, queued)
        if pending:
            running.add(proc)

    def _start_worker(self, proc: Process) -> None:
        self._fresh += 1
        self._nursery.start_soon(self._worker, proc, name="beamlet.process")

    async def _next(self) -> Process | None:
        """The next process for this worker: a queued one, or, parked in
        ``_idle``, one that ``spawn`` hands it; None means: exit."""
        pending = self._pending
        if pending:
            proc, context = pending.popleft()
            # Its first step must run in its own context: switch, then yield once.
            current_task().context = context
            self._switching += 1
            try:
                await cancel_shielded_checkpoint()
            finally:
                self._switching -= 1
            return proc
        idle = self._idle
        if self.closed or len(idle) >= MAX_IDLE_WORKERS or not self._reuse:
            return None
        task = current_task()
        idle.append(task)

        def abort(_: object) -> Abort:
            idle.remove(task)
            return Abort.SUCCEEDED

        next_proc: Process = await wait_task_rescheduled(abort)
        return next_proc

    async def run(self, fn: Callable[..., Awaitable[T]], *args: Any, **opts: Any) -> T:
        """Run ``fn(*args)`` as a process of this node and return its result.

        Raises the exception the process raised, or ``Exit(reason)`` if it was
        killed with another reason than ``"normal"``.

        Cancellation:
            If the caller is cancelled, the process is killed with
            ``"shutdown"`` and the cancellation propagates.
        """
        done = trio.Event()
        box: list[Any] = []

        def finished(proc: Process, reason: Any, result: Any) -> None:
            box.append((reason, result))
            done.set()

        proc = self.spawn_process(fn, args, hook=finished, **opts)
        try:
            await done.wait()
        except trio.Cancelled:
            proc.kill("shutdown")
            raise
        reason, result = box[0]
        if isinstance(reason, BaseException):
            raise reason
        if type(reason) is str and reason == "normal":
            return result  # type: ignore[no-any-return,unused-ignore]
        raise Exit(reason)

    def process_exited(self, proc: Process, reason: Any, result: Any) -> None:
        """Release what the exiting process held and send its exit and down signals.

        In this order: the process leaves the process table and its name is
        released; its exit hooks run (in the order they were added; one that
        raises is logged and the others still run); then its link exit
        signals and monitor ``Down`` messages go out. So names are released
        before any signal goes out (P12), and whatever the hooks release
        (``NodeVar`` entries, registrations) is gone before anyone hears of
        the exit.
        """
        pid = proc.pid
        del self._procs[pid.id]
        if proc.name is not None:
            del self._names[proc.name]
        if self._unlinking:
            self._unlinking.pop(pid, None)
        proc._waiting = None
        proc.mailbox = None
        proc.aliases = None
        waiters = proc.waiters
        if waiters:  # a wait ends before its task does; this is a safety net
            for waiter in list(waiters.values()):
                if type(waiter) is CallWait:
                    waiter.caller_exited()  # the server's side of the call's monitor
        proc.waiters = None
        hooks = proc.hooks
        if hooks:
            proc.hooks = None
            for hook in hooks:
                try:
                    hook(proc, reason, result)
                except BaseException as exc:  # a hook must not break the exit
                    logger.error(
                        "exit hook %r of process %r raised: %r",
                        hook,
                        pid,
                        exc,
                        exc_info=exc,
                        extra={"beamlet_pid": pid, "beamlet_reason": reason},
                    )
        if proc.links:
            for other in proc.links:
                self.exit_signal(pid, other, reason, link=True)
            proc.links = None
        if proc.monitored_by:
            for ref, (watcher, obj) in proc.monitored_by.items():
                self.send_down(watcher, ref, obj, reason)
            proc.monitored_by = None
        if proc.monitors:
            for ref, target in proc.monitors.items():
                self.drop_monitor(pid, ref, target)
            proc.monitors = None

    # -- messages ------------------------------------------------------------------

    def send(self, sender: Pid | None, dest: Any, msg: Any) -> None:
        """Send ``msg`` to a pid, a registered name or a ``(name, node)`` pair."""
        if type(dest) is Pid:
            if dest.node == self.name or dest.node in self._aliases:
                if dest.creation == self.creation:
                    proc = self._procs.get(dest.id)
                    if proc is not None:
                        proc.deliver(msg)
                return
            self.router.send(sender, dest, msg)
        elif type(dest) is str:
            proc = self._names.get(dest)
            if proc is None:
                raise NoSuchNameError(f"no process is registered as {dest!r}")
            proc.deliver(msg)
        elif type(dest) is tuple and len(dest) == 2:
            name, node = dest
            if not isinstance(name, str) or not isinstance(node, str):
                raise TypeError(f"a (name, node) destination needs two strings, not {dest!r}")
            if not self.is_remote(node):
                proc = self._names.get(name)
                if proc is not None:
                    proc.deliver(msg)
            else:
                self.router.send_named(sender, name, node, msg)
        elif type(dest) is Via:
            proc = via_process(self, dest)
            if proc is None:
                raise NoSuchNameError(f"no process is registered as {dest!r}")
            proc.deliver(msg)
        else:
            raise TypeError(
                f"a destination is a Pid, a registered name or a (name, node) tuple, not {dest!r}"
            )

    def send_quietly(self, sender: Pid | None, dest: Any, msg: Any) -> None:
        """``send`` that never fails on the destination: an unregistered name (or
        via name) or a busy connection drops the message (timers and ``cast`` use it)."""
        try:
            self.send(sender, dest, msg)
        except (NoSuchNameError, BusyError):
            pass
        except ValueError:
            if type(dest) is not Via:  # a via name in a registry with duplicate keys
                raise

    def resolve(self, dest: Any) -> Pid | tuple[str, str] | None:
        """Turn a destination into a pid (local names) or a remote ``(name, node)``."""
        if type(dest) is Pid:
            return dest
        if type(dest) is str:
            proc = self._names.get(dest)
            return proc.pid if proc is not None else None
        if type(dest) is tuple and len(dest) == 2:
            name, node = dest
            if isinstance(name, str) and isinstance(node, str):
                if not self.is_remote(node):
                    proc = self._names.get(name)
                    return proc.pid if proc is not None else None
                return (name, node)
        elif type(dest) is Via:
            proc = via_process(self, dest)
            return proc.pid if proc is not None else None
        raise TypeError(
            f"a destination is a Pid, a registered name or a (name, node) tuple, not {dest!r}"
        )

    # -- names ---------------------------------------------------------------------

    def register(self, name: str, pid: Pid) -> None:
        """Register the local ``pid`` under ``name`` (see ``beamlet.actors.register``)."""
        check_name(name)
        if not isinstance(pid, Pid):
            raise TypeError(f"register() needs a Pid, not {pid!r}")
        if not self.is_local(pid):
            raise ValueError(f"only a local process can be registered; {pid!r} is not local")
        proc = self._procs.get(pid.id)
        if proc is None:
            raise NoProcError(f"cannot register {name!r}: process {pid!r} is not alive")
        if name in self._names:
            raise NameTakenError(f"the name {name!r} is already registered")
        if proc.name is not None:
            raise NameTakenError(f"process {pid!r} is already registered as {proc.name!r}")
        proc.name = name
        self._names[name] = proc

    def unregister(self, name: str) -> None:
        """Remove the name ``name`` (see ``beamlet.actors.unregister``)."""
        proc = self._names.pop(check_name(name), None)
        if proc is None:
            raise NoSuchNameError(f"no process is registered as {name!r}")
        proc.name = None

    def whereis(self, name: str) -> Pid | None:
        """The pid registered under ``name`` here, or None."""
        proc = self._names.get(check_name(name))
        return proc.pid if proc is not None else None

    def registered(self) -> list[str]:
        """The names registered on this node."""
        return list(self._names)

    # -- links and exit signals ----------------------------------------------------

    def link(self, proc: Process, pid: Pid) -> None:
        """Link the local process ``proc`` to ``pid`` (see ``beamlet.actors.link``)."""
        if pid == proc.pid:
            return
        if self.is_remote(pid.node):
            if proc.links is None:
                proc.links = set()
            if pid not in proc.links:
                proc.links.add(pid)
                pending = self._unlinking.get(proc.pid)
                if pending is not None and pid in pending:
                    # Linked again: the old unlink's ack will change nothing.
                    self.remote_unlink_ack(pid, proc.pid, pending[pid])
                self.router.link(proc.pid, pid)
            return
        other = self.lookup(pid)
        if other is None:
            if proc.trap:
                if proc.links is None:
                    proc.links = set()
                proc.links.add(pid)
                proc.exit_signal(pid, "noproc", link=True)
                return
            raise NoProcError(f"cannot link to {pid!r}: no such process")
        if proc.links is None:
            proc.links = set()
        proc.links.add(pid)
        if other.links is None:
            other.links = set()
        other.links.add(proc.pid)

    def unlink(self, proc: Process, pid: Pid) -> None:
        """Remove the link between ``proc`` and ``pid``, if any."""
        if proc.links is None or pid not in proc.links:
            return
        proc.links.discard(pid)
        other = self.lookup(pid)
        if other is not None:
            if other.links is not None:
                other.links.discard(proc.pid)
        elif self.is_remote(pid.node):
            unlink_id = self._next_unlink()
            self._unlinking.setdefault(proc.pid, {})[pid] = unlink_id
            self.router.unlink(proc.pid, pid, unlink_id)

    def exit_signal(self, sender: Pid, dest: Pid, reason: Any, *, link: bool) -> None:
        """Send an exit signal from ``sender`` to ``dest`` (link exit, or ``send_exit``)."""
        if self.is_remote(dest.node):
            self.router.exit(sender, dest, reason, link=link)
        else:
            proc = self.lookup(dest)
            if proc is not None:
                proc.exit_signal(sender, reason, link=link)

    @property
    def system_pid(self) -> Pid:
        """The pid that signals sent from outside any process carry."""
        return self._system_pid

    # -- monitors ------------------------------------------------------------------

    def monitor(self, proc: Process, dest: Any, ref: Ref | None = None) -> Ref:
        """Make ``proc`` monitor ``dest`` (a pid, a name or ``(name, node)``); return the ref.

        ``ref`` tags the monitor (default: a new ref), so a caller may use a
        ref it already holds, e.g. an alias. ``Down(ref, object, reason)``
        reaches ``proc`` when the target exits, at once with ``"noproc"``
        if it does not exist.
        """
        if ref is None:
            ref = self.make_ref()
        target = self.resolve(dest)
        obj: Any = (
            dest
            if type(dest) is Pid or type(dest) is tuple or type(dest) is Via
            else (dest, self.name)
        )
        if target is not None and (not isinstance(target, Pid) or self.is_remote(target.node)):
            # a name on another node, or a remote pid
            if proc.monitors is None:
                proc.monitors = {}
            proc.monitors[ref] = target
            self.router.monitor(proc.pid, target, ref)
            return ref
        other = self.lookup(target) if target is not None else None
        if other is None:
            proc.deliver(Down(ref, obj, "noproc"))
            return ref
        self.watch_local(proc, other, ref, obj)
        return ref

    @staticmethod
    def watch_local(proc: Process, other: Process, ref: Ref, obj: Any) -> None:
        """Record that ``proc`` monitors the local process ``other`` with ``ref``."""
        if proc.monitors is None:
            proc.monitors = {}
        proc.monitors[ref] = other.pid
        if other.monitored_by is None:
            other.monitored_by = {}
        other.monitored_by[ref] = (proc.pid, obj)

    def demonitor(self, proc: Process, ref: Ref, flush: bool = False) -> bool:
        """Stop ``proc``'s monitor ``ref``; with ``flush``, drop its queued ``Down``.

        Returns:
            True if the monitor was still active.
        """
        target = proc.monitors.pop(ref, None) if proc.monitors else None
        if target is not None:
            self.drop_monitor(proc.pid, ref, target)
        if flush:
            proc.flush_down(ref)
        return target is not None

    def drop_monitor(self, watcher: Pid, ref: Ref, target: Any) -> None:
        """Remove the target side of the monitor ``ref`` held by ``watcher``."""
        if type(target) is Pid and not self.is_remote(target.node):
            other = self.lookup(target)
            if other is not None and other.monitored_by:
                other.monitored_by.pop(ref, None)
        else:
            self.router.demonitor(watcher, target, ref)

    def send_down(self, watcher: Pid, ref: Ref, obj: Any, reason: Any) -> None:
        """Deliver ``Down(ref, obj, reason)`` to the monitor ``ref`` of ``watcher``."""
        if self.is_remote(watcher.node):
            self.router.down(watcher, ref, obj, reason)
        else:
            proc = self.lookup(watcher)
            if proc is None:
                return
            if proc.monitors and proc.monitors.pop(ref, None) is not None:
                proc.deliver(Down(ref, obj, reason))
            elif proc.waiters and type(proc.waiters.get(ref)) is CallWait:
                proc.deliver(Down(ref, obj, reason))  # a call's monitor (see ``CallWait``)

    # -- signals from other nodes (called by the router) ------------------------

    def remote_send(self, dest: Pid, msg: Any) -> None:
        """A message for a local pid arrived from another node."""
        if dest.creation == self.creation and (
            dest.node == self.name or dest.node in self._aliases
        ):
            proc = self._procs.get(dest.id)  # ``lookup``, inline: the hot path
            if proc is not None:
                proc.deliver(msg)

    def remote_reply(self, origin: str, dest: Pid | str, msg: Reply) -> bool:
        """A ``Reply`` for a local pid (or name) arrived from the node ``origin``.

        Delivered only when the process has a monitor tagged with the reply's
        ref whose target is on ``origin``: the monitor of a ``call`` to a
        server there, or of a task there whose reply alias the ref is
        (``adopt_task``). The ref alone proves nothing: refs are sequential,
        and a node that has seen one can guess the next; only the node the
        process called can answer the call.

        Returns:
            False when the reply is refused: the process waits for (or holds
            an alias for) that ref, but for another node's, or its own node's,
            process; the router reports it. True otherwise, also when the
            reply is dropped because nobody waits for it any more (a late
            reply, as locally).
        """
        if isinstance(dest, str):
            proc = self._names.get(dest)
        elif dest.creation != self.creation or (
            dest.node != self.name and dest.node not in self._aliases
        ):
            return True
        else:
            proc = self._procs.get(dest.id)  # ``lookup``, inline
        if proc is None:
            return True
        ref = msg.ref
        monitors = proc.monitors
        target = monitors.get(ref) if monitors else None
        if target is not None:
            if (target.node if type(target) is Pid else target[1]) != origin:
                return False
            proc.deliver(msg)
            return True
        waiters = proc.waiters
        aliases = proc.aliases
        # No monitor with that ref: refused if it is awaited all the same (a
        # call to a local server, whose wait is its monitor; a bare alias),
        # else dropped quietly, as ``deliver`` drops a late reply.
        return not ((waiters and ref in waiters) or (aliases and ref in aliases))

    def remote_send_named(self, name: str, msg: Any) -> None:
        """A message for a local name arrived; dropped if the name is unknown (D17)."""
        proc = self._names.get(name)
        if proc is not None:
            proc.deliver(msg)

    def remote_link(self, remote: Pid, local: Pid) -> None:
        """A remote process linked to a local one; answer ``noproc`` if it is gone.

        Ignored while the local process's unlink from ``remote`` is not yet
        acknowledged: the two crossed, and the peer drops its side when the
        unlink reaches it, so both sides end up without the link (D8).
        """
        proc = self.lookup(local)
        if proc is None:
            self.router.exit(local, remote, "noproc", link=True)
            return
        pending = self._unlinking.get(local)
        if pending is not None and remote in pending:
            return
        if proc.links is None:
            proc.links = set()
        proc.links.add(remote)

    def remote_unlink(self, remote: Pid, local: Pid) -> None:
        """A remote process removed its link to a local one (the router acknowledges it)."""
        proc = self.lookup(local)
        if proc is not None and proc.links is not None:
            proc.links.discard(remote)

    def remote_unlink_ack(self, remote: Pid, local: Pid, unlink_id: int) -> None:
        """``remote`` acknowledged the unlink ``unlink_id`` of the local process ``local``."""
        pending = self._unlinking.get(local)
        if pending is not None and pending.get(remote) == unlink_id:
            del pending[remote]
            if not pending:
                del self._unlinking[local]

    def remote_exit(self, sender: Pid, dest: Pid, reason: Any, *, link: bool) -> None:
        """An exit signal for a local process (``link``: because ``sender`` exited)."""
        proc = self.lookup(dest)
        if proc is not None:
            proc.exit_signal(sender, reason, link=link)

    def remote_monitor(self, watcher: Pid, target: Pid | str, ref: Ref) -> None:
        """A remote process monitors a local pid or name."""
        if isinstance(target, str):
            proc = self._names.get(target)
            obj: Any = (target, self.name)
        else:
            proc = self.lookup(target)
            obj = target
        if proc is None:
            self.router.down(watcher, ref, obj, "noproc")
            return
        if proc.monitored_by is None:
            proc.monitored_by = {}
        proc.monitored_by[ref] = (watcher, obj)

    def remote_demonitor(self, target: Pid | str, ref: Ref) -> None:
        """A remote process stopped monitoring a local pid or name."""
        proc = self._names.get(target) if isinstance(target, str) else self.lookup(target)
        if proc is not None and proc.monitored_by:
            proc.monitored_by.pop(ref, None)

    def remote_down(
        self, watcher: Pid, ref: Ref, obj: Any, reason: Any, origin: str | None = None
    ) -> bool:
        """A remote target that a local process monitors has exited.

        With ``origin``, the node the signal came from: it is applied only if
        the monitor's target is on that node (else it is forged, and False is
        returned; the router reports it).
        """
        proc = self.lookup(watcher)
        if proc is None or not proc.monitors:
            return True
        if origin is not None:
            target = proc.monitors.get(ref)
            if target is None:
                return True
            if (target.node if type(target) is Pid else target[1]) != origin:
                return False
        if proc.monitors.pop(ref, None) is not None:
            proc.deliver(Down(ref, obj, reason))
        return True

    def node_down(self, node: str) -> None:
        """The connection to ``node`` is lost: break links and fire monitors (P29)."""
        for local, pending in list(self._unlinking.items()):  # no ack will come
            for remote in [p for p in pending if p.node == node]:
                self.remote_unlink_ack(remote, local, pending[remote])
        for proc in list(self._procs.values()):
            if proc.links:
                for other in [p for p in proc.links if p.node == node]:
                    proc.exit_signal(other, "noconnection", link=True)
            if proc.monitors:
                for ref, target in list(proc.monitors.items()):
                    target_node = target.node if type(target) is Pid else target[1]
                    if target_node == node:
                        del proc.monitors[ref]
                        proc.deliver(Down(ref, target, "noconnection"))
            if proc.monitored_by:
                for ref, (watcher, _obj) in list(proc.monitored_by.items()):
                    if watcher.node == node:
                        del proc.monitored_by[ref]

    # -- introspection -----------------------------------------------------------

    def processes(self) -> list[Pid]:
        """The pids of the live processes of this node."""
        return [proc.pid for proc in self._procs.values()]

    def process_info(self, pid: Pid) -> ProcessInfo | None:
        """A snapshot of the local process ``pid``, or None if it is not alive."""
        proc = self.lookup(pid)
        if proc is None:
            return None
        return ProcessInfo(
            pid=proc.pid,
            name=proc.name,
            status=proc.status,
            message_queue_len=len(proc.mailbox or ()),
            links=tuple(sorted(proc.links or ())),
            monitors=tuple(proc.monitors or ())
            + tuple(ref for ref, w in (proc.waiters or {}).items() if type(w) is CallWait),
            monitored_by=tuple(w for w, _ in (proc.monitored_by or {}).values()),
            trap_exits=proc.trap,
            function=proc.function_name,
            max_mailbox=proc.max_mailbox,
            reductions=proc.reductions,
            memory=proc.memory(),
        )

    # -- lifecycle -------------------------------------------------------------------

    def shutdown(self) -> None:
        """Kill every process with ``"shutdown"`` and stop the node's own tasks."""
        self.closed = True
        for proc in list(self._procs.values()):
            proc.kill("shutdown")
        # Queued processes never get a worker now: they end here, unstarted.
        pending = self._pending
        while pending:
            proc, context = pending.popleft()
            context.run(proc.end_unstarted)
        if self._watchdog is not None:
            self._watchdog.stop()
        self._nursery.cancel_scope.cancel()


@asynccontextmanager
async def open_node(
    *,
    name: str = LOCAL_NODE_NAME,
    watchdog_threshold: float | None = 0.1,
    mailbox_warning: int | None = DEFAULT_MAILBOX_WARNING,
) -> AsyncIterator[Node]:
    """Open a local node inside a running Trio program.

    Example::

        async with open_node() as node:
            result = await node.run(main)

    Args:
        name: the node name; ``"nonode@nohost"`` for a node that is not distributed.
        watchdog_threshold: log any step of a process that blocks the event loop
            longer than this many seconds; ``None`` turns the watchdog off.
        mailbox_warning: log a warning (at most once a minute per process)
            when a mailbox holds more messages than this; the node looks once
            a second. ``None`` turns it off. To bound a mailbox, see
            ``spawn(..., max_mailbox=...)``.

    Yields:
        The ``Node``. Its processes run until the ``async with`` block ends;
        then every remaining process is killed with ``"shutdown"``.

    Raises:
        An exception raised in the ``async with`` block comes out as itself
        (not inside an ``ExceptionGroup``); so does a single failure of the
        node's own tasks. Only several concurrent failures come out as a group.
    """
    check_number(
        watchdog_threshold, "watchdog_threshold", strict=True, optional=True, unit="seconds"
    )
    check_number(mailbox_warning, "mailbox_warning", minimum=1, integer=True, optional=True)
    try:
        async with trio.open_nursery() as nursery:
            node = Node(nursery, name)
            nursery.start_soon(node.timers.run, name=f"beamlet timers {name}")
            if mailbox_warning is not None:
                nursery.start_soon(
                    watch_mailboxes, node, mailbox_warning, name=f"beamlet mailboxes {name}"
                )
            if watchdog_threshold is not None and math.isfinite(watchdog_threshold):
                node._watchdog = Watchdog(node, watchdog_threshold)
                node._watchdog.start()
            token = _node.set(node)
            try:
                yield node
            finally:
                _node.reset(token)
                node.shutdown()
    except BaseExceptionGroup as group:
        # One failure (the block's own exception, or a start-up error) comes
        # out as itself, not inside the nursery's group.
        raise_single(group)
        raise


def run(
    main: Callable[..., Awaitable[T]],
    *args: Any,
    name: str = LOCAL_NODE_NAME,
    watchdog_threshold: float | None = 0.1,
    mailbox_warning: int | None = DEFAULT_MAILBOX_WARNING,
) -> T:
    """Run ``main(*args)`` as the first process of a new local node, and return its result.

    This is the synchronous entry point: it calls ``trio.run``. When ``main``
    returns, every other process of the node is killed with ``"shutdown"``.

    Args:
        main: an async function.
        *args: its arguments.
        name: the node name (as for ``open_node``).
        watchdog_threshold: as for ``open_node``.
        mailbox_warning: as for ``open_node``.

    Returns:
        What ``main`` returned.

    Raises:
        The exception ``main`` raised (as itself, not in an ``ExceptionGroup``),
        or ``Exit(reason)`` if it was killed by an exit signal.
        TypeError: ``main`` is not an async function, or an unknown option.
    """
    check_async(main)

    async def entry() -> T:
        # Capture the outcome inside the node so that main's own exception is
        # raised, not the nursery's exception group around it.
        async with open_node(
            name=name, watchdog_threshold=watchdog_threshold, mailbox_warning=mailbox_warning
        ) as node:
            result = await outcome.acapture(node.run, main, *args)
        return result.unwrap()  # type: ignore[no-any-return,unused-ignore]

    return trio.run(entry)
