"""rpc and spawn_on: run exported functions on other nodes.

Only functions exported by name with ``export`` can be run from another node;
a request for any other name is refused, and the caller gets ``RpcError``.
Nothing received from the network is ever evaluated, unpickled or imported:
the request carries a name that is looked up in the table of exports.
"""

from __future__ import annotations

import inspect
import logging
import types
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from beamlet.actors import CallExitError, From, GenServer, NoReply, Pid, call, reply, spawn
from beamlet.actors.lowlevel import (
    BadInputLog,
    check_async,
    current_node,
    current_process,
    describe_reason,
    short_repr,
)

from ._registry import RemoteError, default_registry
from ._system import bad_request

__all__ = [
    "RPC_SERVER",
    "ExportedFunction",
    "RpcError",
    "child_spec",
    "export",
    "exported",
    "rpc",
    "spawn_on",
]

logger = logging.getLogger("beamlet.cluster")

F = TypeVar("F", bound=Callable[..., Any])

#: The registered name of each node's rpc server.
RPC_SERVER = "beamlet_rpc"

# Exports are like loaded code: they belong to the program, not to one node.
_EXPORTS: dict[str, Callable[..., Any]] = {}
# Each exported function's first export name: how it crosses the wire.
_NAMES: dict[Any, str] = {}


class RpcError(Exception):
    """An ``rpc``/``spawn_on`` failed.

    Attributes:
        reason: ``("not_exported", name)``, ``("nodedown", node)``,
            ``("exception", error)`` (the function raised; a ``RemoteError``
            when it ran on another node), ``("not_async", name)`` for
            ``spawn_on``, or the rpc server's exit reason.
    """

    def __init__(self, reason: Any, message: str | None = None) -> None:
        super().__init__(message or repr(reason))
        self.reason = reason


def export(fn: F | None = None, *, name: str | None = None) -> Any:
    """Allow ``fn`` to be run by ``rpc``/``spawn_on`` from other nodes, under ``name``.

    Use as ``export(fn)``, ``export(fn, name="add")``, ``@export`` or
    ``@export(name="add")``. The default name is ``"module.qualname"``.

    Raises:
        ValueError: another function is already exported under that name.
    """

    def register(f: F) -> F:
        if not callable(f):
            raise TypeError(f"export() needs a function, not {f!r}")
        key = name if name is not None else f"{f.__module__}.{f.__qualname__}"
        if not isinstance(key, str) or not key:
            raise TypeError(f"an export name is a non-empty str, not {key!r}")
        existing = _EXPORTS.get(key)
        if existing is not None and existing is not f:
            raise ValueError(f"another function is already exported as {key!r}")
        _EXPORTS[key] = f
        try:
            _NAMES.setdefault(f, key)
        except TypeError:  # an unhashable callable is exported, but does not cross by name
            pass
        return f

    return register(fn) if fn is not None else register


def exported() -> list[str]:
    """The names of the exported functions."""
    return sorted(_EXPORTS)


class ExportedFunction:
    """A function exported on another node, received by its export name.

    An exported function (``export``) crosses between nodes by name, as
    Erlang's ``fun Module:Function/Arity``: the receiving node gets the
    function exported under that name *there*, or, if there is none (yet),
    this stand-in, which looks the name up again when it is called. So a ``ChildSpec`` whose start function is exported can be
    given to ``start_child`` of a supervisor on another node. Any other
    function is refused by the codec (``TypeError`` in the sender); nothing is
    ever imported or evaluated.

    Attributes:
        name: the export name.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, *args: Any) -> Any:
        """Call the function exported here as ``name``.

        Raises:
            RpcError: no function is exported here under that name
                (``("not_exported", name)``).
        """
        fn = _EXPORTS.get(self.name)
        if fn is None:
            raise RpcError(
                ("not_exported", self.name),
                f"no function is exported as {self.name!r} on this node (see export())",
            )
        return fn(*args)

    def __eq__(self, other: object) -> bool:
        return type(other) is ExportedFunction and other.name == self.name

    def __hash__(self) -> int:
        return hash((ExportedFunction, self.name))

    def __repr__(self) -> str:
        return f"<exported function {self.name!r}>"


def _export_name(fn: Any) -> tuple[str]:
    if type(fn) is ExportedFunction:
        return (fn.name,)
    try:
        name = _NAMES.get(fn)
    except TypeError:
        name = None
    if name is None:
        what = getattr(fn, "__qualname__", None) or short_repr(fn)
        raise TypeError(
            f"cannot encode the function {what}: a function crosses between nodes only "
            "when it is exported (beamlet.cluster.export), by its export name"
        )
    return (name,)


def _exported_function(fields: Sequence[Any]) -> Callable[..., Any]:
    """The function exported here under the received name, or a stand-in if there is none."""
    (name,) = fields
    if type(name) is not str:
        raise ValueError(f"an exported function's name is a str, not {short_repr(name)}")
    fn = _EXPORTS.get(name)
    return fn if fn is not None else ExportedFunction(name)


default_registry.register_system_type(
    ExportedFunction, "beamlet.ExportedFunction", _export_name, _exported_function
)
for _type in (types.FunctionType, types.MethodType):
    default_registry.register_system_type(
        _type, f"beamlet.{_type.__name__}", _export_name, _exported_function
    )


async def _run_and_reply(caller: From, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        result = fn(*args)
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:
        reply(caller, ("exception", exc))
        return
    try:
        reply(caller, ("ok", result))
    except (TypeError, ValueError) as exc:  # a result the codec cannot carry
        reply(caller, ("exception", exc))


def _well_formed(request: Any) -> bool:
    """Whether ``request`` is ``(kind, name, args, link_to)`` as the clients send it."""
    if type(request) is not tuple or len(request) != 4:
        return False
    kind, name, args, link_to = request
    return (
        (kind == "call" or kind == "spawn")
        and type(kind) is str
        and type(name) is str
        and type(args) is tuple
        and (link_to is None or type(link_to) is Pid)
    )


class _RpcServer(GenServer):
    """The rpc server: checks every request, answers a malformed one with an error."""

    async def init(self) -> None:
        self.bad_input = BadInputLog(RPC_SERVER, logger)

    async def handle_call(self, request: Any, caller: From) -> Any:
        if not _well_formed(request):
            self.bad_input.report("call", request)
            return bad_request(request)
        kind, name, args, link_to = request
        fn = _EXPORTS.get(name)
        if fn is None:
            return ("error", ("not_exported", name))
        if kind == "call":
            spawn(_run_and_reply, caller, fn, args)
            return NoReply
        try:
            check_async(fn)
        except TypeError:
            return ("error", ("not_async", name))
        node = current_node()
        local = link_to is not None and not node.is_remote(link_to.node)
        if local and node.lookup(link_to) is None:  # type: ignore[arg-type]
            return ("error", ("noproc", link_to))  # nothing started
        proc = node.spawn_process(fn, args)
        if link_to is not None:
            try:
                node.link(proc, link_to)
            except Exception as exc:  # cannot link: undo what was started
                proc.kill("noproc")
                return ("error", ("link_failed", short_repr(exc)))
        # A remote link_to that does not exist answers the link with a "noproc"
        # exit signal, which ends the new process: nothing is left running.
        return ("ok", proc.pid)

    async def handle_cast(self, request: Any) -> None:
        self.bad_input.report("cast", request, "unexpected")

    async def handle_info(self, msg: Any) -> None:
        self.bad_input.report("message", msg, "unexpected")


def child_spec() -> dict[str, Any]:
    """The child spec of the node's rpc server (the kernel supervisor runs it)."""
    return _RpcServer.child_spec(id="rpc", name=RPC_SERVER)


async def _request(node: str, request: tuple[Any, ...], timeout: float | None) -> Any:
    kind, name = request[0], request[1]
    what = f"{'rpc' if kind == 'call' else 'spawn_on'} of {name!r} on {node}"
    try:
        answer = await call((RPC_SERVER, node), request, timeout)
    except CallExitError as exc:
        reason = exc.reason
        if reason == "noproc":
            reason = ("nodedown", node)
        if type(reason) is tuple and len(reason) == 2 and reason[0] == "nodedown":
            why = f"node {node} is down, unreachable or not distributed"
        else:
            why = f"its rpc server {describe_reason(reason)}"
        raise RpcError(reason, f"{what} failed: {why} (reason: {reason!r})") from None
    status, value = answer
    if status == "ok":
        return value
    if status == "exception":
        shown = str(value) if type(value) is RemoteError else f"{type(value).__name__}: {value}"
        raise RpcError(("exception", value), f"{what} failed: the function raised {shown}")
    tag = value[0] if type(value) is tuple and value else value
    why = {
        "not_exported": f"no function is exported as {name!r} there (see export())",
        "not_async": f"{name!r} is not an async function, so it cannot run as a process",
    }.get(tag, "the node refused the request")
    raise RpcError(value, f"{what} failed: {why} (reason: {value!r})")


async def rpc(node: str, name: str, *args: Any, timeout: float | None = 5.0) -> Any:
    """Run the function exported as ``name`` on ``node`` with ``args``; return its result.

    Raises:
        RpcError: the name is not exported there (``("not_exported", name)``),
            the node is down (``("nodedown", node)``), or the function raised
            (``("exception", error)``).
        CallTimeoutError: no answer within ``timeout`` seconds.

    Cancellation:
        A checkpoint; the function may still run on the other node.
    """
    return await _request(node, ("call", name, args, None), timeout)


async def spawn_on(
    node: str, name: str, *args: Any, link: bool = False, timeout: float | None = 5.0
) -> Pid:
    """Start the async function exported as ``name`` as a process on ``node``.

    Args:
        link: link the new process to the caller.

    Returns:
        The new process's pid.

    Raises:
        RpcError: as for ``rpc``, or ``("not_async", name)``.
    """
    link_to = current_process().pid if link else None
    # The other node links the new process to the caller before it answers,
    # so the link is in place here when the answer arrives.
    pid: Pid = await _request(node, ("spawn", name, args, link_to), timeout)
    return pid
