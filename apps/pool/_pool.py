"""Pool: a poolboy-style pool of GenServer workers.

A pool keeps ``size`` workers started and lends them out one caller at a
time. The caller checks a worker out, talks to it (``call``), and checks it
back in; a caller that finds every worker busy waits its turn, first come
first served, or gets an *overflow* worker started for it (up to
``max_overflow``; it is stopped when returned with no one waiting).

Example::

    from beamlet.actors import GenServer, call, run
    from beamlet.apps.pool import Pool, checkout, status, transaction

    class Connection(GenServer):
        async def init(self, dsn):
            self.dsn = dsn

        async def handle_call(self, request, caller):
            return f"{self.dsn}: {request}"

    async def main():
        await Pool.start_link("db", worker=Connection, worker_args=("pg://x",), size=2)
        async with checkout("db") as conn:
            assert await call(conn, "SELECT 1") == "pg://x: SELECT 1"
        assert await transaction("db", lambda conn: call(conn, "SELECT 2")) == "pg://x: SELECT 2"
        print(await status("db"))

    run(main)

What a pool guarantees (poolboy's rules, tested against a model of
``poolboy.erl``; the bookkeeping is the pure ``PoolState``):

- **No leaked worker.** ``async with checkout(...)`` checks the worker in
  however the block ends (return, exception, cancellation). A caller that
  dies is monitored: its worker comes back. A caller whose timeout expires,
  or who is cancelled, at the very moment a worker is handed to it, tells
  the pool, which takes the worker back (poolboy's ``cancel_waiting``).
- **Never fewer than ``size`` workers** while the pool runs: a worker that
  crashes is replaced (and handed to the oldest waiter, if any). A
  replacement whose start fails stops the pool with
  ``("worker_start_failed", worker, reason)``, so that its supervisor restarts
  it, or gives up by its restart intensity.
- **Fair.** Waiters are served in the order they asked.

Structure: ``Pool.start_link`` starts the pool's manager, a GenServer that
owns the bookkeeping and is the pool's address (its name is the pool's
name). The manager starts a ``DynamicSupervisor`` linked to it, and the
workers under that supervisor, as temporary children (the manager, not the
supervisor, replaces them). The manager monitors each worker and each
caller. When the manager stops, it stops the workers' supervisor first; if
it crashes, the link takes the workers down with it. So the pool is one
supervision tree, which is started under an application's own tree with
``Pool.child_spec``.

Options: ``size`` (default 5, poolboy's), ``max_overflow`` (default 0:
unlike poolboy's 10, a pool does not grow unless asked), ``strategy``
(``"lifo"``, the default, hands out the most recently returned worker, whose
caches and connections are warm; ``"fifo"`` the least recently returned,
to spread the load).

Timeouts: ``checkout`` waits 5 s by default (``PoolTimeoutError``), ``None``
waits forever; ``checkout(..., block=False)`` raises ``PoolFullError`` at once
instead of waiting. ``transaction`` and ``status`` take ``timeout`` too.

Caller death while a worker is busy: the worker is checked in at once
(poolboy's rule, issue #56). A GenServer serves one message at a time, so
the next caller's requests wait until it has finished the dead caller's
last one; a worker that keeps per-caller state should reset it in
``handle_call`` when it sees a new caller.

Bad input: the manager checks every call, cast and message; a malformed
call is answered with an error, anything else malformed is dropped, and
both are logged through ``BadInputLog`` (at most one line per 10 s).

When not to use it: to limit concurrency of plain code (use a
``trio.CapacityLimiter`` or a ``Semaphore``: a pool exists for workers that
hold something, such as a connection); for CPU-bound work (use ``run_cpu``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Hashable, Mapping
from types import TracebackType
from typing import Any, TypeAlias

import attrs
from beamlet.actors import (
    CallExitError,
    CallTimeoutError,
    Down,
    Exit,
    ExitSignal,
    From,
    GenServer,
    NoReply,
    Pid,
    Ref,
    StartError,
    Stop,
    call,
    cast,
    demonitor,
    monitor,
    reply,
    self_pid,
    spawn,
    stop,
    trap_exits,
    whereis,
)
from beamlet.actors.lowlevel import (
    BadInputLog,
    NodeVar,
    check_timeout,
    current_node,
    short_repr,
)
from beamlet.cluster import message
from beamlet.supervisors import ChildSpec, DynamicSupervisor, Restart, SupervisorError

from ._errors import PoolFullError, PoolTimeoutError, UnknownPoolError
from ._state import (
    Demonitor,
    Effect,
    Grant,
    Monitor,
    PoolState,
    PoolStatus,
    StartWorker,
    StopWorker,
    Strategy,
    check_pool_options,
)

__all__ = ["Pool", "PoolRef", "checkout", "status", "transaction"]

logger = logging.getLogger("beamlet.apps.pool")

#: How to address a pool: its name, its manager's pid, or ``(name, node)``.
PoolRef: TypeAlias = "str | Pid | tuple[str, str]"

#: The pools running on each node: manager pid -> the pool's name (or None).
_POOLS: NodeVar[str | None] = NodeVar("beamlet.apps.pool")

# Status replies may go to a caller on another node.
message(name="beamlet/pool.PoolStatus")(PoolStatus)

#: The reply to a non-blocking checkout of a full pool.
_FULL = "full"
#: The reply to a malformed call: ``(_REFUSED, why)``.
_REFUSED = "beamlet.pool.refused"


# -- the manager ---------------------------------------------------------------------


class _Manager(GenServer):
    """The pool's manager: carries out the effects of its ``PoolState``."""

    async def init(
        self,
        name: str | None,
        spec: ChildSpec,
        worker_name: str,
        size: int,
        max_overflow: int,
        strategy: Strategy,
    ) -> Any:
        trap_exits(True)
        self.pool_name = name
        self.spec = spec
        self.worker_name = worker_name
        self.bad_input = BadInputLog(f"pool {name or self_pid()!r}", logger)
        self.state = PoolState(size, max_overflow, strategy)
        self.pending: dict[Hashable, From] = {}  # checkout token -> the call to answer
        self.caller_monitors: dict[Ref, Hashable] = {}  # monitor ref -> checkout token
        self.caller_refs: dict[Hashable, Ref] = {}  # checkout token -> monitor ref
        self.worker_monitors: dict[Ref, Pid] = {}  # monitor ref -> worker
        self.worker_refs: dict[Pid, Ref] = {}  # worker -> monitor ref
        self.sup = await DynamicSupervisor.start_link()
        try:
            await self.run(self.state.start())
        except Exit as exc:
            return Stop(exc.reason)
        _POOLS.set(name, key=self_pid())
        return None

    # -- effects ------------------------------------------------------------------------

    async def run(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Grant):
                reply(self.pending.pop(effect.checkout), effect.worker)
            elif isinstance(effect, Monitor):
                token = effect.checkout
                ref = monitor(effect.caller)  # type: ignore[arg-type]
                self.caller_monitors[ref] = token
                self.caller_refs[token] = ref
            elif isinstance(effect, Demonitor):
                token = effect.checkout
                self.pending.pop(token, None)
                old = self.caller_refs.pop(token, None)
                if old is not None:
                    del self.caller_monitors[old]
                    demonitor(old, flush=True)
            elif isinstance(effect, StartWorker):
                await self.start_worker(effect.for_)
            elif isinstance(effect, StopWorker):
                self.dismiss(effect.worker)
            else:
                reply(self.pending.pop(effect.checkout), _FULL)

    async def start_worker(self, for_: Hashable | None) -> None:
        """Start a worker; if that fails, the pool stops: it would have too few."""
        try:
            pid = await DynamicSupervisor.start_child(self.sup, self.spec)
        except StartError as exc:
            raise Exit(("worker_start_failed", self.worker_name, exc.reason)) from None
        if not isinstance(pid, Pid):  # a start function that ignored the start
            raise Exit(("worker_start_failed", self.worker_name, ("bad_return", pid)))
        ref = monitor(pid)
        self.worker_monitors[ref] = pid
        self.worker_refs[pid] = ref
        await self.run(self.state.worker_started(pid, for_))

    def dismiss(self, worker: Hashable) -> None:
        """Stop an overflow worker, by its supervisor's shutdown protocol, without waiting."""
        assert isinstance(worker, Pid)
        ref = self.worker_refs.pop(worker)
        del self.worker_monitors[ref]
        demonitor(ref, flush=True)
        spawn(_dismiss, self.sup, worker)

    # -- requests -----------------------------------------------------------------------

    async def handle_call(self, request: Any, caller: From) -> Any:
        if type(request) is tuple and request:
            tag = request[0]
            if tag == "checkout" and len(request) == 3:
                _, token, block = request
                if type(token) is Ref and type(block) is bool:
                    if token in self.state.checkouts or token in self.pending:
                        return self.refuse("call", request, "reused token")
                    self.pending[token] = caller
                    await self.run(self.state.checkout(token, caller.pid, block))
                    return NoReply
            elif tag == "status" and len(request) == 1:
                return self.state.status()
        return self.refuse("call", request, "malformed")

    def refuse(self, kind: str, request: Any, why: str) -> tuple[str, str]:
        self.bad_input.report(kind, request, why)
        return (_REFUSED, f"{why} {kind}: {short_repr(request)}")

    async def handle_cast(self, request: Any) -> None:
        if (
            type(request) is tuple
            and len(request) == 2
            and request[0] in ("checkin", "cancel")
            and type(request[1]) is Ref
        ):
            await self.run(self.state.checkin(request[1]))
            return
        self.bad_input.report("cast", request)

    async def handle_info(self, msg: Any) -> Any:
        kind = type(msg)
        if kind is Down:
            ref = msg.ref
            token = self.caller_monitors.pop(ref, None)
            if token is not None:
                del self.caller_refs[token]
                self.pending.pop(token, None)
                await self.run(self.state.caller_down(token))
                return None
            worker = self.worker_monitors.pop(ref, None)
            if worker is not None:
                del self.worker_refs[worker]
                await self.run(self.state.worker_down(worker))
                return None
        elif kind is ExitSignal and msg.pid == self.sup:
            return Stop(("shutdown", ("worker_supervisor_down", msg.reason)))
        self.bad_input.report("message", msg, "unexpected")
        return None

    async def terminate(self, reason: Any) -> None:
        # Stop the workers (in parallel, each by its shutdown) before the pool exits.
        try:
            await stop(self.sup, "shutdown")
        except CallExitError:
            pass  # the supervisor was already gone


async def _dismiss(sup: Pid, worker: Pid) -> None:
    try:
        await DynamicSupervisor.terminate_child(sup, worker)
    except SupervisorError:
        pass  # already gone, or the pool is stopping


# -- starting ------------------------------------------------------------------------


def _worker_spec(worker: object, worker_args: object) -> tuple[ChildSpec, str]:
    """The workers' child spec (temporary: the manager replaces them) and their name."""
    if not isinstance(worker_args, tuple | list):
        raise TypeError(f"a pool's worker_args must be a tuple or a list, not {worker_args!r}")
    if isinstance(worker, type) and issubclass(worker, GenServer):
        spec = ChildSpec.coerce(worker.child_spec(*worker_args, restart="temporary"))
        return spec, worker.__qualname__
    if isinstance(worker, ChildSpec | Mapping):
        if worker_args:
            raise TypeError(
                "a pool's worker_args go with a GenServer class; a child spec carries its own args"
            )
        spec = ChildSpec.coerce(worker)
        shown = spec.id.__qualname__ if isinstance(spec.id, type) else repr(spec.id)
        return attrs.evolve(spec, restart="temporary"), shown
    raise TypeError(f"a pool's worker must be a GenServer subclass or a child spec, not {worker!r}")


def _check_name(name: object) -> None:
    if name is not None and not isinstance(name, str):
        raise TypeError(f"a pool's name must be a str or None, not {name!r}")


def _options(
    name: object,
    worker: object,
    worker_args: object,
    size: object,
    max_overflow: object,
    strategy: object,
) -> tuple[Any, ...]:
    _check_name(name)
    check_pool_options(size, max_overflow, strategy)
    spec, worker_name = _worker_spec(worker, worker_args)
    return (name, spec, worker_name, size, max_overflow, strategy)


async def _start(args: tuple[Any, ...]) -> Pid:
    name = args[0]
    try:
        pid = await _Manager.start_link(*args, name=name)
    except StartError as exc:
        reason = exc.reason
        if type(reason) is tuple and len(reason) == 3 and reason[0] == "worker_start_failed":
            shown = f"worker {reason[1]} of pool {name!r}" if name else f"worker {reason[1]}"
            raise StartError(reason[2], shown) from None
        raise StartError(reason, "Pool", name) from None
    assert pid is not None
    return pid


@attrs.frozen
class _StartPool:
    """The start function of ``Pool.child_spec``."""

    async def __call__(self, *args: Any) -> Pid:
        return await _start(args)


class Pool:
    __doc__ = __doc__  # the behaviour's documentation (the module docstring above)

    @staticmethod
    async def start_link(
        name: str | None = None,
        *,
        worker: type[GenServer] | ChildSpec | Mapping[str, Any],
        worker_args: tuple[Any, ...] | list[Any] = (),
        size: int = 5,
        max_overflow: int = 0,
        strategy: Strategy = "lifo",
    ) -> Pid:
        """Start a pool linked to the calling process; return once its workers run.

        Args:
            name: register the pool under this name (its address for
                ``checkout``); None for a pool known by its pid only.
            worker: a ``GenServer`` subclass, started as
                ``worker.start_link(*worker_args)``; or a child spec (a
                ``ChildSpec`` or a mapping), whose start function links the
                worker to its caller.
            worker_args: the arguments of the workers' ``init``.
            size: workers kept at all times (int >= 1).
            max_overflow: extra workers started when all are busy, stopped
                when returned with no one waiting (int >= 0).
            strategy: ``"lifo"`` or ``"fifo"``.

        Returns:
            The pid of the pool's manager.

        Raises:
            TypeError / ValueError: a bad option, named.
            StartError: a worker failed to start (``what`` names it, ``reason``
                is why), or the name is taken. As for ``GenServer.start_link``,
                the pool's exit signal also reaches the caller, which dies with
                it unless it traps exits.

        Cancellation:
            If cancelled while the workers start, the pool is killed.
        """
        return await _start(_options(name, worker, worker_args, size, max_overflow, strategy))

    @staticmethod
    def child_spec(
        name: str | None = None,
        *,
        worker: type[GenServer] | ChildSpec | Mapping[str, Any],
        worker_args: tuple[Any, ...] | list[Any] = (),
        size: int = 5,
        max_overflow: int = 0,
        strategy: Strategy = "lifo",
        id: Hashable = None,
        restart: Restart = "permanent",
    ) -> ChildSpec:
        """The spec that runs a pool under a supervisor (options as ``start_link``).

        Args:
            id: the child id (default: ``("Pool", name)``).
            restart: the pool's restart type (default ``"permanent"``).

        The pool is a ``"supervisor"`` child with shutdown ``"infinity"``: it
        stops its workers, each by its own shutdown, before it exits.
        """
        args = _options(name, worker, worker_args, size, max_overflow, strategy)
        return ChildSpec(
            ("Pool", name) if id is None else id,
            _StartPool(),
            args=args,
            restart=restart,
            shutdown="infinity",
            type="supervisor",
        )

    @staticmethod
    async def stop(pool: PoolRef, reason: Any = "normal", timeout: float | None = None) -> None:
        """Stop the pool: its workers stop (in parallel, each by its shutdown), then it exits.

        Raises:
            UnknownPoolError: no such pool.
            CallExitError / CallTimeoutError: as ``beamlet.actors.stop``.
        """
        await stop(_resolve(pool), reason, timeout)


# -- the client side -----------------------------------------------------------------


def _resolve(pool: object) -> Pid | tuple[str, str]:
    """The manager to talk to; ``UnknownPoolError`` if ``pool`` is no pool of this node."""
    if type(pool) is str:
        pid = whereis(pool)
        if pid is None:
            raise UnknownPoolError(pool)
    elif type(pool) is Pid:
        pid = pool
    elif type(pool) is tuple and len(pool) == 2 and all(type(x) is str for x in pool):
        node = current_node()
        if pool[1] != node.name:
            return pool  # a pool on another node: its manager checks what it gets
        return _resolve(pool[0])
    else:
        raise TypeError(f"a pool is a name, a pid or (name, node), not {pool!r}")
    node = current_node()
    if node.is_local(pid) and _POOLS.get(key=pid, default=False) is False:
        raise UnknownPoolError(pool, "it is not a pool (or no longer runs)")
    return pid


def _refusal(pool: object, answer: Any) -> Exception:
    why = answer[1] if type(answer) is tuple and len(answer) == 2 else repr(answer)
    return RuntimeError(f"pool {pool!r} refused the request: {why}")


class _Checkout:
    """The async context manager that ``checkout`` returns."""

    __slots__ = ("block", "manager", "pool", "timeout", "token")

    def __init__(
        self, manager: Pid | tuple[str, str], pool: object, timeout: float | None, block: bool
    ) -> None:
        self.manager = manager
        self.pool = pool
        self.timeout = timeout
        self.block = block
        self.token: Ref | None = None

    async def __aenter__(self) -> Pid:
        if self.token is not None:
            raise RuntimeError("a checkout() is entered once; call checkout() again")
        manager = self.manager
        token = self.token = current_node().make_ref()
        try:
            answer = await call(manager, ("checkout", token, self.block), self.timeout)
        except CallTimeoutError:
            cast(manager, ("cancel", token))
            raise PoolTimeoutError(self.pool, self.timeout) from None
        except CallExitError as exc:
            if exc.reason == "noproc":
                raise UnknownPoolError(self.pool, "its manager has exited") from None
            raise
        except BaseException:
            # Cancelled (or an exit signal) while waiting: the pool may have
            # granted a worker at this very moment; it takes it back.
            cast(manager, ("cancel", token))
            raise
        if type(answer) is Pid:
            return answer
        if answer == _FULL:
            raise PoolFullError(self.pool)
        raise _refusal(self.pool, answer)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        cast(self.manager, ("checkin", self.token))


def checkout(pool: PoolRef, timeout: float | None = 5.0, *, block: bool = True) -> _Checkout:
    """Borrow a worker: ``async with checkout(pool) as pid:``.

    The worker is the caller's alone until the block ends, however it ends;
    then it is checked back in. The calling process is monitored meanwhile:
    if it dies, the worker is checked in.

    Args:
        pool: the pool's name, its pid, or ``(name, node)``.
        timeout: seconds to wait for a worker (``None``: forever).
        block: ``False`` raises ``PoolFullError`` at once when no worker is
            ready and no overflow is left, instead of waiting.

    Returns:
        An async context manager whose value is the worker's pid.

    Raises:
        UnknownPoolError: no pool runs under ``pool`` (raised at once).
        TypeError / ValueError: a bad ``pool``, ``timeout`` or ``block``.
        PoolTimeoutError: no worker within ``timeout`` (on entering the block).
        PoolFullError: ``block=False`` and the pool is full.
        CallExitError: the pool exited while the caller waited.
        NotInProcessError: called outside a process.

    Cancellation:
        Waiting for a worker is a checkpoint. A caller cancelled (or timed
        out) just as a worker was handed to it never holds it: the pool is
        told, and takes the worker back.
    """
    check_timeout(timeout)
    if type(block) is not bool:
        raise TypeError(f"checkout's block must be True or False, not {block!r}")
    return _Checkout(_resolve(pool), pool, timeout, block)


async def transaction(
    pool: PoolRef,
    fn: Callable[..., Awaitable[Any]],
    *args: Any,
    timeout: float | None = 5.0,
) -> Any:
    """Run ``await fn(worker, *args)`` with a worker checked out, and return its result.

    The worker is checked in however ``fn`` ends (poolboy's ``transaction``).

    Args:
        pool: as for ``checkout``.
        fn: an async callable taking the worker's pid first.
        timeout: seconds to wait for a worker (not a bound on ``fn``).

    Raises:
        What ``checkout`` raises, and what ``fn`` raises.

    Cancellation:
        As ``checkout``; ``fn`` runs in the caller and is cancelled with it.
    """
    if not callable(fn):
        raise TypeError(f"transaction() needs an async callable, not {fn!r}")
    async with checkout(pool, timeout) as worker:
        return await fn(worker, *args)


async def status(pool: PoolRef, timeout: float | None = 5.0) -> PoolStatus:
    """The pool's counts: ``PoolStatus(ready, busy, overflow, waiting)``.

    Raises:
        UnknownPoolError: no such pool.
        CallTimeoutError: no answer within ``timeout``.
    """
    check_timeout(timeout)
    manager = _resolve(pool)
    try:
        answer = await call(manager, ("status",), timeout)
    except CallExitError as exc:
        if exc.reason == "noproc":
            raise UnknownPoolError(pool, "its manager has exited") from None
        raise
    if type(answer) is not PoolStatus:
        raise _refusal(pool, answer)
    return answer
