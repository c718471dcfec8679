"""Exceptions of the local runtime."""

from __future__ import annotations

from typing import Any

import trio

from ._ids import Pid

__all__ = [
    "AlreadyRegisteredError",
    "BusyError",
    "CallExitError",
    "CallTimeoutError",
    "Exit",
    "NameTakenError",
    "NoProcError",
    "NoSuchNameError",
    "NotInProcessError",
    "ReceiveTimeoutError",
    "StartError",
    "UnknownRegistryError",
    "describe_reason",
]


def _short(value: Any, limit: int = 200) -> str:
    return _clip(repr(value), limit)


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _exception(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {_clip(text)}" if text else type(exc).__name__


def _show_id(value: Any) -> str:
    """A child id for a message: a class (a GenServer's default id) by its name, else ``repr``."""
    return value.__qualname__ if isinstance(value, type) else _short(value)


def describe_reason(reason: Any) -> str:
    """Say in words how a process ended, from its exit reason.

    The phrase completes "the process ...": ``"exited normally"``, ``"was
    shut down"``, ``"crashed with ValueError: boom"``, ``"does not exist"``,
    ``"is on node b@host, which is down or unreachable"``; any other reason
    gives ``"exited with reason <reason>"``. Errors use it so that their
    message says why, while the reason itself stays their ``reason`` attribute.
    """
    if isinstance(reason, BaseException):
        return f"crashed with {_exception(reason)}"
    if reason == "normal":
        return "exited normally"
    if reason == "shutdown":
        return "was shut down"
    if reason == "killed":
        return "was killed"
    if reason == "noproc":
        return "does not exist"
    if reason == "noconnection":
        return "lost the connection to its node"
    if type(reason) is tuple and len(reason) == 2:
        tag, detail = reason
        if tag == "shutdown":
            inner = _start_failure(detail)
            if inner is not None:
                return inner
            return f"was shut down ({_short(detail)})"
        if tag == "nodedown":
            return f"is on node {detail}, which is down or unreachable"
        if tag in ("bad_return_value", "bad_return"):
            return f"returned a value the behaviour does not accept: {_short(detail)}"
        if tag in ("bad_call", "bad_cast", "bad_continue"):
            what = tag.partition("_")[2]
            return f"got a {what} it has no handler for: {_short(detail)}"
    return f"exited with reason {_short(reason)}"


def _start_failure(detail: Any) -> str | None:
    """The words for ``("failed_to_start_child", id, why)``, else None."""
    if type(detail) is tuple and len(detail) == 3 and detail[0] == "failed_to_start_child":
        _tag, child, why = detail
        return (
            f"stopped because its child {_show_id(child)} failed to start: {_why_start_failed(why)}"
        )
    return None


def _why_start_failed(reason: Any) -> str:
    """The words for a ``StartError`` reason: why a start failed."""
    if isinstance(reason, BaseException):
        return f"init raised {_exception(reason)}"
    if type(reason) is tuple and len(reason) == 2:
        tag, detail = reason
        if tag == "already_started":
            return f"its name is already registered to {detail!r}"
        if tag == "bad_return_value":
            return (
                f"init returned {_short(detail)}; it must return None, NoReply(...), "
                "Ignore or Stop(reason)"
            )
        if tag == "bad_return":
            if type(detail) is tuple and len(detail) == 3 and detail[1] == "init":
                module, _init, value = detail
                name = getattr(module, "__qualname__", module)
                return f"{name}.init returned {_short(value)}, not a SupervisorSpec or Ignore"
            return f"its start function returned {_short(detail)}, not a pid"
        if tag == "shutdown":
            inner = _start_failure(detail)
            if inner is not None:
                return inner.removeprefix("stopped because ")
    if reason == "timeout":
        return "init did not return within the start timeout"
    return f"init failed with reason {_short(reason)}"


class Exit(BaseException):
    """Raise ``Exit(reason)`` to end the current process with ``reason``.

    It is a ``BaseException`` so that ``except Exception`` in user code does not
    swallow it. ``Exit("normal")`` ends the process quietly, like returning.

    Attributes:
        reason: the exit reason.
    """

    def __init__(self, reason: Any = "normal") -> None:
        super().__init__(reason)
        self.reason = reason


class NotInProcessError(RuntimeError):
    """The call needs a current process (or node) and there is none."""


class NoSuchNameError(LookupError):
    """No process is registered under this name."""


class NameTakenError(ValueError):
    """The name is already registered, or the process already has a name."""


class NoProcError(LookupError):
    """The process does not exist (``noproc``)."""


class BusyError(RuntimeError):
    """The destination cannot take the message now (e.g. its node's connection is
    over its buffer limit); the message was not sent."""


class ReceiveTimeoutError(trio.TooSlowError):
    """``receive`` found no matching message within its timeout."""


class CallTimeoutError(trio.TooSlowError):
    """A ``call`` got no reply within its timeout."""


class CallExitError(Exception):
    """A ``call`` (or ``stop``) failed because the server exited or does not exist.

    The message says which server and why, e.g. ``call to 'counter' failed:
    no process is registered as 'counter' (reason: 'noproc')``.

    Attributes:
        reason: the server's exit reason, ``"noproc"``, ``"calling_self"`` or
            ``("nodedown", node)``.
        server: the server as the caller named it (a pid, a name or
            ``(name, node)``), or None if not known.
    """

    def __init__(self, reason: Any, server: Any = None, *, action: str = "call to") -> None:
        super().__init__(_call_message(reason, server, action))
        self.reason = reason
        self.server = server


def _call_message(reason: Any, server: Any, action: str) -> str:
    target = f"{action} {server!r}" if server is not None else action.rpartition(" ")[0]
    if reason == "noproc":
        if server is None or type(server) is Pid:
            why = "the process does not exist"
        elif type(server) is tuple and len(server) == 2:
            why = f"no process is registered as {server[0]!r} on {server[1]}"
        else:  # a name, or a name via a registry
            why = f"no process is registered as {server!r}"
    elif reason == "calling_self":
        why = (
            "a process cannot call itself (it would wait for its own reply)"
            if action == "call to"
            else "a process cannot stop itself this way (raise Exit(reason) instead)"
        )
    elif type(reason) is tuple and len(reason) == 2 and reason[0] == "nodedown":
        why = f"node {reason[1]} is down or unreachable"
    elif action == "call to":
        why = f"the server exited before replying: it {describe_reason(reason)}"
    else:
        why = f"the server {describe_reason(reason)}"
    return f"{target} failed: {why} (reason: {_short(reason)})"


class StartError(Exception):
    """A ``start``/``start_link`` failed.

    The message says what was started and why it failed, e.g. ``cannot start
    Counter as 'counter': its name is already registered to <nonode@nohost.4>
    (reason: ('already_started', <nonode@nohost.4>))``.

    Attributes:
        reason: why: the exception ``init`` raised, the reason it stopped with,
            ``"timeout"``, or ``("already_started", pid)``.
        what: what was being started (e.g. the GenServer class name), or None.
        name: the name it was to be registered under, or None.
    """

    def __init__(self, reason: Any, what: str | None = None, name: Any = None) -> None:
        subject = what or "the process"
        if name is not None:
            subject += f" as {name!r}"
        message = f"cannot start {subject}: {_why_start_failed(reason)}"
        if not isinstance(reason, BaseException):
            message += f" (reason: {_short(reason)})"
        super().__init__(message)
        self.reason = reason
        self.what = what
        self.name = name


class AlreadyRegisteredError(NameTakenError):
    """A key of a unique ``Registry`` is already held by a process.

    Attributes:
        registry: the registry's name.
        key: the key.
        pid: the process holding it (which may be the caller).
        reason: ``("already_registered", pid)``, as Elixir's ``register`` says it.
    """

    def __init__(self, registry: str, key: Any, pid: Any) -> None:
        super().__init__(f"key {key!r} of registry {registry!r} is already registered by {pid!r}")
        self.registry = registry
        self.key = key
        self.pid = pid
        self.reason = ("already_registered", pid)


class UnknownRegistryError(NoSuchNameError):
    """No ``Registry`` of this name runs on this node (never started, or exited).

    Attributes:
        registry: the name asked for.
    """

    def __init__(self, registry: str, node: str) -> None:
        super().__init__(
            f"no registry named {registry!r} is running on node {node}"
            " (it was never started, or its process has exited)"
        )
        self.registry = registry
