"""What the supervisors share: result values, errors, and the client side of their calls."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Hashable
from typing import Any, Literal, TypeAlias

import attrs
import trio
from beamlet.actors import CallExitError, Exit, Pid, StartError, call

from ._spec import ChildType

__all__ = [
    "NO_INFO",
    "ChildCounts",
    "ChildInfo",
    "Refused",
    "StartFailed",
    "StartResult",
    "SupRef",
    "SupervisorError",
    "TryAgain",
    "call_supervisor",
    "invoke_start",
    "let_others_in",
]

#: How to address a supervisor: its pid, its registered name, or ``(name, node)``.
SupRef: TypeAlias = Pid | str | tuple[str, str]
#: What starting a child gives back: its pid; ``(pid, info)`` when the start
#: function returned that; ``None`` when it ignored the child.
StartResult: TypeAlias = Pid | tuple[Pid, Any] | None


class SupervisorError(RuntimeError):
    """A supervisor refused an operation, or could not be reached.

    Attributes:
        reason: ``"not_found"``, ``"running"``, ``"restarting"``,
            ``"already_present"``, ``("already_started", pid)``,
            ``"max_children"``; or, when the call itself failed,
            ``"noproc"`` (no such supervisor) or the supervisor's exit reason.
    """

    def __init__(self, reason: Any) -> None:
        super().__init__(reason)
        self.reason = reason


@attrs.frozen
class ChildInfo:
    """One entry of ``which_children``.

    Attributes:
        id: the child id (``None`` under a dynamic supervisor).
        pid: the child's pid; ``"restarting"`` while a failed restart is being
            retried; ``None`` when the child is not running.
        type: ``"worker"`` or ``"supervisor"``.
    """

    id: Hashable
    pid: Pid | Literal["restarting"] | None
    type: ChildType


@attrs.frozen
class ChildCounts:
    """The result of ``count_children``.

    Attributes:
        specs: all children, running or not.
        active: children with a live process.
        supervisors: children of type ``"supervisor"``, running or not.
        workers: children of type ``"worker"``, running or not.
    """

    specs: int
    active: int
    supervisors: int
    workers: int


class Refused:
    """Reply envelope: the supervisor refused (raised as ``SupervisorError``)."""

    __slots__ = ("reason",)

    def __init__(self, reason: Any) -> None:
        self.reason = reason


class StartFailed:
    """Reply envelope: the child's start function failed (raised as ``StartError``)."""

    __slots__ = ("reason",)

    def __init__(self, reason: Any) -> None:
        self.reason = reason


class TryAgain:
    """The message a supervisor sends itself to retry a failed restart (S11, S24)."""

    __slots__ = ("key",)

    def __init__(self, key: Any) -> None:
        self.key = key

    def __repr__(self) -> str:
        return f"TryAgain({self.key!r})"


async def call_supervisor(sup: SupRef, request: tuple[Any, ...]) -> Any:
    """Call a supervisor (no timeout, as OTP) and turn refusals into exceptions."""
    try:
        result = await call(sup, request, timeout=None)
    except CallExitError as exc:
        raise SupervisorError(exc.reason) from exc
    kind = type(result)
    if kind is Refused:
        raise SupervisorError(result.reason)
    if kind is StartFailed:
        raise StartError(result.reason)
    return result


class _NoInfo:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_INFO"


#: The ``info`` of a start function that returned a bare pid.
NO_INFO: Any = _NoInfo()


async def invoke_start(start: Callable[..., Any], args: tuple[Any, ...]) -> tuple[bool, Any, Any]:
    """Run a child's start function in the supervisor process.

    Returns:
        ``(True, pid, info)`` (``info`` is ``NO_INFO`` for a bare pid),
        ``(True, None, NO_INFO)`` when the child is ignored, or
        ``(False, reason, None)``: the ``StartError`` reason, the exception
        raised, or ``("bad_return", value)``.
    """
    try:
        result = start(*args)
        if inspect.isawaitable(result):
            result = await result
    except StartError as exc:
        return False, exc.reason, None
    except Exit as exc:
        return False, exc.reason, None
    except Exception as exc:
        return False, exc, None
    if result is None:
        return True, None, NO_INFO
    if type(result) is Pid:
        return True, result, NO_INFO
    if type(result) is tuple and len(result) == 2 and type(result[0]) is Pid:
        return True, result[0], result[1]
    return False, ("bad_return", result), None


async def let_others_in() -> None:
    """Yield before queueing a retry, so that requests sent meanwhile come first (S11).

    In Erlang other processes run while the supervisor works; here they run
    only when it yields. Without this, a child whose start fails at once
    would be retried until the intensity runs out within one step, and no
    ``which_children`` or ``terminate_child`` could get in between.
    """
    await trio.lowlevel.checkpoint()


def start_result(pid: Pid | None, info: Any) -> StartResult:
    """What ``start_child``/``restart_child`` return for a started child."""
    if pid is None or info is NO_INFO:
        return pid
    return (pid, info)
