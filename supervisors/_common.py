"""What the supervisors share: result values, errors, and the client side of their calls."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Literal, TypeAlias

import attrs
import trio
from beamlet.actors import CallExitError, Exit, Pid, StartError, call
from beamlet.actors.lowlevel import describe_reason, register_wire_type

from ._spec import ChildSpec, ChildType

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
    "well_formed_call",
]

#: How to address a supervisor: its pid, its registered name, or ``(name, node)``.
SupRef: TypeAlias = Pid | str | tuple[str, str]
#: What starting a child gives back: its pid; ``(pid, info)`` when the start
#: function returned that; ``None`` when it ignored the child.
StartResult: TypeAlias = Pid | tuple[Pid, Any] | None


class SupervisorError(RuntimeError):
    """A supervisor refused an operation, or could not be reached.

    The message says which operation on which supervisor failed and why, e.g.
    ``terminate_child('db') on supervisor 'app' failed: it has no child with
    this id (reason: 'not_found')``.

    Attributes:
        reason: ``"not_found"``, ``"running"``, ``"restarting"``,
            ``"already_present"``, ``("already_started", pid)``,
            ``"max_children"``; or, when the call itself failed,
            ``"noproc"`` (no such supervisor) or the supervisor's exit reason.
        supervisor: the supervisor as the caller named it, or None.
        request: the operation and its arguments, e.g. ``("terminate_child", "db")``, or None.
    """

    def __init__(
        self, reason: Any, supervisor: Any = None, request: tuple[Any, ...] | None = None
    ) -> None:
        super().__init__(_supervisor_message(reason, supervisor, request))
        self.reason = reason
        self.supervisor = supervisor
        self.request = request


_REFUSALS = {
    "not_found": "it has no child with this id",
    "running": "the child is running (terminate it first)",
    "restarting": "the child is being restarted",
    "already_present": (
        "a stopped child with this id is present (restart_child or delete_child it)"
    ),
    "max_children": "it already runs max_children children",
}


def _show(value: Any) -> str:
    """A child id in a message: a class (the default id of a GenServer) by its name."""
    return value.__qualname__ if isinstance(value, type) else repr(value)


def _supervisor_message(reason: Any, supervisor: Any, request: tuple[Any, ...] | None) -> str:
    if request:
        op, *args = request
        shown = [_show(getattr(a, "id", a)) for a in args]  # a ChildSpec by its id
        what = f"{op}({', '.join(shown)})"
    else:
        what = "the request"
    where = f" on supervisor {supervisor!r}" if supervisor is not None else ""
    if type(reason) is str and reason in _REFUSALS:
        why = _REFUSALS[reason]
    elif type(reason) is tuple and len(reason) == 2 and reason[0] == "already_started":
        why = f"a child with this id is already running as {reason[1]!r}"
    elif reason == "noproc":
        why = (
            f"no process is registered as {supervisor!r}"
            if type(supervisor) is str
            else "the supervisor does not exist"
        )
    else:
        why = f"the supervisor {describe_reason(reason)}"
    return f"{what}{where} failed: {why} (reason: {reason!r})"


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
        raise SupervisorError(exc.reason, sup, request) from None
    kind = type(result)
    if kind is Refused:
        raise SupervisorError(result.reason, sup, request)
    if kind is StartFailed:
        child = getattr(request[1], "id", request[1]) if len(request) > 1 else None
        raise StartError(result.reason, f"child {_show(child)} of supervisor {sup!r}")
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


#: The calls a supervisor serves, and their arity (the tag included).
_CALLS = {
    "which_children": 1,
    "count_children": 1,
    "start_child": 2,
    "terminate_child": 2,
    "restart_child": 2,
    "delete_child": 2,
}


def well_formed_call(request: Any) -> bool:
    """Whether ``request`` is one of the calls a supervisor serves, well formed.

    ``start_child`` takes a ``ChildSpec``; the others take a hashable child id
    (or pid). Anything else gets ``Refused(("bad_call", request))``.
    """
    if type(request) is not tuple or not request or type(request[0]) is not str:
        return False
    arity = _CALLS.get(request[0])
    if arity is None or len(request) != arity:
        return False
    if arity == 1:
        return True
    if request[0] == "start_child":
        return isinstance(request[1], ChildSpec)
    try:
        hash(request[1])
    except TypeError:
        return False
    return True


# -- crossing between nodes -------------------------------------------------------------
#
# A supervisor on another node is called as a local one: its requests (child
# ids, a ``ChildSpec``) and its replies travel through the codec of
# ``beamlet.cluster``, which learns these types through ``register_wire_type``.


def _child_info(fields: Sequence[Any]) -> ChildInfo:
    id, pid, kind = fields
    if not (pid is None or pid == "restarting" or isinstance(pid, Pid)):
        raise ValueError(f"ChildInfo: 'pid' is a Pid, 'restarting' or None, not {pid!r}")
    if kind not in ("worker", "supervisor"):
        raise ValueError(f"ChildInfo: 'type' is 'worker' or 'supervisor', not {kind!r}")
    hash(id)
    return ChildInfo(id, pid, kind)


def _child_counts(fields: Sequence[Any]) -> ChildCounts:
    if len(fields) != 4 or any(type(n) is not int or n < 0 for n in fields):
        raise ValueError("ChildCounts: four ints >= 0")
    return ChildCounts(*fields)


def _one(cls: type[Any]) -> Callable[[Sequence[Any]], Any]:
    def from_fields(fields: Sequence[Any]) -> Any:
        (reason,) = fields
        return cls(reason)

    return from_fields


register_wire_type(
    ChildInfo, "beamlet.supervisors.ChildInfo", lambda c: (c.id, c.pid, c.type), _child_info
)
register_wire_type(
    ChildCounts,
    "beamlet.supervisors.ChildCounts",
    lambda c: (c.specs, c.active, c.supervisors, c.workers),
    _child_counts,
)
register_wire_type(Refused, "beamlet.supervisors.Refused", lambda r: (r.reason,), _one(Refused))
register_wire_type(
    StartFailed, "beamlet.supervisors.StartFailed", lambda r: (r.reason,), _one(StartFailed)
)
