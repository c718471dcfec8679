"""GenServer: the client/server behaviour, with Erlang's semantics.

See ``GenServer`` for the behaviour, and ``call``, ``cast``, ``reply`` and
``stop`` for the client side.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Final, NamedTuple, Protocol, final, overload

import attrs
import trio
from trio.lowlevel import checkpoint, current_task, wait_task_rescheduled

from ._context import _process, current_node, current_process
from ._errors import (
    AlreadyRegisteredError,
    CallExitError,
    CallTimeoutError,
    Exit,
    NameTakenError,
    NotInProcessError,
    ReceiveTimeoutError,
    StartError,
)
from ._ids import Pid, Ref, tuple_value
from ._messages import ExitSignal
from ._process import OWN_MONITOR, CallWait, Process, Reply, ReplyWait, expect_reply
from ._timers import TIMED_OUT
from ._util import check_timeout, is_clean_exit

if TYPE_CHECKING:
    from ._node import Node
    from ._registry import Via

__all__ = [
    "Call",
    "Cast",
    "From",
    "GenServer",
    "Ignore",
    "IgnoreType",
    "NoReply",
    "Stop",
    "StopRequest",
    "call",
    "cast",
    "reply",
    "stop",
]

logger = logging.getLogger("beamlet")

_MISSING: Any = object()


@tuple_value
class From(NamedTuple):
    """Who made a ``call``: pass it to ``reply``. Treat it as opaque.

    A frozen, hashable value (a tuple underneath, as ``Ref``, so that each
    ``call`` makes one cheaply; it equals only another ``From``).

    Attributes:
        pid: the calling process.
        ref: the call's unique tag.
    """

    pid: Pid
    ref: Ref

    def __repr__(self) -> str:
        return f"From(pid={self.pid!r}, ref={self.ref!r})"


_new_tuple = tuple.__new__


@tuple_value
class Call(NamedTuple):
    """The envelope of a ``call`` request (a tuple underneath, as ``From``)."""

    caller: From
    request: Any

    def __repr__(self) -> str:
        return f"Call({self.caller!r}, {self.request!r})"


class Cast:
    """The envelope of a ``cast`` request."""

    __slots__ = ("request",)

    def __init__(self, request: Any) -> None:
        self.request = request

    def __repr__(self) -> str:
        return f"Cast({self.request!r})"


class StopRequest:
    """The envelope of a ``stop`` request: terminate with ``reason``."""

    __slots__ = ("reason",)

    def __init__(self, reason: Any) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"StopRequest({self.reason!r})"


class NoReply:
    """Return value: no reply now (for ``handle_call``), or carry on.

    Return the class itself, or an instance to ask for a timeout or a continue.

    Args:
        timeout: if no message arrives within this many seconds,
            ``handle_info("timeout")`` runs.
        continue_: run ``handle_continue(continue_)`` before the next message.
    """

    __slots__ = ("continue_", "timeout")

    def __init__(self, *, timeout: float | None = None, continue_: Any = _MISSING) -> None:
        check_timeout(timeout)
        self.timeout = timeout
        self.continue_ = continue_

    def __repr__(self) -> str:
        parts = []
        if self.timeout is not None:
            parts.append(f"timeout={self.timeout!r}")
        if self.continue_ is not _MISSING:
            parts.append(f"continue_={self.continue_!r}")
        return f"NoReply({', '.join(parts)})"


@attrs.frozen
class Stop:
    """Return value: stop the server with ``reason`` (after ``terminate``).

    Attributes:
        reason: the exit reason.
        reply: for ``handle_call``, the reply sent to the caller after ``terminate``.
    """

    reason: Any = "normal"
    reply: Any = _MISSING


@final
class IgnoreType:
    """The type of ``Ignore``, for annotations: ``async def init(self) -> IgnoreType | None``.

    A server whose ``init`` may return ``Ignore`` says so in its return type;
    then ``start``/``start_link`` are typed ``Pid | None``. For any other
    ``init`` they are typed ``Pid``.
    """

    __slots__ = ()
    _instance: ClassVar[IgnoreType | None] = None

    def __new__(cls) -> IgnoreType:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "Ignore"


#: Return value of ``init``: do not start; ``start`` returns ``None``.
Ignore: Final[IgnoreType] = IgnoreType()


class _NeverIgnores(Protocol):
    """A GenServer class whose ``init`` cannot return ``Ignore`` (for typing ``start``)."""

    async def init(self, *args: Any, **kwargs: Any) -> NoReply | type[NoReply] | Stop | None: ...


class _Starting:
    """The handshake between ``start`` and the new server's ``init``."""

    __slots__ = ("done", "outcome")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.outcome: tuple[str, Any] = ("pending", None)

    def set(self, kind: str, value: Any = None) -> None:
        if not self.done.is_set():
            self.outcome = (kind, value)
            self.done.set()


class GenServer:
    """A process that keeps state and serves requests, one message at a time.

    A GenServer serves synchronous ``call`` requests, asynchronous ``cast``
    requests and plain messages, one at a time, in mailbox order, with
    Erlang's ``gen_server`` semantics.

    Example::

        from beamlet.actors import GenServer, call, cast, run

        class Counter(GenServer):
            async def init(self, start):
                self.n = start

            async def handle_call(self, request, caller):
                if request == "get":
                    return self.n

            async def handle_cast(self, request):
                op, k = request
                self.n += k

        async def main():
            await Counter.start_link(0, name="counter")
            cast("counter", ("add", 2))
            return await call("counter", "get")

        assert run(main) == 2

    Callbacks (all ``async``; every one is optional). The server object is
    made without calling ``__init__``: set up its state in ``init``.

    - ``init(*args)``: runs in the new process before ``start`` returns.
      Return ``None`` (or ``NoReply(timeout=..., continue_=...)``) to start,
      ``Ignore`` to make ``start`` return ``None`` and exit ``"normal"``,
      ``Stop(reason)`` or raise to fail the start with ``StartError``.
    - ``handle_call(request, caller)``: return the reply; or ``NoReply`` and
      answer later, from any process, with ``reply(caller, value)``; or
      ``Stop(reason, reply=value)`` to reply and stop (``terminate`` runs
      first), or ``Stop(reason)`` to stop without replying.
    - ``handle_cast(request)`` / ``handle_info(msg)`` / ``handle_continue(arg)``:
      return ``None``, ``NoReply(timeout=..., continue_=...)`` or ``Stop(reason)``.
    - ``terminate(reason)``: runs when a callback returns ``Stop``, when a
      callback raises, when ``stop()`` is called, and on an exit signal from
      the parent while the server traps exits. It does not run when an exit
      signal kills a server that does not trap exits, nor on ``"kill"``.

    Any other return value stops the server with ``("bad_return_value", value)``.
    A server without ``handle_call`` stops with ``("bad_call", request)`` on a
    call, and without ``handle_cast`` with ``("bad_cast", request)``; unexpected
    plain messages are logged and dropped. A callback that raises crashes the
    server (a crash report is logged) and a pending caller gets
    ``CallExitError`` with the exception as reason. Stop reasons other than
    ``"normal"``, ``"shutdown"`` and ``("shutdown", detail)`` are logged as errors.

    Timeouts: ``call`` waits 5 s by default (``CallTimeoutError``); a reply
    that arrives later is dropped, never left in the caller's mailbox. A
    reply that cannot reach a caller on another node (the codec refuses the
    value) is logged as an error and dropped: the caller times out, and the
    server keeps serving.
    ``start`` waits for ``init`` forever unless given ``timeout=``.

    When not to use it: for code organisation (use a module), or for data many
    processes read (a GenServer serializes every request).
    """

    #: Seconds a supervisor waits for this server to stop (``child_spec`` default).
    shutdown: ClassVar[float | str] = 5.0

    parent: Pid | None
    """The process that started this server with ``start_link`` (None for ``start``)."""

    async def init(self, *args: Any) -> Any:
        """Set up the server's state from the arguments of ``start``.

        Returns:
            ``None`` or ``NoReply(timeout=..., continue_=...)`` to start;
            ``Ignore`` to not start (``start`` returns None); ``Stop(reason)``
            to fail the start with ``StartError(reason)``. Raising also fails it.
        """
        if args:
            raise TypeError(
                f"{type(self).__name__} got start arguments {args!r} but defines no init()"
            )

    async def handle_call(self, request: Any, caller: From) -> Any:
        """Serve a ``call``; ``caller`` identifies it for a later ``reply``.

        Returns:
            The reply; or ``NoReply`` (the class, or an instance with
            ``timeout``/``continue_``) to reply later with ``reply(caller, v)``;
            or ``Stop(reason, reply=v)`` / ``Stop(reason)`` to stop.
            The default stops the server with ``("bad_call", request)``.
        """
        return Stop(("bad_call", request))

    async def handle_cast(self, request: Any) -> Any:
        """Handle a ``cast``.

        Returns:
            ``None``, ``NoReply(timeout=..., continue_=...)`` or ``Stop(reason)``.
            The default stops the server with ``("bad_cast", request)``.
        """
        return Stop(("bad_cast", request))

    async def handle_info(self, msg: Any) -> Any:
        """Handle any other message.

        That is: plain sends, ``Down``, ``ExitSignal`` (when trapping exits),
        timer messages, and ``"timeout"`` after a ``NoReply(timeout=...)``
        expired.

        Returns:
            ``None``, ``NoReply(timeout=..., continue_=...)`` or ``Stop(reason)``.
            The default logs the message as unexpected and carries on.
        """
        logger.warning(
            "%s %r received an unexpected message: %r",
            type(self).__name__,
            current_process().pid,
            msg,
        )

    async def handle_continue(self, arg: Any) -> Any:
        """Run the work asked for by ``NoReply(continue_=arg)``, before any message.

        Returns:
            ``None``, ``NoReply(timeout=..., continue_=...)`` or ``Stop(reason)``.
            The default stops the server with ``("bad_continue", arg)``.
        """
        return Stop(("bad_continue", arg))

    async def terminate(self, reason: Any) -> None:
        """Clean up before the server exits with ``reason``.

        Called after ``Stop``, a raising callback, ``stop()``, and an exit
        signal from the parent while trapping exits; not when an exit signal
        kills a server that does not trap exits, nor on ``"kill"``.
        """

    # -- starting ----------------------------------------------------------------------

    @overload
    @classmethod
    async def start(
        cls: type[_NeverIgnores],
        *args: Any,
        name: str | Via | None = None,
        timeout: float | None = None,
        max_mailbox: int | None = None,
    ) -> Pid: ...

    @overload
    @classmethod
    async def start(
        cls,
        *args: Any,
        name: str | Via | None = None,
        timeout: float | None = None,
        max_mailbox: int | None = None,
    ) -> Pid | None: ...

    @classmethod
    async def start(
        cls,
        *args: Any,
        name: str | Via | None = None,
        timeout: float | None = None,
        max_mailbox: int | None = None,
    ) -> Pid | None:
        """Start a server (not linked) and wait for its ``init``.

        Args:
            *args: arguments for ``init``.
            name: register the server under this name (or ``Registry.via``
                name) before ``init`` runs.
            timeout: seconds to wait for ``init``; then the server is killed.
            max_mailbox: bound the server's mailbox (see ``spawn``): past it the
                server is killed with reason ``"mailbox_overflow"``.

        Returns:
            The server's pid, or None if ``init`` returned ``Ignore``. For type
            checkers it is a ``Pid`` unless ``init``'s return type admits
            ``IgnoreType`` (then ``Pid | None``).

        Raises:
            StartError: ``init`` raised or returned ``Stop``, timed out, or the
                name is taken (``reason == ("already_started", pid)``).
            UnknownRegistryError / ValueError: ``name`` is a via name whose
                registry is not running, or has duplicate keys.

        Cancellation:
            If cancelled while waiting, the new server is killed.
        """
        return await cls._start(args, name, timeout, link=False, max_mailbox=max_mailbox)

    @overload
    @classmethod
    async def start_link(
        cls: type[_NeverIgnores],
        *args: Any,
        name: str | Via | None = None,
        timeout: float | None = None,
        max_mailbox: int | None = None,
    ) -> Pid: ...

    @overload
    @classmethod
    async def start_link(
        cls,
        *args: Any,
        name: str | Via | None = None,
        timeout: float | None = None,
        max_mailbox: int | None = None,
    ) -> Pid | None: ...

    @classmethod
    async def start_link(
        cls,
        *args: Any,
        name: str | Via | None = None,
        timeout: float | None = None,
        max_mailbox: int | None = None,
    ) -> Pid | None:
        """Like ``start``, and link the server to the calling process.

        As in Erlang, if ``init`` fails with a reason other than ``"normal"``,
        the exit signal also reaches the caller, which dies with it unless it
        traps exits.

        Returns:
            As ``start``: the pid (typed ``Pid``), or None if ``init`` returned
            ``Ignore`` (typed ``Pid | None`` when ``init``'s return type admits
            ``IgnoreType``).

        Raises:
            StartError: as for ``start``.
            NotInProcessError: there is no calling process to link to.

        Cancellation:
            If cancelled while waiting, the new server is killed.
        """
        return await cls._start(args, name, timeout, link=True, max_mailbox=max_mailbox)

    @classmethod
    def child_spec(
        cls,
        *args: Any,
        id: Any = None,
        name: str | Via | None = None,
        restart: str = "permanent",
        shutdown: float | str | None = None,
        max_mailbox: int | None = None,
    ) -> dict[str, Any]:
        """Describe how a supervisor starts this server (a mapping ``ChildSpec`` accepts).

        Args:
            *args: arguments for ``init``.
            id: the child id (default: the class).
            name: a name (or ``Registry.via`` name) to register the server under;
                a restarted server registers it again.
            restart: ``"permanent"``, ``"transient"`` or ``"temporary"``.
            shutdown: seconds, ``"brutal_kill"`` or ``"infinity"`` (default: ``cls.shutdown``).
            max_mailbox: the server's mailbox bound (see ``start``); a
                restarted server has it again.
        """

        async def start_link(*start_args: Any) -> Pid | None:
            return await cls.start_link(*start_args, name=name, max_mailbox=max_mailbox)

        start_link.__qualname__ = f"{cls.__qualname__}.start_link"
        return {
            "id": cls if id is None else id,
            "start": start_link,
            "args": args,
            "restart": restart,
            "shutdown": cls.shutdown if shutdown is None else shutdown,
            "type": "worker",
        }

    @classmethod
    async def _start(
        cls,
        args: tuple[Any, ...],
        name: str | Via | None,
        timeout: float | None,
        link: bool,
        max_mailbox: int | None = None,
    ) -> Pid | None:
        check_timeout(timeout)
        caller = _process.get()
        if link and caller is None:
            raise NotInProcessError("start_link() needs a calling process to link to")
        node = caller.node if caller is not None else current_node()
        if name is not None and name in node._names:
            raise StartError(("already_started", node._names[name].pid), cls.__qualname__, name)
        starting = _Starting()
        parent = caller.pid if (link and caller is not None) else None
        try:
            proc = node.spawn_process(
                _serve,
                (cls, args, starting, parent),
                name=name,
                link_to=caller if link else None,
                max_mailbox=max_mailbox,
            )
        except NameTakenError as exc:
            holder = exc.pid if isinstance(exc, AlreadyRegisteredError) else node.whereis(name)  # type: ignore[arg-type]
            raise StartError(("already_started", holder), cls.__qualname__, name) from None
        try:
            if timeout is None:
                await starting.done.wait()
            else:
                with trio.move_on_after(timeout):
                    await starting.done.wait()
        except trio.Cancelled:
            _abandon(caller, proc)
            raise
        kind, value = starting.outcome
        if kind == "ok":
            return proc.pid
        if kind == "ignore":
            return None
        if kind == "pending":
            _abandon(caller, proc)
            raise StartError("timeout", cls.__qualname__, name)
        raise StartError(value, cls.__qualname__, name)


def _abandon(caller: Process | None, proc: Process) -> None:
    """Unlink and kill a server whose start is given up, and flush its exit."""
    if caller is not None:
        caller.node.unlink(caller, proc.pid)
        caller.take(lambda m: type(m) is ExitSignal and m.pid == proc.pid)
    proc.kill("killed")


async def _serve(
    cls: type[GenServer], args: tuple[Any, ...], starting: _Starting, parent: Pid | None
) -> None:
    server = cls.__new__(cls)
    server.parent = parent
    try:
        result = await server.init(*args)
    except BaseException as exc:
        reason = exc.reason if isinstance(exc, Exit) else exc
        starting.set("error", reason)
        raise
    if result is Ignore:
        starting.set("ignore")
        return
    if isinstance(result, Stop):
        starting.set("error", result.reason)
        raise Exit(result.reason)
    if result is not None and result is not NoReply and not isinstance(result, NoReply):
        reason = ("bad_return_value", result)
        starting.set("error", reason)
        raise Exit(reason)
    starting.set("ok")
    await _loop(server, result)


def _describe_server(args: tuple[Any, ...]) -> str:
    return f"{args[0].__qualname__} (GenServer)"


_serve.describe_process = _describe_server  # type: ignore[attr-defined]


async def _loop(server: GenServer, after: Any) -> None:
    proc = current_process()
    node = proc.node
    pid = proc.pid
    while True:
        timeout = None
        while after is not None:
            if isinstance(after, Stop):
                await _stop(server, after.reason)
            if isinstance(after, NoReply):
                if after.continue_ is not _MISSING:
                    after = await _callback(server, server.handle_continue, after.continue_)
                    after = _check_noreply(after)
                    continue
                timeout = after.timeout
            break
        try:
            msg = await proc.receive(None, timeout)
        except ReceiveTimeoutError:
            msg = "timeout"
        kind = type(msg)
        if kind is Call:
            try:
                result = await server.handle_call(msg.request, msg.caller)
            except Exit as exc:
                await _terminate(server, exc.reason)
                raise
            except Exception as exc:
                await _terminate(server, exc)
                raise
            if result is NoReply or isinstance(result, NoReply):
                after = result
            elif isinstance(result, Stop):
                await _terminate(server, result.reason)
                if result.reply is not _MISSING:
                    _send_reply(server, node, pid, msg.caller, result.reply)
                _exit(server, result.reason)
            else:
                caller_pid, ref = caller = msg.caller
                try:
                    node.send(
                        pid, caller_pid, _new_tuple(Reply, (ref, result))
                    )  # Reply(ref, result)
                except (TypeError, ValueError) as exc:
                    _unsendable_reply(server, caller, exc)
                after = None
        elif kind is Cast:
            after = _check_noreply(await _callback(server, server.handle_cast, msg.request))
        elif kind is StopRequest or (
            kind is ExitSignal and server.parent is not None and msg.pid == server.parent
        ):
            await _stop(server, msg.reason)
        else:
            after = _check_noreply(await _callback(server, server.handle_info, msg))


def _send_reply(server: GenServer, node: Node, pid: Pid, caller: From, value: Any) -> None:
    try:
        node.send(pid, caller.pid, Reply(caller.ref, value))
    except (TypeError, ValueError) as exc:
        _unsendable_reply(server, caller, exc)


def _unsendable_reply(server: GenServer, caller: From, exc: Exception) -> None:
    """A reply that cannot reach a remote caller (the codec refused it) is logged
    and dropped: the caller times out, and the server goes on serving."""
    proc = current_process()
    logger.error(
        "%s %r%s cannot reply to %r: %s",
        type(server).__name__,
        proc.pid,
        f" ({proc.name})" if proc.name else "",
        caller.pid,
        exc,
        extra={"beamlet_pid": proc.pid, "beamlet_name": proc.name},
    )


def _check_noreply(result: Any) -> Any:
    if result is None or result is NoReply or isinstance(result, (NoReply, Stop)):
        return result
    return Stop(("bad_return_value", result))


async def _callback(server: GenServer, fn: Callable[..., Any], *args: Any) -> Any:
    """Run a callback; if it raises, run ``terminate`` and re-raise."""
    try:
        return await fn(*args)
    except Exit as exc:
        await _terminate(server, exc.reason)
        raise
    except Exception as exc:
        await _terminate(server, exc)
        raise


async def _terminate(server: GenServer, reason: Any) -> None:
    await server.terminate(reason)


async def _stop(server: GenServer, reason: Any) -> None:
    await _terminate(server, reason)
    _exit(server, reason)


def _exit(server: GenServer, reason: Any) -> None:
    if not is_clean_exit(reason) and not isinstance(reason, BaseException):
        proc = current_process()
        logger.error(
            "%s %r%s terminating with reason %r",
            type(server).__name__,
            proc.pid,
            f" ({proc.name})" if proc.name else "",
            reason,
            extra={"beamlet_pid": proc.pid, "beamlet_name": proc.name, "beamlet_reason": reason},
        )
    raise Exit(reason)


# -- client API ------------------------------------------------------------------------


async def call(
    server: Pid | str | tuple[str, str] | Via, request: Any, timeout: float | None = 5.0
) -> Any:
    """Send ``request`` to a GenServer and wait for its reply.

    Args:
        server: a pid, a local name, ``(name, node)``, or a ``Registry.via`` name.
        request: any value.
        timeout: seconds to wait (``None``: forever).

    Returns:
        The reply.

    Raises:
        CallTimeoutError: no reply in time (a late reply is dropped).
        CallExitError: the server exited (``reason`` is its exit reason), does
            not exist (``"noproc"``), is the caller (``"calling_self"``), or its
            node is unreachable (``("nodedown", node)``).

    Cancellation:
        A checkpoint; a reply arriving after cancellation is dropped.
    """
    if timeout is not None and not (type(timeout) is float and timeout >= 0):
        check_timeout(timeout)
    proc = _process.get()
    if proc is None:
        proc = current_process()  # raises NotInProcessError
    node = proc.node
    target = server if type(server) is Pid else node.resolve(server)
    if target is None:
        raise CallExitError("noproc", server)
    server_proc = node.lookup(target) if type(target) is Pid else None
    if server_proc is not None:
        # The common case, a local server. The reply (or the Down) goes
        # straight to this wait, whichever task of the process is calling; the
        # wait is the caller's side of the monitor (see ``CallWait``).
        if server_proc is proc:
            raise CallExitError("calling_self", server)
        ref = node.make_ref()
        waiter: CallWait | ReplyWait = CallWait(proc, current_task(), ref, server_proc)
        waiters = proc.waiters
        if waiters is None:
            waiters = proc.waiters = {}
        waiters[ref] = waiter
        monitored_by = server_proc.monitored_by
        if monitored_by is None:
            monitored_by = server_proc.monitored_by = {}
        pid = proc.pid
        monitored_by[ref] = (pid, target)
        server_proc.deliver(
            _new_tuple(Call, (_new_tuple(From, (pid, ref)), request))
        )  # Call(From(pid, ref), request)
    else:
        # A remote server, or a local one that is gone (then the monitor
        # answers at once with noproc).
        ref = node.make_ref()
        waiter = ReplyWait(proc, current_task(), ref, True, OWN_MONITOR)
        waiters = proc.waiters
        if waiters is None:
            waiters = proc.waiters = {}
        waiters[ref] = waiter
        try:
            node.monitor(proc, target, ref=ref)
            node.send(proc.pid, target, Call(From(proc.pid, ref), request))
        except BaseException:
            if waiter.target is not None:
                waiter._give_up()
            raise
    if waiter.target is not None:
        if timeout is not None:
            node.timers.wait(waiter, timeout)
        waiter.parked = True
        msg = await wait_task_rescheduled(waiter.abort)
    else:
        msg = waiter.msg  # a Down that came at once (noproc), or a reply sent at once
        await checkpoint()
    if type(msg) is Reply:
        return msg.value
    if msg is TIMED_OUT:
        raise CallTimeoutError(f"no reply from {server!r} within {timeout} s")
    reason = msg.reason
    if reason == "noconnection":
        reason = ("nodedown", target.node if isinstance(target, Pid) else target[1])
    raise CallExitError(reason, server)


def cast(server: Pid | str | tuple[str, str] | Via, request: Any) -> None:
    """Send ``request`` to a GenServer's ``handle_cast``. Never blocks, never fails.

    A cast to a name that is not registered, or to a node that is down, is dropped.
    """
    node = current_node()
    proc = _process.get()
    node.send_quietly(proc.pid if proc is not None else None, server, Cast(request))


def reply(caller: From, value: Any) -> None:
    """Answer a ``call`` that ``handle_call`` left with ``NoReply``, from any process.

    Replying to a caller that gave up (timed out or died) does nothing. A
    caller on another node takes the reply only from the server's node: a
    process of a third node that replies with a ``From`` it was handed is
    refused there (refs can be guessed; see docs/distribution.md, "Threat
    model").
    """
    if not isinstance(caller, From):
        raise TypeError(f"reply() needs the From a handle_call received, not {caller!r}")
    proc = _process.get()
    current_node().send(
        proc.pid if proc is not None else None, caller.pid, Reply(caller.ref, value)
    )


async def stop(
    server: Pid | str | tuple[str, str] | Via,
    reason: Any = "normal",
    timeout: float | None = None,
) -> None:
    """Stop a GenServer synchronously: it runs ``terminate(reason)`` and exits.

    Raises:
        CallExitError: the server does not exist (``"noproc"``), exited with
            another reason, is the caller (``"calling_self"``), or its node is down.
        CallTimeoutError: it did not exit within ``timeout``.
    """
    check_timeout(timeout)
    proc = current_process()
    node = proc.node
    target = node.resolve(server)
    if target is None:
        raise CallExitError("noproc", server, action="stop of")
    if target == proc.pid:
        raise CallExitError("calling_self", server, action="stop of")
    ref = node.make_ref()
    waiter = expect_reply(proc, (ref,), replies=False, monitor=OWN_MONITOR)
    try:
        node.monitor(proc, target, ref=ref)
        node.send(proc.pid, target, StopRequest(reason))
    except BaseException:
        if waiter.target is not None:
            waiter._give_up()
        raise
    down = await waiter.wait(timeout)
    if down is TIMED_OUT:
        raise CallTimeoutError(f"{server!r} did not stop within {timeout} s")
    if down.reason == reason:
        return
    exit_reason = down.reason
    if exit_reason == "noconnection":
        exit_reason = ("nodedown", target.node if isinstance(target, Pid) else target[1])
    raise CallExitError(exit_reason, server, action="stop of")
