"""Exceptions of the local runtime."""

from __future__ import annotations

from typing import Any

import trio

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
]


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

    Attributes:
        reason: the server's exit reason, ``"noproc"``, ``"calling_self"`` or
            ``("nodedown", node)``.
    """

    def __init__(self, reason: Any) -> None:
        super().__init__(reason)
        self.reason = reason


class StartError(Exception):
    """A ``start``/``start_link`` failed.

    Attributes:
        reason: why: the exception ``init`` raised, the reason it stopped with,
            ``"timeout"``, or ``("already_started", pid)``.
    """

    def __init__(self, reason: Any) -> None:
        super().__init__(reason)
        self.reason = reason


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
