"""Supervisor: a process that starts, watches and restarts other processes.

A supervisor starts its children in order, links to them and traps exits.
When a child exits, the supervisor decides from the child's ``restart`` type
whether it must come back and, if so, restarts it (and, depending on the
strategy, some of its siblings). Restarts are limited: more than
``max_restarts`` within ``max_seconds`` and the supervisor gives up, stops
all its children and exits with ``"shutdown"``, so that *its* supervisor
can react. Supervisors of supervisors make a supervision tree.

Example::

    from beamlet.actors import CallExitError, GenServer, call, run
    from beamlet.supervisors import Supervisor

    class Stack(GenServer):
        async def init(self, items):
            self.items = list(items)

        async def handle_call(self, request, caller):
            return self.items.pop()          # popping an empty stack crashes the server

    async def main():
        sup = await Supervisor.start_link([Stack.child_spec(["hello"], name="stack")])
        assert await call("stack", "pop") == "hello"
        try:
            await call("stack", "pop")       # IndexError: the server crashes...
        except CallExitError:
            pass
        await Supervisor.which_children(sup)  # ...and has been restarted by now
        assert await call("stack", "pop") == "hello"

    run(main)

Callbacks (module-based supervisors only): subclass ``Supervisor`` and define
``async def init(self, *args)``, run in the new supervisor process. It returns:

- ``SupervisorSpec(children, strategy=..., max_restarts=..., max_seconds=...)``
  to start those children;
- ``Ignore`` (from ``beamlet.actors``): ``start_link`` returns ``None`` and the
  supervisor exits ``"normal"``.

Anything else fails the start with ``("bad_return", (cls, "init", value))``; an
exception fails it with the exception. Start such a supervisor with
``await MyTree.start_link(*args, name=...)`` and nest it with
``MyTree.child_spec(*args, id=...)``. Without a subclass, ``Supervisor.start_link``
takes the children and options directly.

Options:

- ``strategy``: ``"one_for_one"`` (restart the child that exited),
  ``"one_for_all"`` (stop all others in reverse order, then start all in
  order), ``"rest_for_one"`` (stop and restart the children started after it);
- ``max_restarts`` (default 3, Elixir's) and ``max_seconds`` (default 5.0): the
  restart intensity; see ``_intensity`` for the exact rule (exact float
  seconds, not OTP's whole seconds);
- ``name``: register the supervisor under this name.

Start and shutdown: ``start_link`` returns once every child has started, in
order. If one fails, those already started are stopped in reverse order and
``start_link`` raises ``StartError(("shutdown", ("failed_to_start_child", id,
reason)))``; the supervisor exits with that reason, which also reaches the
linked caller (trap exits to survive it). When the supervisor's parent sends
it an exit signal (``"shutdown"`` from its own supervisor), or ``stop`` is
called, it stops its children in reverse start order, each by the shutdown
protocol of its ``shutdown`` value, then exits with that reason.

Timeouts: the calls (``which_children``, ``start_child``, ...) wait as long
as the supervisor takes, as in OTP; they raise ``SupervisorError("noproc")``
when it does not exist. ``shutdown`` values bound how long stopping a child
takes: after that many seconds the child is killed.

Exit reasons and restarts: a ``"permanent"`` child is restarted whatever its
reason; a ``"transient"`` one unless it exited ``"normal"``, ``"shutdown"`` or
``("shutdown", detail)``; a ``"temporary"`` one never. Every exit other than
those three (and every exit of a permanent child) is logged as
``child_terminated``. A restart whose start fails marks the child
``"restarting"`` and is retried through a message the supervisor sends itself,
so it keeps answering calls meanwhile; every retry counts against the
intensity. When the intensity is exceeded the supervisor logs
``reached_max_restart_intensity``, stops the children in reverse order and
exits ``"shutdown"``.

Registered names: a restarted child is registered under its name by its start
function (``worker(..., name=)``, ``GenServer.child_spec(..., name=)``) before
that function returns, and the supervisor handles a child's exit before any
request made after the exit could be observed (the exit signal is queued in
the supervisor's mailbox as part of the child's exit, before the child's
monitors fire). So once anyone has seen the old child's ``Down``, a call to
the supervisor (``which_children`` for instance) returns only after the
restart, and from then on the name reaches the new child. A bare ``send`` to
the name in the same scheduling round as the ``Down`` may still find the name
free, as ``whereis`` may return ``undefined`` in Erlang at that point.

When not to use it: for processes whose lifetime is tied to one request or
one caller (use tasks or links); for many children started on demand (use
``DynamicSupervisor``); to retry an operation that fails for a reason a
restart cannot fix (a missing configuration restarts until the intensity
runs out).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any, Protocol, cast, overload

import attrs
import trio
from beamlet.actors import (
    ExitSignal,
    GenServer,
    Ignore,
    Pid,
    StartError,
    Stop,
    self_pid,
    send,
    stop,
    trap_exits,
)
from beamlet.actors.lowlevel import current_node, is_clean_exit

from ._common import (
    ChildCounts,
    ChildInfo,
    Refused,
    StartFailed,
    StartResult,
    SupRef,
    TryAgain,
    call_supervisor,
    invoke_start,
    let_others_in,
    start_result,
    well_formed_call,
)
from ._intensity import RestartIntensity, check_intensity
from ._plan import Strategy, check_strategy, plan_restart
from ._reports import Reporter
from ._shutdown import shutdown_children
from ._spec import ChildLike, ChildSpec, Restart, Shutdown, specs_of

__all__ = ["Supervisor", "SupervisorSpec"]


@attrs.frozen(init=False)
class SupervisorSpec:
    """The children and flags of a supervisor, validated.

    Module-based supervisors return one from ``init``; ``Supervisor.start_link``
    builds one from its arguments.

    Args:
        children: the child specs, in start order (anything
            ``ChildSpec.coerce`` accepts).
        strategy: ``"one_for_one"``, ``"one_for_all"`` or ``"rest_for_one"``.
        max_restarts: restarts allowed within ``max_seconds`` (int >= 0).
        max_seconds: the intensity window in seconds (> 0).

    Raises:
        TypeError / ValueError: an invalid option or child spec, or two
            children with the same id (``duplicate child id``).
    """

    children: tuple[ChildSpec, ...]
    strategy: Strategy
    max_restarts: int
    max_seconds: float

    def __init__(
        self,
        children: Iterable[ChildLike],
        strategy: Strategy = "one_for_one",
        max_restarts: int = 3,
        max_seconds: float = 5.0,
    ) -> None:
        specs = specs_of(children)
        check_strategy(strategy)
        check_intensity(max_restarts, max_seconds)
        seen: set[Hashable] = set()
        for spec in specs:
            if spec.id in seen:
                raise ValueError(f"duplicate child id {spec.id!r} in a supervisor's children")
            seen.add(spec.id)
        self.__attrs_init__(tuple(specs), strategy, max_restarts, max_seconds)


class _Child:
    """The supervisor's record of one child."""

    __slots__ = ("pid", "restarting", "spec")

    def __init__(self, spec: ChildSpec, pid: Pid | None) -> None:
        self.spec = spec
        self.pid = pid
        self.restarting = False


class _Server(GenServer):
    """The supervisor process."""

    children: dict[Hashable, _Child]  # in start order
    by_pid: dict[Pid, _Child]

    async def init(self, *args: Any) -> Any:
        module, init_args, name = args
        trap_exits(True)
        instance = module.__new__(module)
        result = await instance.init(*init_args)
        if result is Ignore:
            return Ignore
        if not isinstance(result, SupervisorSpec):
            return Stop(("bad_return", (module, "init", result)))
        self.report = Reporter(self_pid(), name)
        self.strategy = result.strategy
        self.intensity = RestartIntensity(result.max_restarts, result.max_seconds)
        self.children = {}
        self.by_pid = {}
        for spec in result.children:
            ok, pid, _info = await invoke_start(spec.start, spec.args)
            if not ok:
                self.report.start_error(spec.id, None, pid)
                await self.terminate("shutdown")
                return Stop(("shutdown", ("failed_to_start_child", spec.id, pid)))
            self.add(spec, pid)
        return None

    # -- bookkeeping -------------------------------------------------------------------

    def add(self, spec: ChildSpec, pid: Pid | None) -> None:
        if spec.restart == "temporary":
            if pid is None:
                return  # an ignored temporary child is not kept (S5)
            if spec.args:
                spec = attrs.evolve(spec, args=())  # never restarted: do not keep its args
        child = _Child(spec, pid)
        self.children[spec.id] = child
        if pid is not None:
            self.by_pid[pid] = child
            self.report.started(spec.id, pid)

    def forget(self, child: _Child) -> None:
        """OTP's ``del_child``: a temporary child goes, others stay without a process."""
        child.restarting = False
        if child.pid is not None:
            self.by_pid.pop(child.pid, None)
            child.pid = None
        if child.spec.restart == "temporary":
            del self.children[child.spec.id]

    async def stop_child(self, child: _Child) -> None:
        pid = child.pid
        if pid is None:
            return
        del self.by_pid[pid]
        child.pid = None
        for _pid, spec, reason in await shutdown_children([(pid, child.spec)]):
            self.report.shutdown_error(spec.id, pid, reason)

    async def terminate(self, reason: Any) -> None:
        for child in reversed(list(self.children.values())):
            await self.stop_child(child)

    # -- exits and restarts ------------------------------------------------------------

    async def handle_cast(self, request: Any) -> None:
        # As OTP's supervisor: a cast is no request it serves; log it and go on.
        self.report.bad_input("cast", request, "unexpected")

    async def handle_info(self, msg: Any) -> Any:
        kind = type(msg)
        if kind is ExitSignal:
            child = self.by_pid.pop(msg.pid, None)
            if child is None:
                return None  # not (or no longer) a child: e.g. one stopped and flushed
            child.pid = None
            return await self.child_exited(child, msg.pid, msg.reason)
        if kind is TryAgain:
            child = self.children.get(msg.key)
            if child is not None and child.restarting:
                return await self.restart(child, None, "restarting")
            return None
        self.report.bad_input("message", msg, "unexpected")
        return None

    async def child_exited(self, child: _Child, pid: Pid, reason: Any) -> Any:
        restart = child.spec.restart
        if restart == "permanent":
            self.report.child_terminated(child.spec.id, pid, reason)
            return await self.restart(child, pid, reason)
        if is_clean_exit(reason):
            self.forget(child)
            return None
        self.report.child_terminated(child.spec.id, pid, reason)
        if restart == "transient":
            return await self.restart(child, pid, reason)
        self.forget(child)
        return None

    async def restart(self, child: _Child, pid: Pid | None, reason: Any) -> Any:
        if not self.intensity.add_restart(trio.current_time()):
            self.report.escalated(
                child.spec.id,
                pid,
                reason,
                self.intensity.max_restarts,
                self.intensity.max_seconds,
            )
            self.forget(child)
            return Stop("shutdown")
        if self.strategy == "one_for_one":
            failed = await self.start_again(child)
        else:
            failed = await self.restart_group(child)
        if failed is not None:
            await let_others_in()
            send(self.report.pid, TryAgain(failed))
        return None

    async def restart_group(self, child: _Child) -> Hashable | None:
        children = self.children
        plan = plan_restart(
            self.strategy,
            list(children),
            child.spec.id,
            running={key for key, c in children.items() if c.pid is not None},
            temporary={key for key, c in children.items() if c.spec.restart == "temporary"},
        )
        for key in plan.stop:
            await self.stop_child(children[key])
        for key in plan.remove:
            del children[key]
        for key in plan.start:
            failed = await self.start_again(children[key])
            if failed is not None:
                return failed
        return None

    async def start_again(self, child: _Child) -> Hashable | None:
        """Start a child that is not running; on failure mark it restarting and return its id."""
        spec = child.spec
        ok, pid, _info = await invoke_start(spec.start, spec.args)
        if not ok:
            self.report.start_error(spec.id, None, pid)
            child.restarting = True
            return spec.id
        child.restarting = False
        if pid is not None:
            child.pid = pid
            self.by_pid[pid] = child
            self.report.restarted(spec.id, pid)
        return None

    # -- requests ----------------------------------------------------------------------

    async def handle_call(self, request: Any, caller: Any) -> Any:
        if not well_formed_call(request):
            self.report.bad_input("call", request)
            return Refused(("bad_call", request))
        tag = request[0]
        if tag == "which_children":
            return [
                ChildInfo(key, "restarting" if c.restarting else c.pid, c.spec.type)
                for key, c in self.children.items()
            ]
        if tag == "count_children":
            return self.count()
        if tag == "start_child":
            return await self.start_new(request[1])
        if tag == "terminate_child":
            child = self.children.get(request[1])
            if child is None:
                return Refused("not_found")
            await self.stop_child(child)
            self.forget(child)
            return None
        if tag == "restart_child":
            return await self.restart_stopped(request[1])
        if tag == "delete_child":
            child = self.children.get(request[1])
            if child is None:
                return Refused("not_found")
            if child.restarting:
                return Refused("restarting")
            if child.pid is not None:
                return Refused("running")
            del self.children[request[1]]
            return None
        return Refused(("bad_call", request))

    def count(self) -> ChildCounts:
        node = current_node()
        active = supervisors = 0
        for child in self.children.values():
            if child.pid is not None and node.is_alive(child.pid):
                active += 1
            if child.spec.type == "supervisor":
                supervisors += 1
        specs = len(self.children)
        return ChildCounts(specs, active, supervisors, specs - supervisors)

    async def start_new(self, spec: ChildSpec) -> Any:
        existing = self.children.get(spec.id)
        if existing is not None:
            if existing.pid is not None:
                return Refused(("already_started", existing.pid))
            return Refused("already_present")
        ok, pid, info = await invoke_start(spec.start, spec.args)
        if not ok:
            return StartFailed(pid)
        self.add(spec, pid)
        return start_result(pid, info)

    async def restart_stopped(self, key: Hashable) -> Any:
        child = self.children.get(key)
        if child is None:
            return Refused("not_found")
        if child.restarting:
            return Refused("restarting")
        if child.pid is not None:
            return Refused("running")
        spec = child.spec
        ok, pid, info = await invoke_start(spec.start, spec.args)
        if not ok:
            return StartFailed(pid)
        if pid is not None:
            child.pid = pid
            self.by_pid[pid] = child
            self.report.started(spec.id, pid)
        return start_result(pid, info)


@attrs.frozen
class _StartSupervisor:
    """The start function of a supervisor's child spec."""

    module: type[Supervisor]
    name: str | None

    async def __call__(self, *init_args: Any) -> Pid | None:
        return await self.module._start(init_args, self.name)


class _NeverIgnores(Protocol):
    """A supervisor class whose ``init`` cannot return ``Ignore`` (for typing ``start_link``)."""

    async def init(self, *args: Any, **kwargs: Any) -> SupervisorSpec: ...


class Supervisor:
    __doc__ = __doc__  # the behaviour's documentation (the module docstring above)

    async def init(self, *args: Any) -> Any:
        """Return the ``SupervisorSpec`` of a module-based supervisor, or ``Ignore``.

        Override it in a subclass; it runs in the new supervisor process. The
        base class is used by ``Supervisor.start_link(children, ...)``.
        """
        if len(args) == 1 and isinstance(args[0], SupervisorSpec):
            return args[0]
        raise TypeError(
            f"{type(self).__name__} must define `async def init(self, ...)` "
            "returning a SupervisorSpec (or Ignore)"
        )

    @classmethod
    def _init_args(cls, args: tuple[Any, ...], flags: dict[str, Any]) -> tuple[Any, ...]:
        if cls.init is Supervisor.init:
            return (SupervisorSpec(*args, **flags),)
        if flags:
            raise TypeError(
                f"{cls.__name__} gets its flags from its init(), not from "
                f"{', '.join(sorted(flags))}"
            )
        return args

    @classmethod
    async def _start(cls, init_args: tuple[Any, ...], name: str | None) -> Pid | None:
        try:
            return await _Server.start_link(cls, init_args, name, name=name)
        except StartError as exc:  # name the supervisor, not its server class
            raise StartError(exc.reason, cls.__qualname__, name) from None

    @overload
    @classmethod
    async def start_link(
        cls,
        children: Iterable[ChildLike],
        strategy: Strategy = "one_for_one",
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        name: str | None = None,
    ) -> Pid: ...

    @overload
    @classmethod
    async def start_link(cls: type[_NeverIgnores], *args: Any, name: str | None = None) -> Pid: ...

    @overload
    @classmethod
    async def start_link(cls, *args: Any, name: str | None = None) -> Pid | None: ...

    @classmethod
    async def start_link(cls, *args: Any, name: str | None = None, **flags: Any) -> Pid | None:
        """Start a supervisor linked to the calling process; return after its children started.

        ``Supervisor.start_link(children, strategy=..., max_restarts=...,
        max_seconds=..., name=...)`` supervises ``children``; for a subclass,
        ``MyTree.start_link(*args, name=...)`` passes ``args`` to its ``init``.

        Args:
            children: the child specs, in start order.
            strategy: ``"one_for_one"``, ``"one_for_all"`` or ``"rest_for_one"``.
            max_restarts: restarts allowed within ``max_seconds`` (default 3).
            max_seconds: the intensity window in seconds (default 5.0).
            name: register the supervisor under this name.

        Returns:
            The supervisor's pid (``None`` if a subclass's ``init`` returned
            ``Ignore``). For type checkers it is a ``Pid``, unless a subclass's
            ``init`` return type admits ``IgnoreType`` (then ``Pid | None``).

        Raises:
            TypeError / ValueError: invalid options or child specs (before
                anything starts).
            StartError: a child failed to start
                (``reason == ("shutdown", ("failed_to_start_child", id, why))``),
                the name is taken (``("already_started", pid)``), or a
                subclass's ``init`` failed.

        Cancellation:
            If cancelled while the children start, the supervisor is killed.
        """
        return await cls._start(cls._init_args(args, flags), name)

    @classmethod
    def child_spec(
        cls,
        *args: Any,
        id: Hashable = None,
        name: str | None = None,
        restart: Restart = "permanent",
        shutdown: Shutdown = "infinity",
        **flags: Any,
    ) -> ChildSpec:
        """The spec that runs this supervisor under another one (``type="supervisor"``).

        ``Supervisor.child_spec(children, strategy=..., id=...)`` or, for a
        subclass, ``MyTree.child_spec(*init_args, id=...)``. The children and
        flags are validated now.

        Args:
            id: the child id (default: the class).
            name: register the supervisor under this name.
            restart: its restart type in the parent (default ``"permanent"``).
            shutdown: default ``"infinity"``: a supervisor needs the time its
                own children's shutdowns take.
        """
        return ChildSpec(
            cast(Hashable, cls) if id is None else id,
            _StartSupervisor(cls, name),
            args=cls._init_args(args, flags),
            restart=restart,
            shutdown=shutdown,
            type="supervisor",
        )

    @staticmethod
    async def which_children(sup: SupRef) -> list[ChildInfo]:
        """Every child, in start order: its id, pid (or ``"restarting"`` / ``None``) and type.

        Raises:
            SupervisorError: ``"noproc"`` if the supervisor does not exist.
        """
        result: list[ChildInfo] = await call_supervisor(sup, ("which_children",))
        return result

    @staticmethod
    async def count_children(sup: SupRef) -> ChildCounts:
        """Count the children: specs, active processes, supervisors and workers.

        Raises:
            SupervisorError: ``"noproc"`` if the supervisor does not exist.
        """
        result: ChildCounts = await call_supervisor(sup, ("count_children",))
        return result

    @staticmethod
    async def start_child(sup: SupRef, child: ChildLike) -> StartResult:
        """Add a child at the end of the start order, and start it.

        Returns:
            Its pid; ``(pid, info)`` if its start function returned that;
            ``None`` if it ignored the start (a non-temporary spec is kept).

        Raises:
            SupervisorError: ``("already_started", pid)`` if a running child
                has this id, ``"already_present"`` if a stopped one has;
                ``"noproc"``.
            StartError: the start function failed (``reason`` says why).
            TypeError / ValueError: an invalid spec.
        """
        spec = ChildSpec.coerce(child)
        result: StartResult = await call_supervisor(sup, ("start_child", spec))
        return result

    @staticmethod
    async def terminate_child(sup: SupRef, id: Hashable) -> None:
        """Stop the child ``id`` by its shutdown protocol; keep its spec (unless temporary).

        Stopping a child that is not running (or is being restarted) succeeds.

        Raises:
            SupervisorError: ``"not_found"``; ``"noproc"``.
        """
        await call_supervisor(sup, ("terminate_child", id))

    @staticmethod
    async def restart_child(sup: SupRef, id: Hashable) -> StartResult:
        """Start again a child that is stopped (its spec still present).

        Returns:
            As ``start_child``.

        Raises:
            SupervisorError: ``"running"``, ``"restarting"``, ``"not_found"``, ``"noproc"``.
            StartError: its start function failed.
        """
        result: StartResult = await call_supervisor(sup, ("restart_child", id))
        return result

    @staticmethod
    async def delete_child(sup: SupRef, id: Hashable) -> None:
        """Forget the spec of a stopped child.

        Raises:
            SupervisorError: ``"running"``, ``"restarting"``, ``"not_found"``, ``"noproc"``.
        """
        await call_supervisor(sup, ("delete_child", id))

    @staticmethod
    async def stop(sup: SupRef, reason: Any = "normal", timeout: float | None = None) -> None:
        """Stop the supervisor: its children stop in reverse order, then it exits with ``reason``.

        Raises:
            CallExitError: the supervisor does not exist or exited otherwise.
            CallTimeoutError: it took longer than ``timeout``.
        """
        await stop(sup, reason, timeout)
