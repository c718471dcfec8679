"""DynamicSupervisor: a supervisor that starts children on demand.

It starts with no children; ``start_child`` adds one at a time, and children
are identified by pid (their ids are ignored, so duplicates are fine). The
only strategy is one-for-one. It suits many children of the same kind that
come and go: connections, sessions, jobs.

Example::

    from beamlet.actors import receive, run
    from beamlet.supervisors import DynamicSupervisor, worker

    async def session(user):
        while True:
            await receive()

    async def main():
        sup = await DynamicSupervisor.start_link(max_children=1000)
        alice = await DynamicSupervisor.start_child(sup, worker(session, "alice"))
        bob = await DynamicSupervisor.start_child(sup, worker(session, "bob"))
        assert (await DynamicSupervisor.count_children(sup)).active == 2
        await DynamicSupervisor.terminate_child(sup, alice)

    run(main)

Options:

- ``max_children``: ``start_child`` raises ``SupervisorError("max_children")``
  once this many children (running or being restarted) are present;
- ``max_restarts`` / ``max_seconds``: the restart intensity, as for ``Supervisor``;
- ``extra_arguments``: prepended to the ``args`` of every child's start function;
- ``name``: register the supervisor under this name.

Start and shutdown: ``start_link`` returns at once (there are no children).
When the supervisor stops, it stops all its children *at the same time*
(S23): each gets its exit signal at once, one deadline runs per distinct
shutdown value, and the children still alive when it passes are killed. So
stopping N children takes about the longest shutdown time, not the sum.

Exit reasons and restarts: as for ``Supervisor`` (one-for-one). The args of a
temporary child are not kept (it is never restarted). A restart that fails
marks the child ``"restarting"`` and is retried through a message to itself,
each retry counting against the intensity.

When not to use it: for a fixed set of children that depend on each other
(use ``Supervisor`` with ``one_for_all`` or ``rest_for_one``); for one-off
computations whose result you await (use ``TaskSupervisor``).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import attrs
import trio
from beamlet.actors import (
    ExitSignal,
    GenServer,
    Pid,
    StartError,
    Stop,
    self_pid,
    send,
    stop,
    trap_exits,
)
from beamlet.actors.lowlevel import check_number, is_clean_exit

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
from ._reports import Reporter
from ._shutdown import shutdown_children
from ._spec import ChildLike, ChildSpec, ChildType, Restart, Shutdown, StartFunction

__all__ = ["DynamicSupervisor"]


class _Child:
    """A dynamic child: what is needed to restart and stop it (args dropped if temporary)."""

    __slots__ = ("args", "restart", "restarting", "shutdown", "start", "type")

    def __init__(self, spec: ChildSpec) -> None:
        self.start: StartFunction = spec.start
        self.args: tuple[Any, ...] = () if spec.restart == "temporary" else spec.args
        self.restart: Restart = spec.restart
        self.shutdown: Shutdown = spec.shutdown
        self.type: ChildType = spec.type
        self.restarting = False


class _Server(GenServer):
    """The dynamic supervisor process. Children are keyed by pid (by their last pid
    while a failed restart is being retried)."""

    async def init(self, *args: Any) -> Any:
        max_children, max_restarts, max_seconds, extra, name = args
        trap_exits(True)
        self.report = Reporter(self_pid(), name)
        self.max_children: int | None = max_children
        self.intensity = RestartIntensity(max_restarts, max_seconds)
        self.extra: tuple[Any, ...] = extra
        self.children: dict[Pid, _Child] = {}
        return None

    async def terminate(self, reason: Any) -> None:
        running = [(pid, c) for pid, c in self.children.items() if not c.restarting]
        self.children = {}
        for pid, _child, why in await shutdown_children(running):
            self.report.shutdown_error(None, pid, why)

    async def handle_call(self, request: Any, caller: Any) -> Any:
        if not well_formed_call(request):
            self.report.bad_input("call", request)
            return Refused(("bad_call", request))
        tag = request[0]
        if tag == "start_child":
            return await self.start_new(request[1])
        if tag == "terminate_child":
            pid = request[1]
            child = self.children.get(pid) if isinstance(pid, Pid) else None
            if child is None:
                return Refused("not_found")
            del self.children[pid]
            if not child.restarting:
                for _pid, _child, why in await shutdown_children([(pid, child)]):
                    self.report.shutdown_error(None, pid, why)
            return None
        if tag == "which_children":
            return [
                ChildInfo(None, "restarting" if c.restarting else pid, c.type)
                for pid, c in self.children.items()
            ]
        if tag == "count_children":
            active = supervisors = 0
            for child in self.children.values():
                if not child.restarting:
                    active += 1
                if child.type == "supervisor":
                    supervisors += 1
            specs = len(self.children)
            return ChildCounts(specs, active, supervisors, specs - supervisors)
        return Refused(("bad_call", request))

    async def start_new(self, spec: ChildSpec) -> Any:
        if self.max_children is not None and len(self.children) >= self.max_children:
            return Refused("max_children")
        ok, pid, info = await invoke_start(spec.start, self.extra + spec.args)
        if not ok:
            return StartFailed(pid)
        if pid is not None:
            self.children[pid] = _Child(spec)
            self.report.started(None, pid)
        return start_result(pid, info)

    async def handle_cast(self, request: Any) -> None:
        # As OTP's supervisor: a cast is no request it serves; log it and go on.
        self.report.bad_input("cast", request, "unexpected")

    async def handle_info(self, msg: Any) -> Any:
        kind = type(msg)
        if kind is ExitSignal:
            pid = msg.pid
            child = self.children.pop(pid, None)
            if child is None:
                return None
            reason = msg.reason
            if child.restart == "permanent":
                self.report.child_terminated(None, pid, reason)
                return await self.restart(pid, child, reason)
            if is_clean_exit(reason):
                return None
            self.report.child_terminated(None, pid, reason)
            if child.restart == "transient":
                return await self.restart(pid, child, reason)
            return None
        if kind is TryAgain:
            child = self.children.get(msg.key)
            if child is not None and child.restarting:
                del self.children[msg.key]
                return await self.restart(msg.key, child, "restarting")
            return None
        self.report.bad_input("message", msg, "unexpected")
        return None

    async def restart(self, old: Pid, child: _Child, reason: Any) -> Any:
        if not self.intensity.add_restart(trio.current_time()):
            self.report.escalated(
                None, old, reason, self.intensity.max_restarts, self.intensity.max_seconds
            )
            return Stop("shutdown")
        ok, pid, _info = await invoke_start(child.start, self.extra + child.args)
        if not ok:
            self.report.start_error(None, old, pid)
            child.restarting = True
            self.children[old] = child
            await let_others_in()
            send(self.report.pid, TryAgain(old))
            return None
        child.restarting = False
        if pid is not None:
            self.children[pid] = child
            self.report.restarted(None, pid)
        return None


def _check_max_children(max_children: object) -> None:
    if max_children is None:
        return
    check_number(max_children, "max_children", integer=True, optional=True)


def _check_extra(extra: object) -> tuple[Any, ...]:
    if not isinstance(extra, tuple | list):
        raise TypeError(f"extra_arguments must be a tuple or a list, not {extra!r}")
    return tuple(extra)


@attrs.frozen
class _StartDynamic:
    """The start function of a dynamic supervisor's child spec."""

    name: str | None

    async def __call__(self, *args: Any) -> Pid | None:
        return await _Server.start_link(*args, self.name, name=self.name)


class DynamicSupervisor:
    __doc__ = __doc__  # the behaviour's documentation (the module docstring above)

    @staticmethod
    async def start_link(
        max_children: int | None = None,
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        name: str | None = None,
        *,
        extra_arguments: tuple[Any, ...] | list[Any] = (),
    ) -> Pid:
        """Start a dynamic supervisor, without children, linked to the calling process.

        Args:
            max_children: most children at once (``None``: no limit).
            max_restarts: restarts allowed within ``max_seconds`` (default 3).
            max_seconds: the intensity window in seconds (default 5.0).
            name: register the supervisor under this name.
            extra_arguments: prepended to every child's start arguments.

        Raises:
            TypeError / ValueError: an invalid option.
            StartError: the name is taken (``("already_started", pid)``).
        """
        args = _check_options(max_children, max_restarts, max_seconds, extra_arguments)
        try:
            pid = await _Server.start_link(*args, name, name=name)
        except StartError as exc:  # name the supervisor, not its server class
            raise StartError(exc.reason, "DynamicSupervisor", name) from None
        assert pid is not None
        return pid

    @staticmethod
    def child_spec(
        *,
        id: Hashable = None,
        name: str | None = None,
        max_children: int | None = None,
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        extra_arguments: tuple[Any, ...] | list[Any] = (),
        restart: Restart = "permanent",
        shutdown: Shutdown = "infinity",
    ) -> ChildSpec:
        """The spec that runs a dynamic supervisor under another supervisor.

        Args:
            id: the child id (default: ``DynamicSupervisor``).
            name, max_children, max_restarts, max_seconds, extra_arguments:
                as for ``start_link``.
            restart: its restart type in the parent (default ``"permanent"``).
            shutdown: default ``"infinity"``.
        """
        return ChildSpec(
            DynamicSupervisor if id is None else id,
            _StartDynamic(name),
            args=_check_options(max_children, max_restarts, max_seconds, extra_arguments),
            restart=restart,
            shutdown=shutdown,
            type="supervisor",
        )

    @staticmethod
    async def start_child(sup: SupRef, child: ChildLike) -> StartResult:
        """Start a new child; its id is ignored.

        Returns:
            Its pid; ``(pid, info)`` if its start function returned that;
            ``None`` if it ignored the start (nothing is kept).

        Raises:
            SupervisorError: ``"max_children"``; ``"noproc"``.
            StartError: the start function failed (``reason`` says why; a
                name collision gives ``("already_started", pid)``).
            TypeError / ValueError: an invalid spec.
        """
        spec = ChildSpec.coerce(child)
        result: StartResult = await call_supervisor(sup, ("start_child", spec))
        return result

    @staticmethod
    async def terminate_child(sup: SupRef, pid: Pid) -> None:
        """Stop the child ``pid`` by its shutdown protocol and forget it.

        Raises:
            SupervisorError: ``"not_found"`` if ``pid`` is not a child; ``"noproc"``.
        """
        await call_supervisor(sup, ("terminate_child", pid))

    @staticmethod
    async def which_children(sup: SupRef) -> list[ChildInfo]:
        """Every child, oldest first: id ``None``, its pid (or ``"restarting"``) and type.

        Raises:
            SupervisorError: ``"noproc"``.
        """
        result: list[ChildInfo] = await call_supervisor(sup, ("which_children",))
        return result

    @staticmethod
    async def count_children(sup: SupRef) -> ChildCounts:
        """Count the children (``active`` excludes those being restarted).

        Raises:
            SupervisorError: ``"noproc"``.
        """
        result: ChildCounts = await call_supervisor(sup, ("count_children",))
        return result

    @staticmethod
    async def stop(sup: SupRef, reason: Any = "normal", timeout: float | None = None) -> None:
        """Stop the supervisor: all children stop in parallel, then it exits with ``reason``.

        Raises:
            CallExitError / CallTimeoutError: as ``beamlet.actors.stop``.
        """
        await stop(sup, reason, timeout)


def _check_options(
    max_children: object, max_restarts: object, max_seconds: object, extra: object
) -> tuple[Any, ...]:
    _check_max_children(max_children)
    check_intensity(max_restarts, max_seconds)
    return (max_children, max_restarts, max_seconds, _check_extra(extra))
